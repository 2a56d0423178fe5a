//! Everything the registry knows of one cluster, indexed so that a change touches only what
//! depends on it.
//!
//! This module stores the cluster's objects and their indexes; `dependents` finds the hosts
//! a change touches, `topology` works out localities and gateway addresses, and `backends`
//! computes the cluster's backends for a host.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::model::{
    ClusterInfo, DependencyInfo, GatewayInfo, Host, Labels, MeshNamespaceInfo, NodeInfo, ObjectKey,
    ObjectRef, PassthroughClaimInfo, PolicyInfo, PolicySource, RejectedInfo, ServiceInfo, SmolStr,
    WorkloadInfo, WorkloadKind,
};

use super::global::LocalBackend;
use super::interner::Interner;
use super::sorted_set::SortedSet;

mod arena;
mod backends;
mod dependents;
mod held;
mod keys;
mod references;
#[cfg(test)]
mod selector_index_tests;
mod slices;
#[cfg(test)]
mod storage_tests;
mod topology;

use arena::{Arena, Id};
pub(crate) use held::HeldWorkloads;
pub use topology::GatewayAddress;

/// Identifies a GlobalTrafficPolicy or Dependency within a cluster: federator's and Admiral's
/// may share a namespace and name.
pub(crate) type PolicyId = (PolicySource, ObjectKey);

/// Identifies a workload within a cluster.
pub(crate) type WorkloadId = (WorkloadKind, ObjectKey);

/// A set of ids: most hold one, and up to four are held inline.
type IdSet = SortedSet<Id, 4>;

/// What the cluster has in one namespace; the objects themselves are in the cluster's
/// arenas, and this holds their ids.
#[derive(Debug, Default)]
struct NamespaceIndex {
    /// How many Services it has.
    services: usize,
    /// Its workloads' ids.
    workloads: BTreeSet<Id>,
    /// How many of its workloads are ServiceExports: every Service and slice delta asks
    /// whether one names its Service, and most namespaces have none.
    exports: usize,
    /// Services by the first pair of their selector (hashed, see [`pair_hash`]): a pod
    /// carries that pair, or the Service does not select it. Matching a workload against
    /// only these, not every Service of the namespace, keeps filling a namespace of
    /// thousands of Services and workloads linear.
    services_by_pair: HashMap<u64, IdSet>,
    /// Workloads by every pair of their pods' labels (hashed), for the converse.
    workloads_by_pair: HashMap<u64, IdSet>,
}

impl NamespaceIndex {
    fn index_service(&mut self, id: Id, service: &ServiceInfo, add: bool) {
        if let Some((key, value)) = service.selector.iter().next() {
            index(&mut self.services_by_pair, pair_hash(key, value), id, add);
        }
    }

    fn index_workload(&mut self, id: Id, labels: &Labels, add: bool) {
        for (key, value) in labels.iter() {
            index(&mut self.workloads_by_pair, pair_hash(key, value), id, add);
        }
    }
}

/// Adds `id` to (or removes it from) the set under `hash`, dropping a set left empty.
fn index(sets: &mut HashMap<u64, IdSet>, hash: u64, id: Id, add: bool) {
    if add {
        sets.entry(hash).or_default().insert(id);
    } else if let Some(ids) = sets.get_mut(&hash) {
        ids.remove(&id);
        if ids.is_empty() {
            sets.remove(&hash);
        }
    }
}

/// A pair of names' key in the indexes (a label pair; a Service's namespace and name). Two
/// pairs may share one: every candidate is still checked against what was looked for, so a
/// collision costs a comparison, never a wrong match.
fn pair_hash(key: &str, value: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    (key, value).hash(&mut hasher);
    hasher.finish()
}

/// One host in one cluster.
#[derive(Debug)]
pub(crate) struct HostInCluster {
    /// The host (the key it is found by).
    pub(crate) host: Host,
    /// The workloads it is exported for (ids in the cluster's workloads).
    workloads: IdSet,
    /// Their backends, shared with the published view (when none of them is rejected);
    /// `None` until first computed.
    pub(crate) backends: Option<std::sync::Arc<[LocalBackend]>>,
}

/// Everything known of one cluster.
#[derive(Debug)]
pub(crate) struct ClusterState {
    pub(crate) info: ClusterInfo,
    /// Whether the cluster itself was registered (objects may arrive first).
    pub(crate) registered: bool,
    services: Arena<ServiceInfo>,
    slices: Arena<slices::StoredSlice>,
    /// Where endpoints run, each place held once.
    placements: Interner<slices::Placement>,
    /// Slices by their Service's namespace and name (hashed, see [`pair_hash`]).
    slices_by_service: HashMap<u64, IdSet>,
    slices_by_node: HashMap<SmolStr, BTreeSet<Id>>,
    workloads: Arena<WorkloadInfo>,
    /// Workloads whose identity/env do not make a valid host, with the reason.
    pub(crate) invalid_workloads: BTreeMap<WorkloadId, String>,
    /// Workloads with a valid host that is not exported for them, and why.
    pub(crate) held: HeldWorkloads,
    namespaces: HashMap<SmolStr, NamespaceIndex>,
    nodes: HashMap<String, NodeInfo>,
    /// Region most nodes report; used where neither an override nor the node says.
    pub(super) derived_region: Option<String>,
    /// Counts the changes to what places endpoints: the overrides and the nodes (the region
    /// most nodes are in follows from them). A slice placed under the current count needs
    /// no placing again.
    placement_epoch: u64,
    pub(crate) gateways: BTreeMap<ObjectKey, GatewayInfo>,
    pub(crate) gateway_addresses: Vec<GatewayAddress>,
    /// What the cluster has of each host: its workloads and their backends (one table, not
    /// two: a host's entry costs its key and the table's slack once).
    pub(crate) by_host: Arena<HostInCluster>,
    pub(crate) policies: BTreeMap<PolicyId, PolicyInfo>,
    pub(crate) dependencies: BTreeMap<PolicyId, DependencyInfo>,
    /// Policies and Dependencies that cannot be used, kept for their status.
    pub(crate) rejected: BTreeMap<ObjectRef, RejectedInfo>,
    /// The Istio system namespace, with the network Istio records for the cluster.
    pub(crate) mesh_namespace: Option<MeshNamespaceInfo>,
    /// Users' Gateways that already pass global hosts through on the gateway port.
    pub(crate) passthrough_claims: BTreeMap<ObjectKey, PassthroughClaimInfo>,
    /// The value of the cluster's `id.k8s.io` ClusterProperty, when it has one.
    pub(crate) cluster_id: Option<String>,
}

impl ClusterState {
    pub(crate) fn new(info: ClusterInfo, registered: bool) -> Self {
        Self {
            info,
            registered,
            services: Arena::default(),
            slices: Arena::default(),
            placements: Interner::default(),
            slices_by_service: HashMap::new(),
            slices_by_node: HashMap::new(),
            workloads: Arena::default(),
            invalid_workloads: BTreeMap::new(),
            held: HeldWorkloads::default(),
            namespaces: HashMap::new(),
            nodes: HashMap::new(),
            derived_region: None,
            placement_epoch: 0,
            gateways: BTreeMap::new(),
            gateway_addresses: Vec::new(),
            by_host: Arena::default(),
            policies: BTreeMap::new(),
            dependencies: BTreeMap::new(),
            rejected: BTreeMap::new(),
            mesh_namespace: None,
            passthrough_claims: BTreeMap::new(),
            cluster_id: None,
        }
    }

    /// Whether nothing but the name is left (an unregistered cluster with no objects).
    pub(crate) fn is_empty(&self) -> bool {
        !self.registered
            && self.services.is_empty()
            && self.slices.is_empty()
            && self.workloads.is_empty()
            && self.invalid_workloads.is_empty()
            && self.nodes.is_empty()
            && self.gateways.is_empty()
            && self.policies.is_empty()
            && self.dependencies.is_empty()
            && self.rejected.is_empty()
            && self.mesh_namespace.is_none()
            && self.passthrough_claims.is_empty()
            && self.cluster_id.is_none()
    }

    /// The id the MCS API knows the cluster by: its `id.k8s.io` ClusterProperty, else its
    /// registered name.
    pub(crate) fn cluster_id(&self) -> String {
        self.cluster_id
            .clone()
            .unwrap_or_else(|| self.info.name.as_str().to_owned())
    }

    /// Every host this cluster has workloads for.
    pub(crate) fn hosts(&self) -> impl Iterator<Item = &Host> {
        self.by_host.values().map(|links| &links.host)
    }

    // ---- Services ----

    pub(crate) fn upsert_service(&mut self, service: ServiceInfo) -> Option<ServiceInfo> {
        let namespace = service.key.namespace.clone();
        let (id, old) = self.services.insert(service);
        let ns = self.namespaces.entry(namespace).or_default();
        match &old {
            Some(old) => ns.index_service(id, old, false),
            None => ns.services += 1,
        }
        if let Some(new) = self.services.by_id(id) {
            ns.index_service(id, new, true);
        }
        old
    }

    pub(crate) fn remove_service(&mut self, key: &ObjectKey) -> Option<ServiceInfo> {
        let (id, old) = self.services.remove(key)?;
        if let Some(ns) = self.namespaces.get_mut(&key.namespace) {
            debug_assert!(ns.services > 0, "a Service counted in {}", key.namespace);
            ns.services = ns.services.saturating_sub(1);
            ns.index_service(id, &old, false);
        }
        self.prune_namespace(&key.namespace);
        Some(old)
    }

    /// The Service `key`, if the cluster has it.
    pub(crate) fn service(&self, key: &ObjectKey) -> Option<&ServiceInfo> {
        self.services.get(key)
    }

    // ---- Workloads ----

    /// Stores a workload, replacing the one with its kind and key (which keeps its links to
    /// hosts: a workload whose host changes is removed first).
    pub(crate) fn upsert_workload(&mut self, workload: WorkloadInfo) -> Option<WorkloadInfo> {
        let namespace = workload.key.namespace.clone();
        let export = workload.kind == WorkloadKind::ServiceExport;
        let (id, old) = self.workloads.insert(workload);
        let ns = self.namespaces.entry(namespace).or_default();
        match &old {
            Some(old) => ns.index_workload(id, &old.pod_labels, false),
            None => {
                ns.workloads.insert(id);
                ns.exports += usize::from(export);
            }
        }
        if let Some(new) = self.workloads.by_id(id) {
            ns.index_workload(id, &new.pod_labels, true);
        }
        old
    }

    /// The workload `id`, if the cluster has it.
    pub(crate) fn workload(&self, id: &WorkloadId) -> Option<&WorkloadInfo> {
        self.workloads.get(id)
    }

    /// Every workload, in no particular order.
    pub(crate) fn all_workloads(&self) -> impl Iterator<Item = &WorkloadInfo> {
        self.workloads.values()
    }

    /// The workloads of `namespace`.
    pub(crate) fn namespace_workloads(
        &self,
        namespace: &str,
    ) -> impl Iterator<Item = &WorkloadInfo> {
        self.namespaces
            .get(namespace)
            .into_iter()
            .flat_map(|ns| &ns.workloads)
            .filter_map(|id| self.workloads.by_id(*id))
    }

    /// Removes a workload, unlinking it from `host` (its host, when it has one) first: its
    /// id may be given to the next workload stored.
    pub(crate) fn remove_workload(
        &mut self,
        id: &WorkloadId,
        host: Option<&Host>,
    ) -> Option<WorkloadInfo> {
        if let Some(host) = host {
            self.unlink_host(host, id);
        }
        let (slot, old) = self.workloads.remove(id)?;
        if let Some(ns) = self.namespaces.get_mut(&id.1.namespace) {
            ns.workloads.remove(&slot);
            ns.exports = ns
                .exports
                .saturating_sub(usize::from(old.kind == WorkloadKind::ServiceExport));
            ns.index_workload(slot, &old.pod_labels, false);
        }
        self.prune_namespace(&id.1.namespace);
        Some(old)
    }

    /// Links a stored workload to its host.
    pub(crate) fn link_host(&mut self, host: &Host, id: &WorkloadId) {
        let Some(slot) = self.workloads.id(id) else {
            return;
        };
        match self.by_host.get_mut(host) {
            Some(links) => {
                links.workloads.insert(slot);
            }
            None => {
                let mut workloads = IdSet::default();
                workloads.insert(slot);
                self.by_host.insert(HostInCluster {
                    host: host.clone(),
                    workloads,
                    backends: None,
                });
            }
        }
    }

    /// Unlinks a workload from its host; the host's entry goes with its last workload.
    pub(crate) fn unlink_host(&mut self, host: &Host, id: &WorkloadId) {
        let Some(slot) = self.workloads.id(id) else {
            return;
        };
        if let Some(links) = self.by_host.get_mut(host) {
            links.workloads.remove(&slot);
            if links.workloads.is_empty() {
                self.by_host.remove(host);
            }
        }
    }

    /// The workloads `host` is exported for here.
    pub(crate) fn host_workloads(&self, host: &Host) -> impl Iterator<Item = &WorkloadInfo> {
        self.by_host
            .get(host)
            .into_iter()
            .flat_map(|links| &links.workloads)
            .filter_map(|id| self.workloads.by_id(*id))
    }

    // ---- Nodes and locality ----

    pub(crate) fn upsert_node(&mut self, node: NodeInfo) -> Option<NodeInfo> {
        self.placement_epoch += 1;
        self.nodes.insert(node.name.clone(), node)
    }

    pub(crate) fn remove_node(&mut self, name: &str) -> Option<NodeInfo> {
        let removed = self.nodes.remove(name)?;
        self.placement_epoch += 1;
        Some(removed)
    }

    /// Takes the cluster's new overrides (region, zone, network), and the region its nodes
    /// report again.
    pub(crate) fn set_info(&mut self, info: ClusterInfo) {
        self.info = info;
        self.placement_epoch += 1;
        self.refresh_derived_region();
    }

    fn prune_namespace(&mut self, namespace: &str) {
        if self
            .namespaces
            .get(namespace)
            .is_some_and(|ns| ns.services == 0 && ns.workloads.is_empty())
        {
            self.namespaces.remove(namespace);
        }
    }
}

/// Kubernetes selector semantics: a non-empty selector matches labels that contain all of
/// its pairs. An empty selector selects nothing here (such Services have manual endpoints).
pub(crate) fn selects(selector: &Labels, labels: &Labels) -> bool {
    !selector.is_empty() && selector.contained_in(labels)
}
