//! The global registry: the pure heart of federator.
//!
//! It folds [`Delta`]s from every cluster into one [`GlobalService`] per global host and says
//! which hosts each delta changed. It does no I/O and reads no clock; the result depends only
//! on the set of objects it has seen, not on the order they arrived in (VIPs excepted: they
//! keep the address first handed out). A delta costs what it touches: indexes lead from the
//! changed object to the hosts that depend on it.

mod admission;
mod cluster;
mod delta;
mod diagnostics;
mod findings;
mod global;
mod mesh;
mod vip;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::{ClusterInfo, ClusterName, Host, Object, ObjectRef};

pub use admission::Held;
use cluster::ClusterState;
pub use cluster::GatewayAddress;
pub use delta::{ChangeSet, Delta};
pub use diagnostics::{Diagnostic, Severity};
pub use findings::{ClusterFinding, FindingObject};
pub use global::{AppliedPolicy, BackendEndpoint, GlobalService, LocalBackend, RejectedBackend};
pub use vip::{VipAllocator, VipError};

/// Settings that shape the global model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Suffix of global hosts (`global` gives `<env>.<identity>.global`).
    pub host_suffix: String,
    /// Range VIPs are allocated from.
    pub vip_range: IpNet,
    /// Most hosts one cluster may contribute; past it, new hosts of that cluster are held
    /// back (and reported), so one runaway cluster cannot fill the VIP range or flood every
    /// other cluster with objects.
    pub max_hosts_per_cluster: usize,
}

/// Default of [`RegistryConfig::max_hosts_per_cluster`]: more global hosts than any one
/// cluster of today's fleets exports, far fewer than the 65,536 VIPs of the default range.
pub const DEFAULT_MAX_HOSTS_PER_CLUSTER: usize = 10_000;

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            host_suffix: "global".into(),
            vip_range: IpNet::V4(ipnet::Ipv4Net::new_assert([240, 0, 0, 0].into(), 16)),
            max_hosts_per_cluster: DEFAULT_MAX_HOSTS_PER_CLUSTER,
        }
    }
}

#[derive(Debug)]
struct HostEntry {
    service: GlobalService,
    /// Clusters that have workloads for this host.
    clusters: BTreeSet<ClusterName>,
    vip_error: Option<VipError>,
}

/// The global model of every cluster's services.
#[derive(Debug)]
pub struct Registry {
    config: RegistryConfig,
    clusters: BTreeMap<ClusterName, ClusterState>,
    hosts: HashMap<Host, HostEntry>,
    hosts_by_identity: HashMap<String, BTreeSet<Host>>,
    /// Where each identity's GlobalTrafficPolicies are, so finding a host's policy costs what
    /// that identity has, not what every cluster has.
    policies_by_identity: HashMap<String, BTreeSet<(ClusterName, crate::model::ObjectKey)>>,
    vips: VipAllocator,
    /// Hosts waiting for a VIP to free up.
    vip_waiting: BTreeSet<Host>,
    /// Every workload of a host by how its env and identity were written (`""` for
    /// lower-case, which sorts first): only the first spelling is exported.
    spellings: HashMap<Host, admission::Spellings>,
}

impl Registry {
    /// An empty registry.
    pub fn new(config: RegistryConfig) -> Self {
        let vips = VipAllocator::new(config.vip_range);
        Self {
            config,
            clusters: BTreeMap::new(),
            hosts: HashMap::new(),
            hosts_by_identity: HashMap::new(),
            policies_by_identity: HashMap::new(),
            vips,
            vip_waiting: BTreeSet::new(),
            spellings: HashMap::new(),
        }
    }

    /// The settings the registry was built with.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// One global host, if it exists.
    pub fn get(&self, host: &Host) -> Option<&GlobalService> {
        self.hosts.get(host).map(|e| &e.service)
    }

    /// Every global host, sorted by name.
    pub fn services(&self) -> Vec<&GlobalService> {
        let mut out: Vec<_> = self.hosts.values().map(|e| &e.service).collect();
        out.sort_by(|a, b| a.host.cmp(&b.host));
        out
    }

    /// Number of global hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Whether there are no global hosts.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Registered clusters, sorted by name.
    pub fn clusters(&self) -> Vec<&ClusterInfo> {
        self.clusters
            .values()
            .filter(|c| c.registered)
            .map(|c| &c.info)
            .collect()
    }

    /// A registered cluster's settings.
    pub fn cluster(&self, name: &ClusterName) -> Option<&ClusterInfo> {
        self.clusters
            .get(name)
            .filter(|c| c.registered)
            .map(|c| &c.info)
    }

    /// Where other clusters reach `cluster` (its east-west gateway), sorted.
    pub fn gateway_addresses(&self, cluster: &ClusterName) -> &[GatewayAddress] {
        self.clusters
            .get(cluster)
            .map(|c| &c.gateway_addresses[..])
            .unwrap_or_default()
    }

    /// The VIP table, to persist.
    pub fn vip_table(&self) -> BTreeMap<Host, IpAddr> {
        self.vips.table()
    }

    /// Restores a saved VIP table before any host exists, so hosts get their old addresses
    /// back. Entries for hosts that never show up keep their address reserved until
    /// [`Registry::prune_vips`].
    pub fn restore_vips(
        &mut self,
        table: impl IntoIterator<Item = (Host, IpAddr)>,
    ) -> Vec<VipError> {
        self.vips.restore(table)
    }

    /// Frees addresses held for hosts that do not exist (call once the initial sync is done).
    pub fn prune_vips(&mut self) -> ChangeSet {
        let stale: Vec<Host> = self
            .vips
            .table()
            .into_keys()
            .filter(|h| !self.hosts.contains_key(h))
            .collect();
        for host in &stale {
            self.vips.release(host);
        }
        let mut changes = ChangeSet::default();
        if !stale.is_empty() {
            self.retry_waiting_vips(&mut changes);
        }
        changes
    }

    /// Folds one delta into the model and reports what it changed.
    pub fn apply(&mut self, delta: Delta) -> ChangeSet {
        let mut changes = ChangeSet::default();
        // (cluster, host) pairs whose backends must be recomputed.
        let mut recompute: BTreeSet<Host> = BTreeSet::new();
        let mut dirty_cluster: Option<ClusterName> = None;
        match delta {
            Delta::UpsertCluster(info) => {
                let name = info.name.clone();
                let state = self
                    .clusters
                    .entry(name.clone())
                    .or_insert_with(|| ClusterState::new(info.clone(), false));
                if !state.registered || state.info != info {
                    state.registered = true;
                    state.info = info;
                    state.refresh_derived_region();
                    recompute.extend(state.hosts().cloned());
                    changes.hosts.extend(state.hosts().cloned());
                    changes.clusters.insert(name.clone());
                    dirty_cluster = Some(name);
                }
            }
            Delta::RemoveCluster(name) => {
                self.unlink_all_workloads(&name, &mut changes);
                if let Some(state) = self.clusters.remove(&name) {
                    changes.clusters.insert(name.clone());
                    let hosts: Vec<Host> = state.hosts().cloned().collect();
                    for host in hosts {
                        if let Some(entry) = self.hosts.get_mut(&host) {
                            entry.clusters.remove(&name);
                        }
                        self.rebuild_host(&host, &mut changes);
                    }
                    // Its policies may have governed hosts elsewhere.
                    for policy in state.policies.values() {
                        self.unindex_policy(&name, policy);
                        self.rebuild_identity(&policy.identity, &mut changes);
                    }
                }
            }
            Delta::Upsert(cluster, object) => {
                self.upsert_object(&cluster, object, &mut recompute, &mut changes);
                dirty_cluster = Some(cluster);
            }
            Delta::Remove(cluster, object) => {
                self.remove_object(&cluster, &object, &mut recompute, &mut changes);
                dirty_cluster = Some(cluster);
            }
        }
        if let Some(cluster) = dirty_cluster {
            for host in recompute {
                self.recompute_backends(&cluster, &host, &mut changes);
            }
            if self
                .clusters
                .get(&cluster)
                .is_some_and(ClusterState::is_empty)
            {
                self.clusters.remove(&cluster);
            }
        }
        changes
    }

    fn state(&mut self, cluster: &ClusterName) -> &mut ClusterState {
        self.clusters
            .entry(cluster.clone())
            .or_insert_with(|| ClusterState::new(ClusterInfo::new(cluster.clone()), false))
    }

    fn upsert_object(
        &mut self,
        cluster: &ClusterName,
        object: Object,
        recompute: &mut BTreeSet<Host>,
        changes: &mut ChangeSet,
    ) {
        let suffix = self.config.host_suffix.clone();
        match object {
            Object::Service(service) => {
                let state = self.state(cluster);
                let key = service.key.clone();
                state.hosts_of_service(&key, &suffix, recompute);
                state.upsert_service(service);
                state.hosts_of_service(&key, &suffix, recompute);
            }
            Object::EndpointSlice(slice) => {
                let state = self.state(cluster);
                let new_service =
                    crate::model::ObjectKey::new(&slice.key.namespace, &slice.service);
                if let Some(old) = state.upsert_slice(slice) {
                    let old_service =
                        crate::model::ObjectKey::new(&old.key.namespace, &old.service);
                    state.hosts_of_service(&old_service, &suffix, recompute);
                }
                state.hosts_of_service(&new_service, &suffix, recompute);
            }
            Object::Workload(workload) => {
                let id = (workload.kind, workload.key.clone());
                let state = self.state(cluster);
                let same_host = state.workloads.get(&id).is_some_and(|old| {
                    old.identity == workload.identity
                        && old.env == workload.env
                        && old.spelling == workload.spelling
                }) && !state.invalid_workloads.contains_key(&id)
                    && !state.held.contains_key(&id);
                if same_host {
                    // Only labels changed: keep the host (and its VIP), recompute backends.
                    if let Ok(host) = Host::build(&workload.env, &workload.identity, &suffix) {
                        recompute.insert(host);
                    }
                    state.upsert_workload(workload);
                } else {
                    self.unlink_workload(cluster, &id, recompute, changes);
                    self.link_workload(cluster, workload, recompute, changes);
                }
            }
            Object::Node(node) => {
                let state = self.state(cluster);
                let name = node.name.clone();
                state.upsert_node(node);
                self.node_changed(cluster, &name, recompute, changes);
            }
            Object::Gateway(gateway) => {
                let state = self.state(cluster);
                let unchanged = state.gateways.get(&gateway.key) == Some(&gateway);
                state.gateways.insert(gateway.key.clone(), gateway);
                if state.refresh_gateway_addresses() {
                    changes.hosts.extend(state.hosts().cloned());
                }
                if !unchanged {
                    // The cluster's own Gateway resource and findings follow its gateway.
                    changes.clusters.insert(cluster.clone());
                }
            }
            Object::MeshNamespace(namespace) => {
                mesh::set_mesh_namespace(self.state(cluster), Some(namespace), changes);
            }
            Object::PassthroughClaim(claim) => {
                let claims = &mut self.state(cluster).passthrough_claims;
                if claims.get(&claim.key) != Some(&claim) {
                    claims.insert(claim.key.clone(), claim);
                    changes.clusters.insert(cluster.clone());
                }
            }
            Object::Policy(policy) => {
                let mut identities = BTreeSet::from([policy.identity.clone()]);
                self.policies_by_identity
                    .entry(policy.identity.clone())
                    .or_default()
                    .insert((cluster.clone(), policy.key.clone()));
                let state = self.state(cluster);
                let new_identity = policy.identity.clone();
                if let Some(old) = state.policies.insert(policy.key.clone(), policy)
                    && old.identity != new_identity
                {
                    // The policy moved to another identity: the old one loses it.
                    self.unindex_policy(cluster, &old);
                    identities.insert(old.identity);
                }
                for identity in identities {
                    self.rebuild_identity(&identity, changes);
                }
            }
        }
    }

    fn remove_object(
        &mut self,
        cluster: &ClusterName,
        object: &ObjectRef,
        recompute: &mut BTreeSet<Host>,
        changes: &mut ChangeSet,
    ) {
        let suffix = self.config.host_suffix.clone();
        let Some(state) = self.clusters.get_mut(cluster) else {
            return;
        };
        match object {
            ObjectRef::Service(key) => {
                state.hosts_of_service(key, &suffix, recompute);
                state.remove_service(key);
            }
            ObjectRef::EndpointSlice(key) => {
                if let Some(old) = state.remove_slice(key) {
                    let service = crate::model::ObjectKey::new(&key.namespace, &old.service);
                    state.hosts_of_service(&service, &suffix, recompute);
                }
            }
            ObjectRef::Workload(kind, key) => {
                let id = (*kind, key.clone());
                self.unlink_workload(cluster, &id, recompute, changes);
            }
            ObjectRef::Node(name) => {
                state.hosts_on_node(name, &suffix, recompute);
                if state.remove_node(name).is_some() {
                    self.node_changed(cluster, name, recompute, changes);
                }
            }
            ObjectRef::Gateway(key) => {
                if state.gateways.remove(key).is_some() {
                    if state.refresh_gateway_addresses() {
                        changes.hosts.extend(state.hosts().cloned());
                    }
                    changes.clusters.insert(cluster.clone());
                }
            }
            ObjectRef::MeshNamespace(name) => {
                if state
                    .mesh_namespace
                    .as_ref()
                    .is_some_and(|n| &n.name == name)
                {
                    mesh::set_mesh_namespace(state, None, changes);
                }
            }
            ObjectRef::PassthroughClaim(key) => {
                if state.passthrough_claims.remove(key).is_some() {
                    changes.clusters.insert(cluster.clone());
                }
            }
            ObjectRef::Policy(key) => {
                if let Some(old) = state.policies.remove(key) {
                    self.unindex_policy(cluster, &old);
                    self.rebuild_identity(&old.identity, changes);
                }
            }
        }
    }

    /// A node appeared, changed or went: endpoints on it may have moved locality, the
    /// cluster's region may have changed, and a NodePort gateway may have new addresses.
    fn node_changed(
        &mut self,
        cluster: &ClusterName,
        node: &str,
        recompute: &mut BTreeSet<Host>,
        changes: &mut ChangeSet,
    ) {
        let suffix = self.config.host_suffix.clone();
        let state = self.state(cluster);
        state.hosts_on_node(node, &suffix, recompute);
        if state.refresh_derived_region() {
            // Endpoints without a region of their own and the gateway's locality move.
            recompute.extend(state.hosts().cloned());
            changes.hosts.extend(state.hosts().cloned());
        }
        if state.refresh_gateway_addresses() {
            changes.hosts.extend(state.hosts().cloned());
            // A NodePort gateway's addresses moved: its findings may have too.
            changes.clusters.insert(cluster.clone());
        }
    }

    /// Recomputes one cluster's backends for `host` and, if they changed, the host.
    fn recompute_backends(&mut self, cluster: &ClusterName, host: &Host, changes: &mut ChangeSet) {
        let Some(state) = self.clusters.get_mut(cluster) else {
            return;
        };
        if !state.host_workloads.contains_key(host) {
            return;
        }
        let backends = state.compute_backends(host);
        if state.host_backends.get(host) != Some(&backends) {
            state.host_backends.insert(host.clone(), backends);
            self.rebuild_host(host, changes);
        }
    }

    /// Rebuilds a host from its clusters' backends and policies; drops it when no cluster
    /// has a workload for it any more.
    fn rebuild_host(&mut self, host: &Host, changes: &mut ChangeSet) {
        let Some(entry) = self.hosts.get(host) else {
            return;
        };
        if entry.clusters.is_empty() {
            let identity = entry.service.identity.clone();
            self.hosts.remove(host);
            if let Some(hosts) = self.hosts_by_identity.get_mut(&identity) {
                hosts.remove(host);
                if hosts.is_empty() {
                    self.hosts_by_identity.remove(&identity);
                }
            }
            self.vip_waiting.remove(host);
            if self.vips.release(host).is_some() {
                self.retry_waiting_vips(changes);
            }
            changes.hosts.insert(host.clone());
            return;
        }
        let mut candidates: Vec<(ClusterName, LocalBackend)> = Vec::new();
        for cluster in &entry.clusters {
            let backends = self
                .clusters
                .get(cluster)
                .and_then(|s| s.host_backends.get(host));
            for backend in backends.into_iter().flatten() {
                candidates.push((cluster.clone(), backend.clone()));
            }
        }
        let policy = self.effective_policy(&entry.service.identity, &entry.service.env);
        let Some(entry) = self.hosts.get_mut(host) else {
            return;
        };
        let rebuilt = global::fold_backends(&entry.service, candidates, policy);
        if rebuilt != entry.service {
            entry.service = rebuilt;
            changes.hosts.insert(host.clone());
        }
    }

    fn rebuild_identity(&mut self, identity: &str, changes: &mut ChangeSet) {
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

    /// The policy for `identity`/`env`: one naming the env beats one for every env; among
    /// equals the oldest, then the first by cluster, namespace and name.
    fn effective_policy(&self, identity: &str, env: &str) -> Option<AppliedPolicy> {
        self.policy_candidates(identity, env).into_iter().next()
    }

    /// Every policy that targets `identity`/`env`, the one in force first.
    fn policy_candidates(&self, identity: &str, env: &str) -> Vec<AppliedPolicy> {
        let mut out: Vec<AppliedPolicy> = self
            .policies_by_identity
            .get(identity)
            .into_iter()
            .flatten()
            .filter_map(|(cluster, key)| {
                let info = self.clusters.get(cluster)?.policies.get(key)?;
                info.env
                    .as_deref()
                    .is_none_or(|e| e == env)
                    .then(|| AppliedPolicy {
                        cluster: cluster.clone(),
                        info: info.clone(),
                    })
            })
            .collect();
        out.sort_by(|a, b| {
            (
                a.info.env.is_none(),
                a.info.created.unwrap_or(i64::MAX),
                &a.cluster,
                &a.info.key,
            )
                .cmp(&(
                    b.info.env.is_none(),
                    b.info.created.unwrap_or(i64::MAX),
                    &b.cluster,
                    &b.info.key,
                ))
        });
        out
    }

    fn unindex_policy(&mut self, cluster: &ClusterName, policy: &crate::model::PolicyInfo) {
        if let Some(set) = self.policies_by_identity.get_mut(&policy.identity) {
            set.remove(&(cluster.clone(), policy.key.clone()));
            if set.is_empty() {
                self.policies_by_identity.remove(&policy.identity);
            }
        }
    }

    fn assign_vip(&mut self, host: &Host) {
        let result = self.vips.allocate(host);
        if let Some(entry) = self.hosts.get_mut(host) {
            match result {
                Ok(vip) => {
                    entry.service.vip = Some(vip);
                    entry.vip_error = None;
                    self.vip_waiting.remove(host);
                }
                Err(err) => {
                    entry.service.vip = None;
                    entry.vip_error = Some(err);
                    self.vip_waiting.insert(host.clone());
                }
            }
        }
    }

    fn retry_waiting_vips(&mut self, changes: &mut ChangeSet) {
        let waiting: Vec<Host> = self.vip_waiting.iter().cloned().collect();
        for host in waiting {
            self.assign_vip(&host);
            if self.vip_waiting.contains(&host) {
                break;
            }
            changes.hosts.insert(host);
        }
    }
}

#[cfg(test)]
mod tests;
