//! The Multicluster Services API objects federator reads: `ServiceExport`
//! (`multicluster.x-k8s.io`) and the cluster's `id.k8s.io` `ClusterProperty`
//! (`about.k8s.io`, KEP-2149). Schema-less: their CRDs belong to the MCS and About APIs.

use std::collections::BTreeMap;

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::CustomResource;
use kube::core::{NamespaceResourceScope, Resource};
use serde::{Deserialize, Serialize};

use super::{IngestError, Ingested, created, object_key};
use crate::model::{CLUSTER_ID_PROPERTY, ClusterIdInfo, Object, validate_dns_label};

/// A ServiceExport: its existence exports the Service of the same name and namespace. Its
/// spec is optional (most exports have none), which kube's derive cannot say: hence by hand.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ServiceExport {
    /// Name, namespace, creation time and generation.
    pub metadata: ObjectMeta,
    /// What to carry to the ServiceImport, when given.
    #[serde(default)]
    pub spec: ServiceExportSpec,
}

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

impl Resource for ServiceExport {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "ServiceExport".into()
    }

    fn group(_: &()) -> Cow<'_, str> {
        "multicluster.x-k8s.io".into()
    }

    fn version(_: &()) -> Cow<'_, str> {
        "v1beta1".into()
    }

    fn plural(_: &()) -> Cow<'_, str> {
        "serviceexports".into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// A ClusterProperty (About API): federator reads the one named `id.k8s.io`, the cluster's
/// id in the clusterset.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "about.k8s.io",
    version = "v1alpha1",
    kind = "ClusterProperty",
    schema = "disabled"
)]
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
                "spec.value {:?} cannot name the cluster in DNS: {reason}; the registered name is used",
                property.spec.value
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
