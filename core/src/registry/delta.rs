use std::collections::BTreeSet;

use crate::model::{ClusterInfo, ClusterName, Host, Object, ObjectRef};

/// One change to the world the registry models. Watchers (live) and the snapshot loader
/// (offline) produce them; the registry consumes them in any order.
#[derive(Clone, Debug, PartialEq)]
pub enum Delta {
    /// A cluster was registered or its overrides changed.
    UpsertCluster(ClusterInfo),
    /// A cluster was unregistered: everything it contributed goes.
    RemoveCluster(ClusterName),
    /// An object of a cluster was created or changed.
    Upsert(ClusterName, Object),
    /// An object of a cluster was deleted.
    Remove(ClusterName, ObjectRef),
}

/// What a delta changed: the hosts whose rendered config may differ now, and the clusters
/// that appeared, disappeared or changed their own settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// Hosts to re-render (in every cluster).
    pub hosts: BTreeSet<Host>,
    /// Clusters added, removed or changed; a new cluster needs a full render.
    pub clusters: BTreeSet<ClusterName>,
}

impl ChangeSet {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.clusters.is_empty()
    }

    /// Adds another change set to this one.
    pub fn extend(&mut self, other: ChangeSet) {
        self.hosts.extend(other.hosts);
        self.clusters.extend(other.clusters);
    }
}
