//! The Istio objects federator reads and writes, as Kubernetes resources.
//!
//! The specs are core's ([`federator_core::istio`], re-exported here); this module wraps each
//! in the object the API server stores (`apiVersion`, `kind`, `metadata`, `spec`) and gives
//! it the [`Resource`] and [`HasSpec`] impls that `Api<K>`, watchers and server-side apply
//! need. kube's `CustomResource` derive would have to sit on the spec struct itself, which
//! the core keeps free of kube, so `istio_resource!` writes what the derive would: the same
//! struct, the same impls and the same serialized form.

use std::collections::BTreeMap;

use federator_core::render::{Metadata, Rendered};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::object::HasSpec;
use kube::core::{NamespaceResourceScope, Resource};
use serde::{Deserialize, Serialize};

pub use federator_core::istio::*;

/// Defines the Kubernetes object `$kind` of `networking.istio.io/v1` around the core spec
/// `$spec`, as `#[derive(CustomResource)]` with `namespaced` would.
macro_rules! istio_resource {
    ($(#[$doc:meta])* $kind:ident($spec:ty), plural = $plural:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $kind {
            /// Name, namespace, labels and the rest of the object's metadata.
            pub metadata: ObjectMeta,
            /// What the object asks of Istio.
            pub spec: $spec,
        }

        impl $kind {
            /// An object named `name` (no namespace yet) with `spec`.
            pub fn new(name: &str, spec: $spec) -> Self {
                Self {
                    metadata: ObjectMeta {
                        name: Some(name.to_owned()),
                        ..Default::default()
                    },
                    spec,
                }
            }
        }

        impl Resource for $kind {
            type DynamicType = ();
            type Scope = NamespaceResourceScope;

            fn kind(_: &()) -> std::borrow::Cow<'_, str> {
                stringify!($kind).into()
            }

            fn group(_: &()) -> std::borrow::Cow<'_, str> {
                GROUP.into()
            }

            fn version(_: &()) -> std::borrow::Cow<'_, str> {
                VERSION.into()
            }

            fn api_version(_: &()) -> std::borrow::Cow<'_, str> {
                API_VERSION.into()
            }

            fn plural(_: &()) -> std::borrow::Cow<'_, str> {
                $plural.into()
            }

            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }

            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }

        impl HasSpec for $kind {
            type Spec = $spec;

            fn spec(&self) -> &$spec {
                &self.spec
            }

            fn spec_mut(&mut self) -> &mut $spec {
                &mut self.spec
            }
        }

        /// The Kubernetes object of a rendered one, ready to apply or print.
        impl From<Rendered<$spec>> for $kind {
            fn from(rendered: Rendered<$spec>) -> Self {
                Self {
                    metadata: object_meta(rendered.metadata),
                    spec: rendered.spec,
                }
            }
        }

        /// `apiVersion` and `kind` first, then `metadata` and `spec`: the field order of the
        /// rendered YAML, as kube's derive writes it.
        impl Serialize for $kind {
            fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeStruct;
                let mut object = ser.serialize_struct(stringify!($kind), 4)?;
                object.serialize_field("apiVersion", API_VERSION)?;
                object.serialize_field("kind", stringify!($kind))?;
                object.serialize_field("metadata", &self.metadata)?;
                object.serialize_field("spec", &self.spec)?;
                object.end()
            }
        }
    };
}

/// API group of Istio's networking objects.
const GROUP: &str = "networking.istio.io";
/// The one version federator reads and writes.
const VERSION: &str = "v1";
/// `group/version`, as `apiVersion` spells it.
const API_VERSION: &str = "networking.istio.io/v1";

/// Kubernetes metadata of a rendered object: an empty label or annotation map is left out,
/// as render never sets one.
fn object_meta(metadata: Metadata) -> ObjectMeta {
    let non_empty = |map: BTreeMap<String, String>| (!map.is_empty()).then_some(map);
    ObjectMeta {
        name: Some(metadata.name),
        namespace: Some(metadata.namespace),
        labels: non_empty(metadata.labels),
        annotations: non_empty(metadata.annotations),
        ..Default::default()
    }
}

istio_resource! {
    /// A ServiceEntry object: what the writer applies for each global host, and what it reads
    /// back from the sync namespace.
    ServiceEntry(ServiceEntrySpec), plural = "serviceentries"
}

istio_resource! {
    /// A DestinationRule object: applied next to each global host's ServiceEntry.
    DestinationRule(DestinationRuleSpec), plural = "destinationrules"
}

istio_resource! {
    /// A Gateway object: federator's east-west Gateway, and users' Gateways the watchers read
    /// to see whether one already passes the global hosts.
    Gateway(GatewaySpec), plural = "gateways"
}

istio_resource! {
    /// A Sidecar as the API server stores it.
    Sidecar(SidecarSpec), plural = "sidecars"
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written impls must say what kube's derive said: the API server routes on them.
    #[test]
    fn resources_name_istios_kinds_and_plurals() {
        assert_eq!(ServiceEntry::api_version(&()), "networking.istio.io/v1");
        assert_eq!(ServiceEntry::kind(&()), "ServiceEntry");
        assert_eq!(ServiceEntry::plural(&()), "serviceentries");
        assert_eq!(DestinationRule::kind(&()), "DestinationRule");
        assert_eq!(DestinationRule::plural(&()), "destinationrules");
        assert_eq!(Gateway::group(&()), "networking.istio.io");
        assert_eq!(Gateway::version(&()), "v1");
        assert_eq!(Gateway::plural(&()), "gateways");
        assert_eq!(Sidecar::kind(&()), "Sidecar");
        assert_eq!(Sidecar::plural(&()), "sidecars");
    }

    #[test]
    fn objects_serialize_with_api_version_and_kind_and_read_back() {
        let gateway = Gateway::new(
            "gw",
            GatewaySpec {
                selector: [("istio".to_owned(), "eastwestgateway".to_owned())].into(),
                servers: Vec::new(),
            },
        );
        let json = serde_json::to_value(&gateway).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "apiVersion": "networking.istio.io/v1",
                "kind": "Gateway",
                "metadata": {"name": "gw"},
                "spec": {"selector": {"istio": "eastwestgateway"}},
            })
        );
        assert_eq!(serde_json::from_value::<Gateway>(json).unwrap(), gateway);
    }

    #[test]
    fn rendered_objects_keep_their_metadata_and_leave_out_empty_maps() {
        let rendered = Rendered {
            metadata: Metadata {
                name: "federator-eastwest".into(),
                namespace: "federator-sync".into(),
                labels: [(
                    "app.kubernetes.io/managed-by".to_owned(),
                    "federator".to_owned(),
                )]
                .into(),
                annotations: BTreeMap::new(),
            },
            spec: GatewaySpec {
                selector: BTreeMap::new(),
                servers: Vec::new(),
            },
        };
        let gateway = Gateway::from(rendered.clone());
        assert_eq!(gateway.metadata.name.as_deref(), Some("federator-eastwest"));
        assert_eq!(
            gateway.metadata.namespace.as_deref(),
            Some("federator-sync")
        );
        assert_eq!(gateway.metadata.labels, Some(rendered.metadata.labels));
        assert_eq!(gateway.metadata.annotations, None);
        assert_eq!(gateway.spec, rendered.spec);
    }
}
