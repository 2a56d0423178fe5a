//! The global registry: the pure heart of federator.
//!
//! It folds [`Delta`]s from every cluster into one [`GlobalService`] per global host and says
//! which hosts each delta changed. It does no I/O and reads no clock; the result depends only
//! on the set of objects it has seen, not on the order they arrived in (VIPs excepted: they
//! keep the address first handed out). A delta costs what it touches: indexes lead from the
//! changed object to the hosts that depend on it.

mod admission;
mod apply;
mod change_log;
mod cluster;
mod cluster_backends;
mod delta;
mod dependencies;
mod diagnostics;
mod export_status;
mod findings;
mod global;
mod host_vips;
mod interner;
mod mesh;
mod policies;
mod rebuild;
mod sorted_set;
mod spellings;
mod status;
mod tracked;
mod view;
mod vip;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use ipnet::IpNet;

use crate::model::{ClusterInfo, ClusterName, Host};

pub use admission::Held;
pub use change_log::Since;
use cluster::ClusterState;
pub use cluster::GatewayAddress;
pub use cluster_backends::ClusterBackends;
pub use delta::{ChangeSet, Delta};
pub use diagnostics::{Diagnostic, Severity};
pub use findings::{ClusterFinding, FindingObject};
pub use global::{
    AppliedPolicy, BackendEndpoint, CallerWorkload, ClustersetInfo, GlobalService,
    HostDependencies, LocalBackend, RejectedBackend,
};
pub(crate) use interner::Interner;
pub use status::{ObjectStatus, PRECEDENCE, StatusCondition, StatusKind};
use tracked::Tracked;
pub use view::RegistryView;
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
    /// Publications whose changed hosts are remembered, so a reader that lost touch (a gRPC
    /// `Watch` client reconnecting) gets only what changed since, not everything again.
    pub change_history: usize,
}

/// Default of [`RegistryConfig::change_history`]: some minutes of a busy fleet.
pub const DEFAULT_CHANGE_HISTORY: usize = 4096;

/// Default of [`RegistryConfig::max_hosts_per_cluster`]: more global hosts than any one
/// cluster of today's fleets exports, far fewer than the 65,536 VIPs of the default range.
pub const DEFAULT_MAX_HOSTS_PER_CLUSTER: usize = 10_000;

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            host_suffix: "global".into(),
            vip_range: IpNet::V4(ipnet::Ipv4Net::new_assert([240, 0, 0, 0].into(), 16)),
            max_hosts_per_cluster: DEFAULT_MAX_HOSTS_PER_CLUSTER,
            change_history: DEFAULT_CHANGE_HISTORY,
        }
    }
}

#[derive(Debug)]
struct HostEntry {
    /// Shared with the published views until it changes.
    service: Arc<GlobalService>,
    /// Clusters that have workloads for this host (a few each: a sorted vector).
    clusters: sorted_set::SortedSet<ClusterName>,
    vip_error: Option<VipError>,
}

/// The global model of every cluster's services.
#[derive(Debug)]
pub struct Registry {
    config: RegistryConfig,
    clusters: Tracked<BTreeMap<ClusterName, ClusterState>>,
    hosts: Tracked<HashMap<Host, HostEntry>>,
    hosts_by_identity: HashMap<crate::model::SmolStr, sorted_set::SortedSet<Host>>,
    /// Where each identity's GlobalTrafficPolicies are, so finding a host's policy costs what
    /// that identity has, not what every cluster has.
    policies_by_identity: HashMap<String, BTreeSet<(ClusterName, cluster::PolicyId)>>,
    /// Where each source identity's Dependencies are, and the reverse: the sources that
    /// call each identity.
    dependencies: dependencies::DependencyIndex,
    vips: VipAllocator,
    /// Hosts waiting for a VIP to free up.
    vip_waiting: BTreeSet<Host>,
    /// Every workload of a host by how its env and identity were written (`""` for
    /// lower-case): only the oldest workload's spelling is exported.
    spellings: HashMap<Host, spellings::HostSpellings>,
    /// The last published view; [`Registry::publish`] refreshes what changed since.
    view: RegistryView,
    /// Localities and port lists, each held once.
    interners: interner::Interners,
}

impl Registry {
    /// An empty registry.
    pub fn new(config: RegistryConfig) -> Self {
        let vips = VipAllocator::new(config.vip_range);
        Self {
            view: Self::empty_view(&config),
            config,
            clusters: Tracked::new(BTreeMap::new()),
            hosts: Tracked::new(HashMap::new()),
            hosts_by_identity: HashMap::new(),
            policies_by_identity: HashMap::new(),
            dependencies: dependencies::DependencyIndex::default(),
            vips,
            vip_waiting: BTreeSet::new(),
            spellings: HashMap::new(),
            interners: interner::Interners::default(),
        }
    }

    /// The settings the registry was built with.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// One global host, if it exists.
    pub fn get(&self, host: &Host) -> Option<&GlobalService> {
        self.hosts.get(host).map(|e| &*e.service)
    }

    /// Every global host, sorted by name.
    pub fn services(&self) -> Vec<&GlobalService> {
        let mut out: Vec<_> = self.hosts.values().map(|e| &*e.service).collect();
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

    /// Every object `cluster` contributes, valid or rejected (registered or not): what a
    /// new source of the cluster's objects must list again, or see removed.
    pub fn references(&self, cluster: &ClusterName) -> BTreeSet<crate::model::ObjectRef> {
        self.clusters
            .get(cluster)
            .map(|c| c.references())
            .unwrap_or_default()
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

    /// The state of `cluster`, created on first sight (objects may arrive before the cluster).
    fn state(&mut self, cluster: &ClusterName) -> &mut ClusterState {
        cluster_state(&mut self.clusters, cluster)
    }
}

/// The state of `cluster`, made (unregistered) when its objects come first. A function of
/// the table alone, so the registry's other fields stay free to borrow beside it.
fn cluster_state<'a>(
    clusters: &'a mut Tracked<BTreeMap<ClusterName, ClusterState>>,
    cluster: &ClusterName,
) -> &'a mut ClusterState {
    clusters.get_or_insert_with(cluster.clone(), || {
        ClusterState::new(ClusterInfo::new(cluster.clone()), false)
    })
}

#[cfg(test)]
mod tests;
