//! The writer's plan: from what federator wants in one cluster's sync namespace and what that
//! namespace holds, the writes to make. Pure, so every safety rule lives (and is tested) here:
//!
//! - only objects of this installation are changed or deleted; anything else in the way is a
//!   conflict, never a takeover;
//! - a missing object is created (a create fails if someone made one since the last read);
//!   an update and a delete carry the resourceVersion (and uid) federator last read, so an
//!   object changed since then is re-read, never overwritten blind;
//! - nothing drops a cluster whose objects have not been listed yet: deleting a host it
//!   serves, or an update that removes its backends, waits until its lists are in;
//! - an object the API server rejected rests for its own backoff while the rest flows.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};

use serde::Serialize;

pub use super::compact_id::CompactId;
pub use super::shared_maps::{SharedMap, SharedMaps};

pub use crate::render::{MANAGED_BY_LABEL, MANAGED_BY_VALUE};

/// Label naming the installation that wrote an object: two installations pointed at the
/// same clusters never touch each other's objects.
pub const INSTANCE_LABEL: &str = "federator.io/instance";
/// Annotation listing the clusters whose backends an object carries (comma separated), so a
/// later plan knows which clusters an update or delete would drop.
pub const CLUSTERS_ANNOTATION: &str = "federator.io/clusters";

/// Annotation naming the leader term that last wrote an object: set by every write, never
/// compared (a new leader rewrites nothing for it), so an object's history shows which term
/// wrote each version, and a write by a stale leader would show as a term going back.
pub const TERM_ANNOTATION: &str = "federator.io/leader-term";

/// The kinds the writer manages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `networking.istio.io/v1` ServiceEntry.
    ServiceEntry,
    /// `networking.istio.io/v1` DestinationRule.
    DestinationRule,
    /// `networking.istio.io/v1` Gateway (the east-west passthrough).
    Gateway,
    /// `networking.istio.io/v1` Sidecar. It goes into its workload's namespace, not the
    /// sync namespace, so its [`Key`] names it `namespace/name`.
    Sidecar,
    /// `multicluster.x-k8s.io/v1beta1` ServiceImport. It goes into its Service's namespace,
    /// so its [`Key`] names it `namespace/name`.
    ServiceImport,
}

impl Kind {
    /// The kind's name, as the API spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::ServiceEntry => "ServiceEntry",
            Self::DestinationRule => "DestinationRule",
            Self::Gateway => "Gateway",
            Self::Sidecar => "Sidecar",
            Self::ServiceImport => "ServiceImport",
        }
    }

    /// Whether its objects live outside the sync namespace (their keys are
    /// `namespace/name`, and they are listed cluster-wide).
    pub fn outside_sync_namespace(self) -> bool {
        matches!(self, Self::Sidecar | Self::ServiceImport)
    }

    /// Every kind, in the order a full pass lists them.
    pub const ALL: [Kind; 5] = [
        Self::ServiceEntry,
        Self::DestinationRule,
        Self::Gateway,
        Self::Sidecar,
        Self::ServiceImport,
    ];
}

/// One object the writer manages: its kind and name (`namespace/name` for a
/// [`Kind::Sidecar`], which lives outside the sync namespace).
pub type Key = (Kind, String);

/// The key of the Sidecar `name` in `namespace`.
pub fn sidecar_key(namespace: &str, name: &str) -> Key {
    outside_key(Kind::Sidecar, namespace, name)
}

/// The key of an object of a kind that lives outside the sync namespace.
pub fn outside_key(kind: Kind, namespace: &str, name: &str) -> Key {
    (kind, format!("{namespace}/{name}"))
}

/// The namespace (when not the sync namespace) and name of the object `key` names.
pub fn key_parts(key: &Key) -> (Option<&str>, &str) {
    if !key.0.outside_sync_namespace() {
        return (None, key.1.as_str());
    }
    match key.1.split_once('/') {
        Some((namespace, name)) => (Some(namespace), name),
        None => (None, key.1.as_str()),
    }
}

/// A fingerprint of a spec: equal specs give equal fingerprints (within one process). The
/// writer caches fingerprints, not specs, to stay small with thousands of objects.
pub fn fingerprint(spec: &impl Serialize) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_vec(spec)
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}

/// Who an object in the sync namespace belongs to, from its labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// This installation.
    Us,
    /// Another federator installation (its instance label value), or a federator object
    /// without an instance label (an unknown installation).
    OtherInstallation(Option<String>),
    /// Not federator's: a user's or another tool's.
    Foreign,
}

/// Who this installation is, for telling its objects from others'.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installation {
    /// Its [`INSTANCE_LABEL`] value.
    pub instance: String,
    /// Whether federator objects without an instance label (written before the label
    /// existed) are taken as this installation's, to be relabelled on their next write: an
    /// upgrade of a single installation, never to be set when two ran without the label.
    pub adopt_unlabelled: bool,
}

impl Installation {
    /// Whose an object with these labels is.
    pub fn owner(&self, labels: &BTreeMap<String, String>) -> Owner {
        if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGED_BY_VALUE) {
            return Owner::Foreign;
        }
        match labels.get(INSTANCE_LABEL) {
            Some(value) if *value == self.instance => Owner::Us,
            None if self.adopt_unlabelled => Owner::Us,
            other => Owner::OtherInstallation(other.cloned()),
        }
    }
}

/// Reads the clusters annotation; `None` when absent (an object written before it existed:
/// its clusters are unknown).
pub fn clusters_of(annotations: &BTreeMap<String, String>) -> Option<BTreeSet<String>> {
    annotations.get(CLUSTERS_ANNOTATION).map(|v| {
        v.split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

/// An object found in (or last written to) the sync namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Existing {
    /// Whose it is.
    pub owner: Owner,
    /// Fingerprint of its spec (raw when federator's types cannot read it).
    pub spec: u64,
    /// Its labels (shared with every object that has the same: see [`SharedMaps`]).
    pub labels: SharedMap,
    /// Its annotations (shared likewise).
    pub annotations: SharedMap,
    /// Its uid: delete precondition, and Events about it.
    pub uid: Option<CompactId>,
    /// Its resourceVersion as last read: update and delete precondition.
    pub resource_version: Option<CompactId>,
}

/// An object federator wants in the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// Fingerprint of its spec.
    pub spec: u64,
    /// Its labels (ownership included).
    pub labels: BTreeMap<String, String>,
    /// Its annotations ([`CLUSTERS_ANNOTATION`] included).
    pub annotations: BTreeMap<String, String>,
}

/// A write the executor carries out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// Create: the name is free as far as federator knows.
    Create(Key),
    /// Update spec, labels and annotations, on condition the object still has this
    /// resourceVersion (ownership was confirmed at that version).
    Update {
        /// The object.
        key: Key,
        /// The resourceVersion federator read it at.
        resource_version: Option<String>,
    },
    /// Delete, on condition uid and resourceVersion are still the ones read.
    Delete {
        /// The object.
        key: Key,
        /// Its uid.
        uid: Option<String>,
        /// Its resourceVersion.
        resource_version: Option<String>,
    },
}

impl Write {
    /// The object written.
    pub fn key(&self) -> &Key {
        match self {
            Self::Create(key) | Self::Update { key, .. } | Self::Delete { key, .. } => key,
        }
    }
}

/// Why a needed write waits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hold {
    /// Deletes are closed (the start-up gate).
    DeletesClosed,
    /// It would drop the backends of a cluster whose objects are not listed yet.
    Unlisted(String),
    /// It would drop backends of unknown clusters (no clusters annotation) while some
    /// cluster is not listed yet.
    UnknownClusters,
    /// The API server rejected it lately; it rests until its backoff ends.
    Resting,
}

/// Why an object is left alone although federator wants that name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conflict {
    /// The object is not federator's.
    Foreign,
    /// The object belongs to another federator installation.
    OtherInstallation(Option<String>),
}

/// What may happen now.
#[derive(Clone, Debug, Default)]
pub struct Gates {
    /// Whether deletes are allowed at all.
    pub deletes: bool,
    /// Clusters whose objects are not listed yet.
    pub unlisted: BTreeSet<String>,
    /// Objects resting after a rejection.
    pub resting: BTreeSet<Key>,
}

/// The writes to make and what was left out, and why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Writes to carry out.
    pub writes: Vec<Write>,
    /// Writes that wait.
    pub held: Vec<(Key, Hold)>,
    /// Names taken by objects federator must not touch.
    pub conflicts: Vec<(Key, Conflict)>,
    /// Names that are as desired (or absent and not wanted, or someone else's and not wanted).
    pub settled: Vec<Key>,
}

/// Plans every key of `desired` and `existing` (a full pass, or the keys of some hosts).
pub fn plan(
    desired: &BTreeMap<Key, Desired>,
    existing: &BTreeMap<Key, Existing>,
    gates: &Gates,
) -> Plan {
    let keys: BTreeSet<&Key> = desired.keys().chain(existing.keys()).collect();
    let mut out = Plan::default();
    for key in keys {
        plan_key(key, desired.get(key), existing.get(key), gates, &mut out);
    }
    out
}

fn plan_key(
    key: &Key,
    desired: Option<&Desired>,
    existing: Option<&Existing>,
    gates: &Gates,
    out: &mut Plan,
) {
    let write = match (desired, existing) {
        (None, None) => None,
        (Some(_), None) => Some(Write::Create(key.clone())),
        (_, Some(e)) if e.owner != Owner::Us => {
            match (desired, &e.owner) {
                (Some(_), Owner::Foreign) => out.conflicts.push((key.clone(), Conflict::Foreign)),
                (Some(_), Owner::OtherInstallation(other)) => out
                    .conflicts
                    .push((key.clone(), Conflict::OtherInstallation(other.clone()))),
                _ => out.settled.push(key.clone()),
            }
            return;
        }
        (None, Some(e)) => Some(Write::Delete {
            key: key.clone(),
            uid: e.uid.as_ref().map(CompactId::to_string),
            resource_version: e.resource_version.as_ref().map(CompactId::to_string),
        }),
        (Some(d), Some(e)) if up_to_date(d, e) => None,
        (Some(_), Some(e)) => Some(Write::Update {
            key: key.clone(),
            resource_version: e.resource_version.as_ref().map(CompactId::to_string),
        }),
    };
    let Some(write) = write else {
        out.settled.push(key.clone());
        return;
    };
    match hold(&write, desired, existing, gates) {
        Some(reason) => out.held.push((key.clone(), reason)),
        None => out.writes.push(write),
    }
}

/// Whether `existing` already is `desired`: same spec, and every label and annotation
/// federator sets present with its value (others may add their own).
fn up_to_date(desired: &Desired, existing: &Existing) -> bool {
    let contains = |want: &BTreeMap<String, String>, have: &BTreeMap<String, String>| {
        want.iter().all(|(k, v)| have.get(k) == Some(v))
    };
    desired.spec == existing.spec
        && contains(&desired.labels, &existing.labels)
        && contains(&desired.annotations, &existing.annotations)
}

/// Why `write` must wait, if it must.
fn hold(
    write: &Write,
    desired: Option<&Desired>,
    existing: Option<&Existing>,
    gates: &Gates,
) -> Option<Hold> {
    if gates.resting.contains(write.key()) {
        return Some(Hold::Resting);
    }
    if matches!(write, Write::Delete { .. }) && !gates.deletes {
        return Some(Hold::DeletesClosed);
    }
    // Clusters the object carries now and would no longer carry after the write.
    let before = existing.map(|e| clusters_of(&e.annotations));
    let after = desired
        .and_then(|d| clusters_of(&d.annotations))
        .unwrap_or_default();
    match before {
        None => None,
        Some(None) if gates.unlisted.is_empty() => None,
        Some(None) => Some(Hold::UnknownClusters),
        Some(Some(before)) => before
            .difference(&after)
            .find(|c| gates.unlisted.contains(*c))
            .map(|c| Hold::Unlisted(c.clone())),
    }
}

#[cfg(test)]
#[path = "write_tests.rs"]
mod tests;
