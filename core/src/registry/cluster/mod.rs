//! Everything the registry knows of one cluster, indexed so that a change touches only what
//! depends on it.
//!
//! This module stores the cluster's objects and their indexes; `dependents` finds the hosts
//! a change touches, `topology` works out localities and gateway addresses, and `backends`
//! computes the cluster's backends for a host.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::model::{
    ClusterInfo, DependencyInfo, EndpointSliceInfo, GatewayInfo, Host, Labels, MeshNamespaceInfo,
    NodeInfo, ObjectKey, ObjectRef, PassthroughClaimInfo, PolicyInfo, PolicySource, RejectedInfo,
    ServiceInfo, SmolStr, WorkloadInfo, WorkloadKind,
};

use super::global::LocalBackend;
use super::sorted_set::SortedSet;

mod backends;
mod dependents;
mod held;
#[cfg(test)]
mod selector_index_tests;
mod slice_store;
#[cfg(test)]
mod storage_tests;
mod topology;

pub(crate) use held::HeldWorkloads;
use slice_store::{SliceId, SliceStore};
pub use topology::GatewayAddress;

/// Identifies a GlobalTrafficPolicy or Dependency within a cluster: federator's and Admiral's
/// may share a namespace and name.
pub(crate) type PolicyId = (PolicySource, ObjectKey);

/// Identifies a workload within a cluster.
pub(crate) type WorkloadId = (WorkloadKind, ObjectKey);

#[derive(Debug, Default)]
struct NamespaceIndex {
    /// How many Services it has (their names are in the cluster's map of Services).
    services: usize,
    workloads: BTreeSet<WorkloadId>,
    /// Services by the first pair of their selector (hashed, see [`pair_hash`]): a pod
    /// carries that pair, or the Service does not select it. Matching a workload against
    /// only these, not every Service of the namespace, keeps filling a namespace of
    /// thousands of Services and workloads linear.
    services_by_pair: HashMap<u64, SortedSet<SmolStr>>,
    /// Workloads (kind and name: the namespace is this one) by every pair of their pods'
    /// labels (hashed), for the converse.
    workloads_by_pair: HashMap<u64, SortedSet<(WorkloadKind, SmolStr)>>,
}

impl NamespaceIndex {
    fn index_service(&mut self, service: &ServiceInfo, add: bool) {
        let Some((key, value)) = service.selector.iter().next() else {
            return;
        };
        let hash = pair_hash(key, value);
        if add {
            let names = self.services_by_pair.entry(hash).or_default();
            names.insert(service.key.name.clone());
        } else if let Some(names) = self.services_by_pair.get_mut(&hash) {
            names.remove(&service.key.name);
            if names.is_empty() {
                self.services_by_pair.remove(&hash);
            }
        }
    }

    fn index_workload(&mut self, id: &WorkloadId, labels: &Labels, add: bool) {
        for (key, value) in labels.iter() {
            let hash = pair_hash(key, value);
            if add {
                let ids = self.workloads_by_pair.entry(hash).or_default();
                ids.insert((id.0, id.1.name.clone()));
            } else if let Some(ids) = self.workloads_by_pair.get_mut(&hash) {
                ids.remove(&(id.0, id.1.name.clone()));
                if ids.is_empty() {
                    self.workloads_by_pair.remove(&hash);
                }
            }
        }
    }
}

/// A label pair's key in the selector indexes. Two pairs may share one: every candidate is
/// still checked with [`selects`], so a collision costs a comparison, never a wrong match.
fn pair_hash(key: &str, value: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    (key, value).hash(&mut hasher);
    hasher.finish()
}

/// One host in one cluster.
#[derive(Debug, Default)]
pub(crate) struct HostInCluster {
    /// The workloads it is exported for.
    pub(crate) workloads: SortedSet<WorkloadId>,
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
    // The objects themselves are boxed: a hash table keeps spare slots of its value's size,
    // a few hundred bytes each for these.
    services: HashMap<ObjectKey, Box<ServiceInfo>>,
    slices: SliceStore,
    slices_by_service: HashMap<ObjectKey, SortedSet<SliceId>>,
    slices_by_node: HashMap<SmolStr, BTreeSet<SliceId>>,
    pub(crate) workloads: HashMap<WorkloadId, Box<WorkloadInfo>>,
    /// Workloads whose identity/env do not make a valid host, with the reason.
    pub(crate) invalid_workloads: BTreeMap<WorkloadId, String>,
    /// Workloads with a valid host that is not exported for them, and why.
    pub(crate) held: HeldWorkloads,
    namespaces: HashMap<SmolStr, NamespaceIndex>,
    nodes: HashMap<String, NodeInfo>,
    /// Region most nodes report; used where neither an override nor the node says.
    pub(super) derived_region: Option<String>,
    pub(crate) gateways: BTreeMap<ObjectKey, GatewayInfo>,
    pub(crate) gateway_addresses: Vec<GatewayAddress>,
    /// What the cluster has of each host: its workloads and their backends (one table, not
    /// two: a host's entry costs its key and the table's slack once).
    pub(crate) by_host: HashMap<Host, HostInCluster>,
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
            services: HashMap::new(),
            slices: SliceStore::default(),
            slices_by_service: HashMap::new(),
            slices_by_node: HashMap::new(),
            workloads: HashMap::new(),
            invalid_workloads: BTreeMap::new(),
            held: HeldWorkloads::default(),
            namespaces: HashMap::new(),
            nodes: HashMap::new(),
            derived_region: None,
            gateways: BTreeMap::new(),
            gateway_addresses: Vec::new(),
            by_host: HashMap::new(),
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
        self.by_host.keys()
    }

    // ---- Services ----

    pub(crate) fn upsert_service(&mut self, service: ServiceInfo) -> Option<ServiceInfo> {
        let old = self.services.remove(&service.key).map(|old| *old);
        let ns = self.namespace(&service.key.namespace);
        match &old {
            Some(old) => ns.index_service(old, false),
            None => ns.services += 1,
        }
        ns.index_service(&service, true);
        self.services.insert(service.key.clone(), Box::new(service));
        old
    }

    pub(crate) fn remove_service(&mut self, key: &ObjectKey) -> Option<ServiceInfo> {
        let old = *self.services.remove(key)?;
        if let Some(ns) = self.namespaces.get_mut(&key.namespace) {
            debug_assert!(ns.services > 0, "a Service counted in {}", key.namespace);
            ns.services = ns.services.saturating_sub(1);
            ns.index_service(&old, false);
        }
        self.prune_namespace(&key.namespace);
        Some(old)
    }

    /// The Service `key`, if the cluster has it.
    pub(crate) fn service(&self, key: &ObjectKey) -> Option<&ServiceInfo> {
        self.services.get(key).map(Box::as_ref)
    }

    // ---- EndpointSlices ----

    pub(crate) fn upsert_slice(
        &mut self,
        mut slice: EndpointSliceInfo,
    ) -> Option<EndpointSliceInfo> {
        let old = self.remove_slice(&slice.key);
        let mut nodes: Vec<SmolStr> = Vec::new();
        for node in slice.ready.iter_mut().filter_map(|ep| ep.node.as_mut()) {
            // The index's copy of the name: a node name is often longer than a `SmolStr`
            // holds inline, and every endpoint on the node then shares one. The entry is
            // made now (the slice's id joins it below), so the slice's own endpoints share
            // it too.
            let entry = self.slices_by_node.entry(node.clone());
            *node = entry.key().clone();
            entry.or_default();
            nodes.push(node.clone());
        }
        let service_key = ObjectKey::from_parts(&slice.key.namespace, &slice.service);
        let id = self.slices.insert(slice);
        self.slices_by_service
            .entry(service_key)
            .or_default()
            .insert(id);
        for node in nodes {
            self.slices_by_node.entry(node).or_default().insert(id);
        }
        old
    }

    pub(crate) fn remove_slice(&mut self, key: &ObjectKey) -> Option<EndpointSliceInfo> {
        let (id, old) = self.slices.remove(key)?;
        let service_key = ObjectKey::from_parts(&key.namespace, &old.service);
        if let Some(ids) = self.slices_by_service.get_mut(&service_key) {
            ids.remove(&id);
            if ids.is_empty() {
                self.slices_by_service.remove(&service_key);
            }
        }
        for node in old.ready.iter().filter_map(|ep| ep.node.as_ref()) {
            if let Some(ids) = self.slices_by_node.get_mut(node) {
                ids.remove(&id);
                if ids.is_empty() {
                    self.slices_by_node.remove(node);
                }
            }
        }
        Some(old)
    }

    // ---- Workloads ----

    pub(crate) fn upsert_workload(&mut self, workload: WorkloadInfo) -> Option<WorkloadInfo> {
        let id = (workload.kind, workload.key.clone());
        let old = self.workloads.remove(&id).map(|old| *old);
        let ns = self.namespace(&workload.key.namespace);
        ns.workloads.insert(id.clone());
        if let Some(old) = &old {
            ns.index_workload(&id, &old.pod_labels, false);
        }
        ns.index_workload(&id, &workload.pod_labels, true);
        self.workloads.insert(id, Box::new(workload));
        old
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
            .filter_map(|id| self.workloads.get(id).map(Box::as_ref))
    }

    pub(crate) fn remove_workload(&mut self, id: &WorkloadId) -> Option<WorkloadInfo> {
        let old = *self.workloads.remove(id)?;
        if let Some(ns) = self.namespaces.get_mut(&id.1.namespace) {
            ns.workloads.remove(id);
            ns.index_workload(id, &old.pod_labels, false);
        }
        self.prune_namespace(&id.1.namespace);
        Some(old)
    }

    pub(crate) fn link_host(&mut self, host: &Host, id: &WorkloadId) {
        self.by_host
            .entry(host.clone())
            .or_default()
            .workloads
            .insert(id.clone());
    }

    pub(crate) fn unlink_host(&mut self, host: &Host, id: &WorkloadId) {
        if let Some(links) = self.by_host.get_mut(host) {
            links.workloads.remove(id);
            if links.workloads.is_empty() {
                self.by_host.remove(host);
            }
        }
    }

    // ---- Nodes and locality ----

    pub(crate) fn upsert_node(&mut self, node: NodeInfo) -> Option<NodeInfo> {
        self.nodes.insert(node.name.clone(), node)
    }

    pub(crate) fn remove_node(&mut self, name: &str) -> Option<NodeInfo> {
        self.nodes.remove(name)
    }

    fn namespace(&mut self, namespace: &SmolStr) -> &mut NamespaceIndex {
        self.namespaces.entry(namespace.clone()).or_default()
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
