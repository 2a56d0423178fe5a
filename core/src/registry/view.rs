//! The registry as its readers see it: an immutable view, cheap to clone and to keep.
//!
//! The registry loop is the registry's only owner. After each batch it publishes a view;
//! writers and the DNS server render from the view they hold, with no lock, while the loop
//! goes on folding deltas. The maps are persistent (`imbl`): a new view shares every entry
//! that did not change, so publishing costs what the batch changed, not the registry's size;
//! each host's service is one allocation, shared by the registry and every view holding it.

use std::sync::Arc;

use imbl::OrdMap;

use super::change_log::{ChangeLog, Since};
use super::cluster::ClusterState;
use super::{ClusterFinding, GatewayAddress, GlobalService, Registry, RegistryConfig};
use crate::model::{ClusterName, Host, Locality, PassthroughClaimInfo};

/// An immutable view of the registry: what rendering, DNS and reports read.
#[derive(Clone, Debug)]
pub struct RegistryView {
    config: Arc<RegistryConfig>,
    hosts: OrdMap<Host, Arc<GlobalService>>,
    clusters: OrdMap<ClusterName, Arc<ClusterView>>,
    /// Counts the publications that changed some host, so the DNS server rebuilds only then.
    hosts_generation: u64,
    /// The hosts each recent generation changed.
    changes: ChangeLog,
}

/// What readers need of one cluster, worked out once per change of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClusterView {
    /// The Istio network of its endpoints.
    pub(crate) network: String,
    /// Where other clusters see its east-west gateway.
    pub(crate) gateway_locality: Locality,
    /// Whether it has an east-west gateway Service.
    pub(crate) has_gateway: bool,
    /// Where other clusters reach it, sorted.
    pub(crate) gateway_addresses: Vec<GatewayAddress>,
    /// Users' Gateways that already pass the global hosts through, sorted.
    pub(crate) passthrough_claims: Vec<PassthroughClaimInfo>,
    /// Its setup problems, sorted.
    pub(crate) findings: Vec<ClusterFinding>,
    /// How many of its hosts are held back by the host quota.
    pub(crate) hosts_over_quota: usize,
}

impl ClusterView {
    fn of(registry: &Registry, name: &ClusterName, state: &ClusterState) -> Self {
        Self {
            network: state.network().to_owned(),
            gateway_locality: state.gateway_locality(),
            has_gateway: !state.gateways.is_empty(),
            gateway_addresses: state.gateway_addresses.clone(),
            passthrough_claims: registry.passthrough_claims(name),
            findings: registry.cluster_findings(name),
            hosts_over_quota: registry.hosts_over_quota(name),
        }
    }
}

impl RegistryView {
    /// The settings the registry was built with.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// One global host, if it exists.
    pub fn get(&self, host: &Host) -> Option<&GlobalService> {
        self.hosts.get(host).map(|s| &**s)
    }

    /// Every global host, sorted by name.
    pub fn services(&self) -> impl Iterator<Item = &GlobalService> {
        self.hosts.values().map(|s| &**s)
    }

    /// The global hosts after `host` (all of them for `None`), sorted by name: pages.
    pub fn services_after(&self, host: Option<&Host>) -> impl Iterator<Item = &GlobalService> {
        use std::ops::Bound::{Excluded, Unbounded};
        let from = host.map_or(Unbounded, Excluded);
        self.hosts.range((from, Unbounded)).map(|(_, s)| &**s)
    }

    /// Number of global hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Whether there are no global hosts.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Moves exactly when a publication changed some host (so DNS rebuilds only then).
    pub fn hosts_generation(&self) -> u64 {
        self.hosts_generation
    }

    /// What changed after `generation` (a [`RegistryView::hosts_generation`] this reader
    /// saw), as far as the change history reaches.
    pub fn changed_since(&self, generation: u64) -> Since {
        self.changes.since(generation, self.hosts_generation)
    }

    /// Everything known of `cluster`, registered or not.
    fn cluster_view(&self, cluster: &ClusterName) -> Option<&ClusterView> {
        self.clusters.get(cluster).map(|c| &**c)
    }

    /// The Istio network of `cluster`'s endpoints (its name when nothing else is known).
    pub fn network<'a>(&'a self, cluster: &'a ClusterName) -> &'a str {
        self.cluster_view(cluster)
            .map_or(cluster.as_str(), |c| c.network.as_str())
    }

    /// The locality other clusters see `cluster`'s east-west gateway in.
    pub fn gateway_locality(&self, cluster: &ClusterName) -> Locality {
        self.cluster_view(cluster)
            .map(|c| c.gateway_locality.clone())
            .unwrap_or_default()
    }

    /// Whether `cluster` has an east-west gateway Service.
    pub fn has_gateway(&self, cluster: &ClusterName) -> bool {
        self.cluster_view(cluster).is_some_and(|c| c.has_gateway)
    }

    /// Where other clusters reach `cluster` (its east-west gateway), sorted.
    pub fn gateway_addresses(&self, cluster: &ClusterName) -> &[GatewayAddress] {
        self.cluster_view(cluster)
            .map(|c| &c.gateway_addresses[..])
            .unwrap_or_default()
    }

    /// Users' Gateways in `cluster` that already pass global hosts through, sorted.
    pub fn passthrough_claims(&self, cluster: &ClusterName) -> &[PassthroughClaimInfo] {
        self.cluster_view(cluster)
            .map(|c| &c.passthrough_claims[..])
            .unwrap_or_default()
    }

    /// The setup problems of `cluster`, sorted.
    pub fn cluster_findings(&self, cluster: &ClusterName) -> &[ClusterFinding] {
        self.cluster_view(cluster)
            .map(|c| &c.findings[..])
            .unwrap_or_default()
    }

    /// How many of `cluster`'s hosts the host quota holds back.
    pub fn hosts_over_quota(&self, cluster: &ClusterName) -> usize {
        self.cluster_view(cluster).map_or(0, |c| c.hosts_over_quota)
    }

    /// Whether both views hold the same hosts and clusters (generations aside).
    pub fn same_content(&self, other: &Self) -> bool {
        self.config == other.config && self.hosts == other.hosts && self.clusters == other.clusters
    }
}

impl Registry {
    /// Brings the view up to date with every change since the last publication and returns
    /// it: the cost is what changed, not the registry's size.
    pub fn publish(&mut self) -> RegistryView {
        let mut changed = Vec::new();
        for host in self.hosts.take_dirty() {
            match self.hosts.get(&host) {
                Some(entry) => {
                    let unchanged = self
                        .view
                        .hosts
                        .get(&host)
                        .is_some_and(|s| Arc::ptr_eq(s, &entry.service));
                    if !unchanged {
                        self.view.hosts.insert(host.clone(), entry.service.clone());
                        changed.push(host);
                    }
                }
                None => {
                    if self.view.hosts.remove(&host).is_some() {
                        changed.push(host);
                    }
                }
            }
        }
        if !changed.is_empty() {
            self.view.hosts_generation += 1;
            let generation = self.view.hosts_generation;
            let capacity = self.config.change_history;
            self.view.changes.record(generation, changed, capacity);
        }
        for name in self.clusters.take_dirty() {
            match self.clusters.get(&name) {
                Some(state) => {
                    let cluster = Arc::new(ClusterView::of(self, &name, state));
                    self.view.clusters.insert(name, cluster);
                }
                None => {
                    self.view.clusters.remove(&name);
                }
            }
        }
        self.view.clone()
    }

    /// A view built from scratch, without touching what is pending for [`Registry::publish`]:
    /// for one-off readers (`federator render`) and to check the published view.
    pub fn full_view(&self) -> RegistryView {
        RegistryView {
            config: self.view.config.clone(),
            hosts: self
                .hosts
                .iter()
                .map(|(host, entry)| (host.clone(), entry.service.clone()))
                .collect(),
            clusters: self
                .clusters
                .iter()
                .map(|(name, state)| (name.clone(), Arc::new(ClusterView::of(self, name, state))))
                .collect(),
            hosts_generation: self.view.hosts_generation,
            changes: self.view.changes.clone(),
        }
    }

    pub(super) fn empty_view(config: &RegistryConfig) -> RegistryView {
        RegistryView {
            config: Arc::new(config.clone()),
            hosts: OrdMap::new(),
            clusters: OrdMap::new(),
            hosts_generation: 0,
            changes: ChangeLog::default(),
        }
    }
}
