//! The Multicluster Services API objects federator reads: `ServiceExport`
//! (`multicluster.x-k8s.io`) and the cluster's `id.k8s.io` `ClusterProperty`
//! (`about.k8s.io`, KEP-2149). Schema-less: their CRDs belong to the MCS and About APIs.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::{ClusterResourceScope, NamespaceResourceScope, Resource};
use serde::{Deserialize, Serialize};

use super::{IngestError, Ingested, created, object_key};
use crate::model::{CLUSTER_ID_PROPERTY, ClusterIdInfo, Object, validate_dns_label};

/// The MCS API's group.
pub const MCS_GROUP: &str = "multicluster.x-k8s.io";
/// The MCS API version federator reads and writes (`sigs.k8s.io/mcs-api` v0.5 and later).
pub const MCS_VERSION: &str = "v1beta1";

/// Implements [`Resource`] for an object of another API whose spec is optional (kube's
/// derive requires one): `$kind` in `$group/$version`, plural `$plural`, of `$scope`.
macro_rules! foreign_resource {
    ($kind:ident, $group:expr, $version:expr, $plural:literal, $scope:ty) => {
        impl Resource for $kind {
            type DynamicType = ();
            type Scope = $scope;

            fn kind(_: &()) -> Cow<'_, str> {
                stringify!($kind).into()
            }

            fn group(_: &()) -> Cow<'_, str> {
                $group.into()
            }

            fn version(_: &()) -> Cow<'_, str> {
                $version.into()
            }

            fn plural(_: &()) -> Cow<'_, str> {
                $plural.into()
            }

            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }

            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

/// A ServiceExport: its existence exports the Service of the same name and namespace. Its
/// spec is optional (most exports have none).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ServiceExport {
    /// Name, namespace, creation time and generation.
    pub metadata: ObjectMeta,
    /// What to carry to the ServiceImport, when given.
    #[serde(default)]
    pub spec: ServiceExportSpec,
}

foreign_resource!(
    ServiceExport,
    MCS_GROUP,
    MCS_VERSION,
    "serviceexports",
    NamespaceResourceScope
);

/// The spec of a ServiceExport.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceExportSpec {
    /// Labels to put on the ServiceImport (not carried by federator yet).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exported_labels: BTreeMap<String, String>,
    /// Annotations to put on the ServiceImport (not carried by federator yet).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exported_annotations: BTreeMap<String, String>,
}

/// A ClusterProperty (About API, cluster-scoped): federator reads the one named
/// `id.k8s.io`, the cluster's id in the clusterset.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ClusterProperty {
    /// Its name (`id.k8s.io`).
    pub metadata: ObjectMeta,
    /// Its value, when given.
    #[serde(default)]
    pub spec: ClusterPropertySpec,
}

foreign_resource!(
    ClusterProperty,
    "about.k8s.io",
    "v1alpha1",
    "clusterproperties",
    ClusterResourceScope
);

/// The spec of a ClusterProperty.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ClusterPropertySpec {
    /// The property's value.
    #[serde(default)]
    pub value: String,
}

/// A ServiceExport as the registry folds it: a workload of kind `ServiceExport`.
pub fn service_export(export: &ServiceExport) -> Result<Option<Ingested>, IngestError> {
    let key = object_key("ServiceExport", &export.metadata)?;
    let mut ingested = Ingested::clean(Object::Workload(crate::model::service_export(
        key,
        created(&export.metadata),
        export.metadata.generation,
    )));
    if !export.spec.exported_labels.is_empty() || !export.spec.exported_annotations.is_empty() {
        ingested.warnings.push(
            "spec.exportedLabels and spec.exportedAnnotations are not carried to the ServiceImport"
                .into(),
        );
    }
    Ok(Some(ingested))
}

/// The cluster's id, from its `id.k8s.io` ClusterProperty (other properties: `None`). It
/// names the cluster in DNS (`<hostname>.<clusterid>.<svc>.<ns>.svc.clusterset.local`), so
/// it must be a DNS label.
pub fn cluster_id(property: &ClusterProperty) -> Result<Option<Ingested>, IngestError> {
    let name = property.metadata.name.as_deref().unwrap_or_default();
    if name != CLUSTER_ID_PROPERTY {
        return Ok(None);
    }
    let value = property.spec.value.trim().to_ascii_lowercase();
    validate_dns_label(&value).map_err(|reason| {
        IngestError::new(
            "ClusterProperty",
            name,
            format!(
                "spec.value {} cannot name the cluster in DNS: {reason}; the registered name is used",
                crate::api::shown(&property.spec.value)
            ),
        )
    })?;
    Ok(Some(Ingested::clean(Object::ClusterId(ClusterIdInfo {
        value,
    }))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Host, WorkloadKind};

    #[test]
    fn an_export_is_a_workload_of_its_clusterset_host() {
        let export = ServiceExport {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("shop".into()),
                generation: Some(3),
                ..Default::default()
            },
            spec: ServiceExportSpec::default(),
        };
        let Some(Ingested {
            object: Object::Workload(w),
            ..
        }) = service_export(&export).unwrap()
        else {
            panic!("a workload");
        };
        assert_eq!(w.kind, WorkloadKind::ServiceExport);
        assert_eq!(w.generation, Some(3));
        assert_eq!(
            w.host("global").unwrap(),
            Host::clusterset("web", "shop").unwrap()
        );
    }

    #[test]
    fn an_export_without_a_spec_is_read() {
        let export: ServiceExport = serde_json::from_value(serde_json::json!({
            "apiVersion": "multicluster.x-k8s.io/v1beta1", "kind": "ServiceExport",
            "metadata": {"name": "web", "namespace": "shop"},
        }))
        .unwrap();
        assert!(service_export(&export).unwrap().is_some());
    }

    #[test]
    fn only_the_id_property_is_read_and_it_must_be_a_dns_label() {
        let property = |name: &str, value: &str| ClusterProperty {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: ClusterPropertySpec {
                value: value.into(),
            },
        };
        assert_eq!(
            cluster_id(&property("id.k8s.io", "East-1"))
                .unwrap()
                .unwrap()
                .object,
            Object::ClusterId(ClusterIdInfo {
                value: "east-1".into()
            })
        );
        assert!(
            cluster_id(&property("clusterset.k8s.io", "x"))
                .unwrap()
                .is_none()
        );
        let err = cluster_id(&property("id.k8s.io", "a.b")).unwrap_err();
        assert!(
            err.to_string().contains("ClusterProperty id.k8s.io"),
            "{err}"
        );
    }
}
