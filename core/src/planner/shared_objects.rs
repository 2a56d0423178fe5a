//! How a replica publishes its clusters' objects for the others, when clusters are sharded
//! across replicas: each object, as the registry consumes it (already reduced by ingest),
//! under a key naming its cluster and reference.
//!
//! The registry is a function of the objects it is given, in any order. So every replica
//! that applies the objects its own watchers see and those the others publish builds the
//! same registry with the same code: the rules across clusters (spellings, quotas, traffic
//! policies, Dependencies, clusterset ids) need no second implementation. The layout:
//!
//! `<prefix>objects/<cluster>/<kind>[/<namespace>]/<name>`, the value the object as JSON.
//! A policy or Dependency that turned invalid is published beside its last valid version
//! (the registry keeps a Dependency's in force), under `<cluster>/rejected/<kind>/...`.
//! `<cluster>/listed` marks a cluster its owner has published whole.

use crate::model::{ClusterName, Object, ObjectKey, ObjectRef, WorkloadKind};

/// The key (below `<prefix>objects/`) under which `object` of `cluster` is published.
pub fn object_key(cluster: &ClusterName, object: &Object) -> String {
    match object {
        Object::Rejected(rejected) => rejected_key(cluster, &rejected.reference),
        _ => key(cluster, &object.reference()),
    }
}

/// The key of the rejected version of `reference` of `cluster`.
pub fn rejected_key(cluster: &ClusterName, reference: &ObjectRef) -> String {
    let valid = key(cluster, reference);
    let path = valid.strip_prefix(&format!("{cluster}/")).unwrap_or(&valid);
    format!("{cluster}/rejected/{path}")
}

/// The key (below `<prefix>objects/`) of the valid object `reference` of `cluster`.
pub fn key(cluster: &ClusterName, reference: &ObjectRef) -> String {
    let named = |kind: &str, key: &ObjectKey| format!("{kind}/{}/{}", key.namespace, key.name);
    let path = match reference {
        ObjectRef::Service(k) => named("service", k),
        ObjectRef::EndpointSlice(k) => named("endpointslice", k),
        ObjectRef::Workload(kind, k) => named(workload_kind(*kind), k),
        ObjectRef::Node(name) => format!("node/{name}"),
        ObjectRef::Gateway(k) => named("gateway", k),
        ObjectRef::Policy(k) => named("policy", k),
        ObjectRef::MeshNamespace(name) => format!("meshnamespace/{name}"),
        ObjectRef::PassthroughClaim(k) => named("passthroughclaim", k),
        ObjectRef::Dependency(k) => named("dependency", k),
        ObjectRef::AdmiralPolicy(k) => named("admiralpolicy", k),
        ObjectRef::AdmiralDependency(k) => named("admiraldependency", k),
        ObjectRef::ClusterId => "clusterid".to_owned(),
    };
    format!("{cluster}/{path}")
}

fn workload_kind(kind: WorkloadKind) -> &'static str {
    match kind {
        WorkloadKind::Deployment => "deployment",
        WorkloadKind::Rollout => "rollout",
        WorkloadKind::RolloutVariant => "rolloutvariant",
        WorkloadKind::ServiceExport => "serviceexport",
    }
}

/// The key of `cluster`'s listed mark: its owner writes it once it has published the
/// cluster whole, so the others know its absent objects are absent, not yet unpublished.
pub fn listed_key(cluster: &ClusterName) -> String {
    format!("{cluster}/{LISTED}")
}

/// The cluster whose listed mark `key` is, if it is one (no object's key has two segments).
pub fn listed_cluster(key: &str) -> Option<ClusterName> {
    match key.split_once('/') {
        Some((cluster, LISTED)) if !cluster.is_empty() => Some(ClusterName::new(cluster)),
        _ => None,
    }
}

const LISTED: &str = "listed";

/// A key or value under the objects' prefix that is not a published object.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("published object {key} is ignored: {reason}")]
pub struct CorruptObject {
    /// The key (below the objects' prefix).
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

/// What a key names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    /// The cluster.
    pub cluster: ClusterName,
    /// The object.
    pub reference: ObjectRef,
    /// Whether it is the object's rejected version.
    pub rejected: bool,
}

impl Named {
    /// The key of the other version of the same object (valid or rejected).
    pub fn sibling(&self) -> String {
        if self.rejected {
            key(&self.cluster, &self.reference)
        } else {
            rejected_key(&self.cluster, &self.reference)
        }
    }
}

/// The cluster, object and version a key names.
pub fn parse_key(key: &str) -> Result<Named, CorruptObject> {
    let corrupt = |reason: &str| CorruptObject {
        key: key.to_owned(),
        reason: reason.to_owned(),
    };
    let mut parts: Vec<&str> = key.split('/').collect();
    let rejected = parts.get(1) == Some(&"rejected");
    if rejected {
        parts.remove(1);
    }
    if parts.iter().any(|p| p.is_empty()) {
        return Err(corrupt("an empty segment"));
    }
    let namespaced = |make: fn(ObjectKey) -> ObjectRef| match parts[2..] {
        [namespace, name] => Ok(make(ObjectKey::new(namespace, name))),
        _ => Err(corrupt("not <cluster>/<kind>/<namespace>/<name>")),
    };
    let cluster_scoped = |make: fn(String) -> ObjectRef| match parts[2..] {
        [name] => Ok(make(name.to_owned())),
        _ => Err(corrupt("not <cluster>/<kind>/<name>")),
    };
    let workload = |kind: WorkloadKind| match parts[2..] {
        [namespace, name] => Ok(ObjectRef::Workload(kind, ObjectKey::new(namespace, name))),
        _ => Err(corrupt("not <cluster>/<kind>/<namespace>/<name>")),
    };
    let (Some(cluster), Some(kind)) = (parts.first(), parts.get(1)) else {
        return Err(corrupt("not <cluster>/<kind>/..."));
    };
    let reference = match *kind {
        "service" => namespaced(ObjectRef::Service),
        "endpointslice" => namespaced(ObjectRef::EndpointSlice),
        "deployment" => workload(WorkloadKind::Deployment),
        "rollout" => workload(WorkloadKind::Rollout),
        "rolloutvariant" => workload(WorkloadKind::RolloutVariant),
        "serviceexport" => workload(WorkloadKind::ServiceExport),
        "node" => cluster_scoped(ObjectRef::Node),
        "gateway" => namespaced(ObjectRef::Gateway),
        "policy" => namespaced(ObjectRef::Policy),
        "meshnamespace" => cluster_scoped(ObjectRef::MeshNamespace),
        "passthroughclaim" => namespaced(ObjectRef::PassthroughClaim),
        "dependency" => namespaced(ObjectRef::Dependency),
        "admiralpolicy" => namespaced(ObjectRef::AdmiralPolicy),
        "admiraldependency" => namespaced(ObjectRef::AdmiralDependency),
        "clusterid" if parts.len() == 2 => Ok(ObjectRef::ClusterId),
        _ => Err(corrupt("an unknown kind of object")),
    }?;
    Ok(Named {
        cluster: ClusterName::new(cluster),
        reference,
        rejected,
    })
}

/// The value published for `object`.
pub fn encode(object: &Object) -> Vec<u8> {
    // Strings, numbers, maps and enums only: serialising cannot fail.
    serde_json::to_vec(object).unwrap_or_default()
}

/// The object published under `key` (below the objects' prefix), checked to be the one the
/// key names.
pub fn decode(key: &str, value: &[u8]) -> Result<(ClusterName, Object), CorruptObject> {
    let named = parse_key(key)?;
    let object: Object = serde_json::from_slice(value).map_err(|e| CorruptObject {
        key: key.to_owned(),
        reason: format!("not an object: {e}"),
    })?;
    let rejected = matches!(object, Object::Rejected(_));
    if object.reference() != named.reference || rejected != named.rejected {
        let version = if rejected { "a rejected " } else { "" };
        return Err(CorruptObject {
            key: key.to_owned(),
            reason: format!(
                "it holds {version}{}, not the object its key names",
                object.reference()
            ),
        });
    }
    Ok((named.cluster, object))
}

#[cfg(test)]
#[path = "shared_objects_tests.rs"]
mod tests;
