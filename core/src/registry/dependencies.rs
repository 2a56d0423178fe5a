//! Dependencies: which identities a source identity calls, folded into the hosts on both
//! ends. A source's hosts learn what they call and where their workloads run (for their
//! Sidecars); a destination's hosts learn the clusters their callers run in (for the
//! `dependents` export scope).
//!
//! Several Dependencies for one source (in one cluster or several) add up: a team may split
//! its list, and a source's calls are everything any of them declares.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::cluster::PolicyId;
use super::{CallerWorkload, ChangeSet, HostDependencies, Registry};
use crate::model::{ClusterName, DependencyInfo, Host, PolicySource, WorkloadKind};

/// Where a Dependency object lives.
type DependencyId = (ClusterName, PolicyId);

/// The Dependencies by source identity, and the sources by destination identity.
#[derive(Debug, Default)]
pub(super) struct DependencyIndex {
    by_source: HashMap<String, BTreeSet<DependencyId>>,
    /// Destination identity -> the Dependencies naming it (with their source).
    by_destination: HashMap<String, BTreeSet<(String, DependencyId)>>,
}

impl DependencyIndex {
    fn insert(&mut self, cluster: &ClusterName, info: &DependencyInfo) {
        let id = (cluster.clone(), (info.api, info.key.clone()));
        self.by_source
            .entry(info.source.clone())
            .or_default()
            .insert(id.clone());
        for destination in &info.destinations {
            self.by_destination
                .entry(destination.clone())
                .or_default()
                .insert((info.source.clone(), id.clone()));
        }
    }

    fn remove(&mut self, cluster: &ClusterName, info: &DependencyInfo) {
        let id = (cluster.clone(), (info.api, info.key.clone()));
        if let Some(set) = self.by_source.get_mut(&info.source) {
            set.remove(&id);
            if set.is_empty() {
                self.by_source.remove(&info.source);
            }
        }
        for destination in &info.destinations {
            if let Some(set) = self.by_destination.get_mut(destination) {
                set.remove(&(info.source.clone(), id.clone()));
                if set.is_empty() {
                    self.by_destination.remove(destination);
                }
            }
        }
    }

    /// The identities that call `identity`.
    fn callers(&self, identity: &str) -> BTreeSet<&str> {
        self.by_destination
            .get(identity)
            .into_iter()
            .flatten()
            .map(|(source, _)| source.as_str())
            .collect()
    }
}

impl Registry {
    /// Folds a new or changed Dependency of `cluster`.
    pub(super) fn upsert_dependency(
        &mut self,
        cluster: &ClusterName,
        info: DependencyInfo,
        changes: &mut ChangeSet,
    ) {
        let mut touched: BTreeSet<String> = BTreeSet::new();
        touched.insert(info.source.clone());
        touched.extend(info.destinations.iter().cloned());
        let state = self.state(cluster);
        if let Some(old) = state
            .dependencies
            .insert((info.api, info.key.clone()), info.clone())
        {
            self.dependencies.remove(cluster, &old);
            touched.insert(old.source);
            touched.extend(old.destinations);
        }
        self.dependencies.insert(cluster, &info);
        for identity in touched {
            self.rebuild_identity(&identity, changes);
        }
    }

    /// Folds the removal of a Dependency of `cluster`.
    pub(super) fn remove_dependency(
        &mut self,
        cluster: &ClusterName,
        key: &PolicyId,
        changes: &mut ChangeSet,
    ) {
        let Some(old) = self
            .clusters
            .get_mut(cluster)
            .and_then(|s| s.dependencies.remove(key))
        else {
            return;
        };
        self.dependencies.remove(cluster, &old);
        self.rebuild_identity(&old.source, changes);
        for destination in &old.destinations {
            self.rebuild_identity(destination, changes);
        }
    }

    /// Drops the Dependencies of a cluster that is going away.
    pub(super) fn remove_cluster_dependencies(
        &mut self,
        cluster: &ClusterName,
        dependencies: &BTreeMap<PolicyId, DependencyInfo>,
        changes: &mut ChangeSet,
    ) {
        for old in dependencies.values() {
            self.dependencies.remove(cluster, old);
        }
        for old in dependencies.values() {
            self.rebuild_identity(&old.source, changes);
            for destination in &old.destinations {
                self.rebuild_identity(destination, changes);
            }
        }
    }

    /// Identities with a Dependency whose workloads share `namespace` of `cluster` with a
    /// workload that came, went or changed: whether their Sidecars may select their pods
    /// alone may have changed.
    pub(super) fn callers_beside(&self, cluster: &ClusterName, namespace: &str) -> Vec<String> {
        // Every workload delta asks: free when no Dependency exists.
        if self.dependencies.by_source.is_empty() {
            return Vec::new();
        }
        let Some(state) = self.clusters.get(cluster) else {
            return Vec::new();
        };
        let mut out: BTreeSet<String> = BTreeSet::new();
        for w in state.namespace_workloads(namespace) {
            if self
                .dependencies
                .by_source
                .contains_key(w.identity.as_str())
            {
                out.insert(w.identity.to_string());
            }
        }
        out.into_iter().collect()
    }

    /// A workload of `identity` came, went or changed its labels: when the identity calls
    /// others, its Sidecars and the dependents of what it calls may have changed.
    pub(super) fn caller_changed(&mut self, identity: &str, changes: &mut ChangeSet) {
        let Some(calls) = self.calls(identity, None) else {
            return;
        };
        self.rebuild_identity(identity, changes);
        for destination in calls {
            self.rebuild_identity(&destination, changes);
        }
    }

    /// Everything Dependencies say of `host` (of `identity`), served from `clusters`.
    pub(super) fn host_dependencies(
        &self,
        host: &Host,
        identity: &str,
        clusters: &[ClusterName],
    ) -> HostDependencies {
        // Admiral's Dependencies scope exports only: Admiral never limited sidecars, and a
        // team migrating must not find its egress cut.
        let calls = self.calls(identity, Some(PolicySource::Federator));
        let workloads = match calls {
            Some(_) => self.caller_workloads(host, clusters),
            None => BTreeMap::new(),
        };
        let by_source = self
            .dependencies
            .by_source
            .get(identity)
            .into_iter()
            .flatten();
        let by_destination = self
            .dependencies
            .by_destination
            .get(identity)
            .into_iter()
            .flatten()
            .map(|(_, id)| id);
        let declared_in = by_source
            .chain(by_destination)
            .map(|(cluster, _)| cluster.clone())
            .collect();
        HostDependencies {
            calls,
            workloads,
            dependent_clusters: self.dependent_clusters(identity),
            declared_in,
        }
    }

    /// The identities `source` calls, sorted, over every Dependency naming it (of `api`
    /// only, when given); `None` when none does.
    fn calls(&self, source: &str, api: Option<PolicySource>) -> Option<Vec<String>> {
        let ids = self.dependencies.by_source.get(source)?;
        let declared: Vec<&DependencyInfo> = ids
            .iter()
            .filter_map(|(cluster, key)| self.clusters.get(cluster)?.dependencies.get(key))
            .filter(|d| api.is_none_or(|api| d.api == api))
            .collect();
        if declared.is_empty() {
            return None;
        }
        let calls: BTreeSet<&String> = declared.iter().flat_map(|d| &d.destinations).collect();
        Some(calls.into_iter().cloned().collect())
    }

    /// Clusters where a workload of an identity that calls `identity` is exported.
    fn dependent_clusters(&self, identity: &str) -> BTreeSet<ClusterName> {
        let mut out = BTreeSet::new();
        for caller in self.dependencies.callers(identity) {
            for host in self.hosts_by_identity.get(caller).into_iter().flatten() {
                if let Some(entry) = self.hosts.get(host) {
                    out.extend(entry.clusters.iter().cloned());
                }
            }
        }
        out
    }

    /// The exported workloads of `host` in each of `clusters`, sorted.
    fn caller_workloads(
        &self,
        host: &Host,
        clusters: &[ClusterName],
    ) -> BTreeMap<ClusterName, Vec<CallerWorkload>> {
        let mut out = BTreeMap::new();
        for cluster in clusters {
            let Some(state) = self.clusters.get(cluster) else {
                continue;
            };
            let mut workloads: Vec<CallerWorkload> = state
                .host_workloads(host)
                // A Rollout's variant runs the Rollout's pods: their Sidecar is the Rollout's.
                .filter(|w| w.kind != WorkloadKind::RolloutVariant)
                // A Sidecar selects its workload's template labels: none when another
                // workload's pods carry them too (they would get this one's egress).
                .filter(|w| !selector_overlaps(state, w))
                .map(|w| CallerWorkload {
                    kind: w.kind,
                    key: w.key.clone(),
                    pod_labels: w.pod_labels.to_map(),
                })
                .collect();
            if !workloads.is_empty() {
                workloads.sort();
                out.insert(cluster.clone(), workloads);
            }
        }
        out
    }
}

/// Whether another workload of `workload`'s namespace (not its own Rollout variant) has pods
/// carrying every label of `workload`'s template: a Sidecar selecting those labels would
/// apply to them too.
fn selector_overlaps(
    state: &super::cluster::ClusterState,
    workload: &crate::model::WorkloadInfo,
) -> bool {
    state
        .namespace_workloads(&workload.key.namespace)
        // Itself, and its own Rollout variant (the same pods), aside.
        .filter(|other| {
            !(other.key == workload.key
                && (other.kind == workload.kind || other.kind == WorkloadKind::RolloutVariant))
        })
        .any(|other| workload.pod_labels.contained_in(&other.pod_labels))
}
