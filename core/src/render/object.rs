//! The plain form of a rendered object: what the edge turns into a Kubernetes object.

use std::collections::BTreeMap;

/// The metadata render sets on an object: the few fields of Kubernetes' `ObjectMeta` that
/// federator decides, as plain values, so that rendering needs no Kubernetes types.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Object name (for per-host objects, the global host).
    pub name: String,
    /// Namespace the object goes into (the sync namespace).
    pub namespace: String,
    /// Labels; ownership labels mark the object as federator's.
    pub labels: BTreeMap<String, String>,
    /// Annotations (empty for none).
    pub annotations: BTreeMap<String, String>,
}

/// One rendered object: its metadata and the Istio spec `S` it carries. The edge wraps it
/// in the Kubernetes object of its kind (`apiVersion`, `kind`) to write or print it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered<S> {
    /// Name, namespace, labels and annotations.
    pub metadata: Metadata,
    /// What the object asks of Istio.
    pub spec: S,
}
