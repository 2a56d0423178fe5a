//! Turns Kubernetes API objects into the registry's model types.
//!
//! Pure functions shared by the live watchers and the offline snapshot loader, so both read
//! a cluster the same way. Each returns an [`IngestError`] naming the object when the object
//! cannot be used, and [`Ingested::warnings`] for parts it had to leave out.

mod admiral;
mod config;
mod dependency;
mod endpoint_slice;
mod identity;
mod mcs;
mod mesh;
mod node;
mod policy;
mod rollout;
mod service;
mod workload;

pub use admiral::{
    AdmiralDependency, AdmiralDependencySpec, AdmiralGlobalTrafficPolicy,
    AdmiralGlobalTrafficPolicySpec, admiral_dependency, admiral_policy,
};
pub use config::{GatewaySelector, IdentityKeys, IngestConfig, MetaKey};
pub use dependency::dependency;
pub use endpoint_slice::endpoint_slice;
pub use identity::{derive_env, derive_identity, derive_spelling};
pub use mcs::{
    ClusterProperty, ClusterPropertySpec, MCS_GROUP, MCS_VERSION, ServiceExport, ServiceExportSpec,
    cluster_id, service_export,
};
pub use mesh::{NETWORK_LABEL, mesh_namespace, passthrough_claim};
pub use node::node;
pub use policy::policy;
pub use rollout::{Rollout, RolloutSpec};
pub use service::service;
pub use workload::{deployment, rollout};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::model::{Object, ObjectKey};

/// An object that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {key}: {reason}")]
pub struct IngestError {
    /// Kind of the object (`Service`, `Deployment`, ...).
    pub kind: &'static str,
    /// `namespace/name` (or just the name for cluster-scoped objects).
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl IngestError {
    pub(crate) fn new(kind: &'static str, key: impl ToString, reason: impl Into<String>) -> Self {
        Self {
            kind,
            key: key.to_string(),
            reason: reason.into(),
        }
    }
}

/// A converted object plus the parts of it that were left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Ingested {
    /// The object for the registry.
    pub object: Object,
    /// Human-readable notes on what was dropped (e.g. a UDP port).
    pub warnings: Vec<String>,
}

impl Ingested {
    pub(crate) fn clean(object: Object) -> Self {
        Self {
            object,
            warnings: Vec::new(),
        }
    }
}

/// Namespace (default `default`, as kubectl assumes) and name of an object.
pub(crate) fn object_key(kind: &'static str, meta: &ObjectMeta) -> Result<ObjectKey, IngestError> {
    let name = meta
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| IngestError::new(kind, "<unnamed>", "metadata.name is missing"))?;
    let namespace = meta.namespace.as_deref().unwrap_or("default");
    Ok(ObjectKey::new(namespace, name))
}

/// Creation time in seconds since the epoch.
pub(crate) fn created(meta: &ObjectMeta) -> Option<i64> {
    meta.creation_timestamp.as_ref().map(|t| t.0.as_second())
}
