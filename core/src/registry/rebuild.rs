//! Rebuilding global hosts: a cluster's backends for a host are recomputed, and the host is
//! folded again from every cluster's backends and the policy in force.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{ChangeSet, LocalBackend, Registry, global};
use crate::model::{ClusterName, Host};

impl Registry {
    /// Recomputes one cluster's backends for `host` and, if they changed, the host.
    pub(super) fn recompute_backends(
        &mut self,
        cluster: &ClusterName,
        host: &Host,
        changes: &mut ChangeSet,
    ) {
        let Some(state) = self.clusters.get_mut(cluster) else {
            return;
        };
        // A host the cluster has no workload for has nothing to compute (its backends went
        // with its last workload).
        let backends = state.compute_backends(host, &mut self.interners.localities);
        let Some(links) = state.by_host.get_mut(host) else {
            return;
        };
        if links.backends.as_deref() != Some(&backends[..]) {
            links.backends = Some(backends.into());
            self.rebuild_host(host, changes);
        }
    }

    /// Rebuilds a host from its clusters' backends and policies; drops it when no cluster
    /// has a workload for it any more.
    pub(super) fn rebuild_host(&mut self, host: &Host, changes: &mut ChangeSet) {
        let Some(entry) = self.hosts.get(host) else {
            return;
        };
        if entry.clusters.is_empty() {
            let identity = entry.service.identity.clone();
            self.hosts.remove(host);
            if let Some(hosts) = self.hosts_by_identity.get_mut(identity.as_str()) {
                hosts.remove(host);
                if hosts.is_empty() {
                    self.hosts_by_identity.remove(identity.as_str());
                }
            }
            self.vip_waiting.remove(host);
            if self.vips.release(host).is_some() {
                self.retry_waiting_vips(changes);
            }
            changes.hosts.insert(host.clone());
            return;
        }
        let candidates: Vec<(ClusterName, Arc<[LocalBackend]>)> = entry
            .clusters
            .iter()
            .filter_map(|cluster| {
                let links = self.clusters.get(cluster)?.by_host.get(host)?;
                Some((cluster.clone(), Arc::clone(links.backends.as_ref()?)))
            })
            .collect();
        let policy = self.effective_policy(&entry.service.identity, &entry.service.env);
        let dependencies =
            self.host_dependencies(host, &entry.service.identity, entry.clusters.as_slice());
        let cluster_ids = host
            .is_clusterset()
            .then(|| self.cluster_ids(entry.clusters.as_slice()));
        let Some(entry) = self.hosts.get_mut(host) else {
            return;
        };
        let rebuilt = global::fold_backends(
            &entry.service,
            candidates,
            policy,
            dependencies,
            cluster_ids,
        );
        if rebuilt != *entry.service {
            entry.service = Arc::new(rebuilt);
            changes.hosts.insert(host.clone());
        }
    }

    /// The id each of `clusters` goes by in the MCS DNS: its ClusterProperty, else its name.
    /// Ids name a service's endpoints per cluster, so when two would be the same (two
    /// properties alike, or one naming another cluster), every cluster goes by its registered
    /// name instead, which are unique.
    fn cluster_ids(&self, clusters: &[ClusterName]) -> BTreeMap<ClusterName, String> {
        let ids: BTreeMap<ClusterName, String> = clusters
            .iter()
            .filter_map(|c| Some((c.clone(), self.clusters.get(c)?.cluster_id())))
            .collect();
        let mut seen = BTreeSet::new();
        if ids.values().all(|id| seen.insert(id.as_str())) {
            return ids;
        }
        ids.into_keys()
            .map(|c| {
                let name = c.as_str().to_owned();
                (c, name)
            })
            .collect()
    }

    /// Rebuilds every host of `identity` (its policies changed).
    pub(super) fn rebuild_identity(&mut self, identity: &str, changes: &mut ChangeSet) {
        let hosts: Vec<Host> = self
            .hosts_by_identity
            .get(identity)
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        for host in hosts {
            self.rebuild_host(&host, changes);
        }
    }
}
