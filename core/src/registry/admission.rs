//! Which workloads export their host.
//!
//! Two rules hold a workload back, each reported, neither taking anything from anyone else:
//! - **Quota.** A cluster contributes at most `max_hosts_per_cluster` hosts. A workload that
//!   would add one more waits until a host of that cluster goes; other clusters, and the
//!   hosts the cluster already has, are untouched.
//! - **Spelling.** Global names are lower-case, so `Payments` and `payments` name the same
//!   host. Two spellings are two teams' services, not one: only the spelling of the oldest
//!   workload (by creation time; then lower-case first, then byte order) is exported,
//!   whatever the order the workloads arrived in, so a newcomer can never take a host over
//!   from the service already behind it; the others are reported as a conflict.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::cluster::WorkloadId;
use super::{ChangeSet, GlobalService, HostEntry, Registry};
use crate::model::{ClusterName, Host, SmolStr, WorkloadInfo};

/// Why a workload's host is not exported for it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Held {
    /// Its cluster already contributes as many hosts as allowed.
    OverQuota,
    /// Another spelling of the same host is exported.
    SpellingConflict {
        /// How this workload writes `env.identity`.
        spelling: String,
        /// The spelling exported (`""`: lower-case).
        exported: String,
    },
}

impl Registry {
    pub(super) fn link_workload(
        &mut self,
        cluster: &ClusterName,
        workload: WorkloadInfo,
        recompute: &mut BTreeSet<Host>,
        changes: &mut ChangeSet,
    ) {
        let id: WorkloadId = (workload.kind, workload.key.clone());
        let host = workload.host(&self.config.host_suffix);
        let spelling = workload.spelling.clone();
        let created = workload.created;
        let state = self.state(cluster);
        state.upsert_workload(workload);
        let host = match host {
            Ok(host) => host,
            Err(err) => {
                state.invalid_workloads.insert(id, err.to_string());
                return;
            }
        };
        let before = self.exported_spelling(&host);
        self.spellings.entry(host.clone()).or_default().insert(
            spelling.clone(),
            (cluster.clone(), id.clone()),
            created,
        );
        let after = self.exported_spelling(&host).unwrap_or_default();
        if let Some(before) = before
            && before != after
        {
            // This spelling displaces the one exported so far.
            self.displace(&host, &before, &after, changes);
            self.refresh_conflicts(&host, &after);
        }
        if spelling != after {
            self.hold_conflict(cluster, &id, &host, &spelling, &after);
            return;
        }
        self.admit(cluster, &id, &host, recompute, changes);
    }

    pub(super) fn unlink_workload(
        &mut self,
        cluster: &ClusterName,
        id: &WorkloadId,
        recompute: &mut BTreeSet<Host>,
        changes: &mut ChangeSet,
    ) {
        let suffix = self.config.host_suffix.clone();
        let Some(state) = self.clusters.get_mut(cluster) else {
            return;
        };
        state.invalid_workloads.remove(id);
        let Some(host) = state.workload(id).map(|w| w.host(&suffix)) else {
            return;
        };
        let Ok(host) = host else {
            state.remove_workload(id, None);
            return;
        };
        let was_held = state.held.remove(id).is_some();
        // Unlinked from its host as it goes (a held workload never was linked).
        let Some(old) = state.remove_workload(id, Some(&host)) else {
            return;
        };
        let before = self.exported_spelling(&host);
        if let Some(spellings) = self.spellings.get_mut(&host) {
            spellings.remove(&old.spelling, &(cluster.clone(), id.clone()));
            if spellings.is_empty() {
                self.spellings.remove(&host);
            }
        }
        if !was_held && let Some(state) = self.clusters.get_mut(cluster) {
            if state.by_host.contains(&host) {
                recompute.insert(host.clone());
            } else {
                recompute.remove(&host);
                self.host_left(cluster, &host, changes);
            }
        }
        let after = self.exported_spelling(&host);
        if let Some(after) = after.filter(|a| before.as_ref() != Some(a)) {
            // The next spelling takes over.
            for (c, w) in self.workloads_spelled(&host, &after) {
                if let Some(state) = self.clusters.get_mut(&c) {
                    state.held.remove(&w);
                }
                let mut elsewhere = BTreeSet::new();
                self.admit(&c, &w, &host, &mut elsewhere, changes);
                self.recompute_backends(&c, &host, changes);
            }
            // The old spelling's other workloads leave the host (admitted first, the new
            // spelling keeps the host and its VIP through the change).
            if let Some(before) = &before {
                self.displace(&host, before, &after, changes);
            }
            self.refresh_conflicts(&host, &after);
        }
        self.admit_over_quota(cluster, changes);
    }

    /// Unlinks every workload of a cluster that is going away, so the spellings it held
    /// pass to the other clusters' workloads.
    pub(super) fn unlink_all_workloads(&mut self, cluster: &ClusterName, changes: &mut ChangeSet) {
        let Some(state) = self.clusters.get_mut(cluster) else {
            return;
        };
        // Held for the quota, they were never linked: nothing to give back.
        state.held.release_over_quota();
        let ids: Vec<WorkloadId> = state
            .all_workloads()
            .map(|w| (w.kind, w.key.clone()))
            .collect();
        let mut ignored = BTreeSet::new();
        for id in ids {
            self.unlink_workload(cluster, &id, &mut ignored, changes);
        }
    }

    /// The spelling exported for `host`: its oldest workload's, ties to the first spelling.
    fn exported_spelling(&self, host: &Host) -> Option<SmolStr> {
        self.spellings.get(host)?.exported()
    }

    fn workloads_spelled(&self, host: &Host, spelling: &str) -> Vec<(ClusterName, WorkloadId)> {
        self.spellings
            .get(host)
            .map(|s| s.spelled(spelling))
            .unwrap_or_default()
    }

    /// Takes `host` from the workloads spelled `spelling`: each leaves the host and is held
    /// for its conflict with the spelling `exported`.
    fn displace(&mut self, host: &Host, spelling: &str, exported: &str, changes: &mut ChangeSet) {
        for (c, w) in self.workloads_spelled(host, spelling) {
            self.detach(&c, &w, host, changes);
            self.hold_conflict(&c, &w, host, spelling, exported);
            self.admit_over_quota(&c, changes);
        }
    }

    fn hold_conflict(
        &mut self,
        cluster: &ClusterName,
        id: &WorkloadId,
        host: &Host,
        spelling: &str,
        exported: &str,
    ) {
        let held = Held::SpellingConflict {
            spelling: spelling.to_owned(),
            exported: exported.to_owned(),
        };
        if let Some(state) = self.clusters.get_mut(cluster) {
            state.held.insert(id.clone(), host.clone(), held);
        }
    }

    /// Points every conflict of `host` at the spelling now exported.
    fn refresh_conflicts(&mut self, host: &Host, exported: &str) {
        let Some(spellings) = self.spellings.get(host) else {
            return;
        };
        for (spelling, (c, w)) in spellings.other_than(exported) {
            self.hold_conflict(&c, &w, host, &spelling, exported);
        }
    }

    /// Links a workload whose spelling is exported, unless its cluster is at its quota.
    fn admit(
        &mut self,
        cluster: &ClusterName,
        id: &WorkloadId,
        host: &Host,
        recompute: &mut BTreeSet<Host>,
        changes: &mut ChangeSet,
    ) {
        let cap = self.config.max_hosts_per_cluster;
        let state = self.state(cluster);
        let Some(workload) = state.workload(id) else {
            return;
        };
        let (identity, env) = (workload.identity.clone(), workload.env.clone());
        if !state.by_host.contains(host) && state.by_host.len() >= cap {
            state.held.insert(id.clone(), host.clone(), Held::OverQuota);
            return;
        }
        state.held.remove(id);
        state.link_host(host, id);
        recompute.insert(host.clone());
        let entry = self.hosts.get_or_insert_with(host.clone(), || HostEntry {
            service: Arc::new(GlobalService {
                host: host.clone(),
                identity: identity.to_string(),
                env: env.to_string(),
                vip: None,
                ports: Vec::new(),
                backends: Default::default(),
                rejected: Vec::new(),
                policy: None,
                dependencies: super::HostDependencies::default(),
                clusterset: None,
            }),
            clusters: Default::default(),
            vip_error: None,
        });
        if entry.clusters.insert(cluster.clone()) && entry.clusters.len() == 1 {
            // A new host: give it an address and its policy.
            self.hosts_by_identity
                .entry(identity.clone())
                .or_default()
                .insert(host.clone());
            self.assign_vip(host);
            changes.hosts.insert(host.clone());
        }
    }

    /// Unlinks an exported workload from its host.
    fn detach(
        &mut self,
        cluster: &ClusterName,
        id: &WorkloadId,
        host: &Host,
        changes: &mut ChangeSet,
    ) {
        let Some(state) = self.clusters.get_mut(cluster) else {
            return;
        };
        if state.held.contains_key(id) {
            return;
        }
        state.unlink_host(host, id);
        if state.by_host.contains(host) {
            self.recompute_backends(cluster, host, changes);
        } else {
            self.host_left(cluster, host, changes);
        }
    }

    /// `cluster` has no workload for `host` any more.
    fn host_left(&mut self, cluster: &ClusterName, host: &Host, changes: &mut ChangeSet) {
        if let Some(entry) = self.hosts.get_mut(host) {
            entry.clusters.remove(cluster);
        }
        self.rebuild_host(host, changes);
    }

    /// Admits the hosts `cluster` held back for its quota while it has room, first by
    /// workload; all workloads of an admitted host together. Costs nothing while the cluster
    /// is full, however much it holds back.
    fn admit_over_quota(&mut self, cluster: &ClusterName, changes: &mut ChangeSet) {
        let cap = self.config.max_hosts_per_cluster;
        loop {
            let Some(state) = self.clusters.get(cluster) else {
                return;
            };
            if state.by_host.len() >= cap {
                return;
            }
            let Some((host, ids)) = state.held.first_over_quota() else {
                return;
            };
            let mut touched = BTreeSet::new();
            for id in ids {
                self.admit(cluster, &id, &host, &mut touched, changes);
            }
            self.recompute_backends(cluster, &host, changes);
        }
    }

    /// How many hosts `cluster` is held back from exporting by its quota.
    pub fn hosts_over_quota(&self, cluster: &ClusterName) -> usize {
        self.clusters
            .get(cluster)
            .map_or(0, |state| state.held.hosts_over_quota())
    }
}

#[cfg(test)]
#[path = "admission_tests.rs"]
mod tests;
