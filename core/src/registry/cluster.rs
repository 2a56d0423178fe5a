//! Everything the registry knows of one cluster, indexed so that a change touches only what
//! depends on it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::model::{
    ClusterInfo, EndpointSliceInfo, GatewayInfo, Host, Locality, MeshNamespaceInfo, NodeInfo,
    ObjectKey, PassthroughClaimInfo, PolicyInfo, ServiceInfo, WorkloadInfo, WorkloadKind,
};

use super::global::{BackendEndpoint, LocalBackend};

/// How many nodes serve as gateway addresses when the gateway has only a NodePort.
pub(crate) const NODEPORT_GATEWAY_NODES: usize = 3;

/// Identifies a workload within a cluster.
pub(crate) type WorkloadId = (WorkloadKind, ObjectKey);

/// An address (and port) through which other clusters reach this one.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GatewayAddress {
    /// IP or hostname.
    pub address: String,
    /// Port that accepts mTLS passthrough (15443, or a NodePort).
    pub port: u16,
}

#[derive(Debug, Default)]
struct NamespaceIndex {
    services: BTreeSet<String>,
    workloads: BTreeSet<WorkloadId>,
}

/// Everything known of one cluster.
#[derive(Debug)]
pub(crate) struct ClusterState {
    pub(crate) info: ClusterInfo,
    /// Whether the cluster itself was registered (objects may arrive first).
    pub(crate) registered: bool,
    services: HashMap<ObjectKey, ServiceInfo>,
    slices: HashMap<ObjectKey, EndpointSliceInfo>,
    slices_by_service: HashMap<ObjectKey, BTreeSet<String>>,
    slices_by_node: HashMap<String, BTreeSet<ObjectKey>>,
    pub(crate) workloads: HashMap<WorkloadId, WorkloadInfo>,
    /// Workloads whose identity/env do not make a valid host, with the reason.
    pub(crate) invalid_workloads: BTreeMap<WorkloadId, String>,
    /// Workloads with a valid host that is not exported for them, and why.
    pub(crate) held: BTreeMap<WorkloadId, (Host, super::Held)>,
    namespaces: HashMap<String, NamespaceIndex>,
    nodes: HashMap<String, NodeInfo>,
    /// Region most nodes report; used where neither an override nor the node says.
    pub(super) derived_region: Option<String>,
    pub(crate) gateways: BTreeMap<ObjectKey, GatewayInfo>,
    pub(crate) gateway_addresses: Vec<GatewayAddress>,
    /// Workloads per host they belong to.
    pub(crate) host_workloads: HashMap<Host, BTreeSet<WorkloadId>>,
    /// Backends per host, recomputed when something they depend on changes.
    pub(crate) host_backends: HashMap<Host, Vec<LocalBackend>>,
    pub(crate) policies: BTreeMap<ObjectKey, PolicyInfo>,
    /// The Istio system namespace, with the network Istio records for the cluster.
    pub(crate) mesh_namespace: Option<MeshNamespaceInfo>,
    /// Users' Gateways that already pass global hosts through on the gateway port.
    pub(crate) passthrough_claims: BTreeMap<ObjectKey, PassthroughClaimInfo>,
}

impl ClusterState {
    pub(crate) fn new(info: ClusterInfo, registered: bool) -> Self {
        Self {
            info,
            registered,
            services: HashMap::new(),
            slices: HashMap::new(),
            slices_by_service: HashMap::new(),
            slices_by_node: HashMap::new(),
            workloads: HashMap::new(),
            invalid_workloads: BTreeMap::new(),
            held: BTreeMap::new(),
            namespaces: HashMap::new(),
            nodes: HashMap::new(),
            derived_region: None,
            gateways: BTreeMap::new(),
            gateway_addresses: Vec::new(),
            host_workloads: HashMap::new(),
            host_backends: HashMap::new(),
            policies: BTreeMap::new(),
            mesh_namespace: None,
            passthrough_claims: BTreeMap::new(),
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
            && self.mesh_namespace.is_none()
            && self.passthrough_claims.is_empty()
    }

    /// Every host this cluster has workloads for.
    pub(crate) fn hosts(&self) -> impl Iterator<Item = &Host> {
        self.host_workloads.keys()
    }

    // ---- Services ----

    pub(crate) fn upsert_service(&mut self, service: ServiceInfo) -> Option<ServiceInfo> {
        self.namespace(&service.key.namespace)
            .services
            .insert(service.key.name.clone());
        self.services.insert(service.key.clone(), service)
    }

    pub(crate) fn remove_service(&mut self, key: &ObjectKey) -> Option<ServiceInfo> {
        let old = self.services.remove(key)?;
        if let Some(ns) = self.namespaces.get_mut(&key.namespace) {
            ns.services.remove(&key.name);
        }
        self.prune_namespace(&key.namespace);
        Some(old)
    }

    // ---- EndpointSlices ----

    pub(crate) fn upsert_slice(&mut self, slice: EndpointSliceInfo) -> Option<EndpointSliceInfo> {
        let old = self.remove_slice(&slice.key);
        let service_key = ObjectKey::new(&slice.key.namespace, &slice.service);
        self.slices_by_service
            .entry(service_key)
            .or_default()
            .insert(slice.key.name.clone());
        for node in slice.ready.iter().filter_map(|ep| ep.node.as_ref()) {
            self.slices_by_node
                .entry(node.clone())
                .or_default()
                .insert(slice.key.clone());
        }
        self.slices.insert(slice.key.clone(), slice);
        old
    }

    pub(crate) fn remove_slice(&mut self, key: &ObjectKey) -> Option<EndpointSliceInfo> {
        let old = self.slices.remove(key)?;
        let service_key = ObjectKey::new(&key.namespace, &old.service);
        if let Some(names) = self.slices_by_service.get_mut(&service_key) {
            names.remove(&key.name);
            if names.is_empty() {
                self.slices_by_service.remove(&service_key);
            }
        }
        for node in old.ready.iter().filter_map(|ep| ep.node.as_ref()) {
            if let Some(keys) = self.slices_by_node.get_mut(node) {
                keys.remove(key);
                if keys.is_empty() {
                    self.slices_by_node.remove(node);
                }
            }
        }
        Some(old)
    }

    // ---- Workloads ----

    pub(crate) fn upsert_workload(&mut self, workload: WorkloadInfo) -> Option<WorkloadInfo> {
        let id = (workload.kind, workload.key.clone());
        self.namespace(&workload.key.namespace)
            .workloads
            .insert(id.clone());
        self.workloads.insert(id, workload)
    }

    pub(crate) fn remove_workload(&mut self, id: &WorkloadId) -> Option<WorkloadInfo> {
        let old = self.workloads.remove(id)?;
        if let Some(ns) = self.namespaces.get_mut(&id.1.namespace) {
            ns.workloads.remove(id);
        }
        self.prune_namespace(&id.1.namespace);
        Some(old)
    }

    pub(crate) fn link_host(&mut self, host: &Host, id: &WorkloadId) {
        self.host_workloads
            .entry(host.clone())
            .or_default()
            .insert(id.clone());
    }

    pub(crate) fn unlink_host(&mut self, host: &Host, id: &WorkloadId) {
        if let Some(ids) = self.host_workloads.get_mut(host) {
            ids.remove(id);
            if ids.is_empty() {
                self.host_workloads.remove(host);
                self.host_backends.remove(host);
            }
        }
    }

    /// Hosts of the workloads in `namespace` that `selector` selects.
    pub(crate) fn hosts_selected_by(
        &self,
        namespace: &str,
        selector: &BTreeMap<String, String>,
        suffix: &str,
        out: &mut BTreeSet<Host>,
    ) {
        let Some(ns) = self.namespaces.get(namespace) else {
            return;
        };
        for id in &ns.workloads {
            if let Some(w) = self.workloads.get(id)
                && selects(selector, &w.pod_labels)
                && let Ok(host) = Host::build(&w.env, &w.identity, suffix)
            {
                out.insert(host);
            }
        }
    }

    /// Hosts that depend on the Service `key` (through workloads it selects).
    pub(crate) fn hosts_of_service(&self, key: &ObjectKey, suffix: &str, out: &mut BTreeSet<Host>) {
        if let Some(service) = self.services.get(key) {
            self.hosts_selected_by(&key.namespace, &service.selector, suffix, out);
        }
    }

    /// Hosts with endpoints on `node`.
    pub(crate) fn hosts_on_node(&self, node: &str, suffix: &str, out: &mut BTreeSet<Host>) {
        let Some(slices) = self.slices_by_node.get(node) else {
            return;
        };
        for key in slices {
            if let Some(slice) = self.slices.get(key) {
                let service = ObjectKey::new(&key.namespace, &slice.service);
                self.hosts_of_service(&service, suffix, out);
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

    /// Recomputes the region most nodes are in; returns whether it changed.
    pub(crate) fn refresh_derived_region(&mut self) -> bool {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for node in self.nodes.values() {
            if let Some(region) = node.locality.region.as_deref() {
                *counts.entry(region).or_default() += 1;
            }
        }
        // Most nodes win; among equals the alphabetically first, so the result does not
        // depend on the order nodes arrived in.
        let region = counts
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(region, _)| (*region).to_owned());
        let changed = region != self.derived_region;
        self.derived_region = region;
        changed
    }

    fn endpoint_locality(&self, node: Option<&str>, zone: Option<&str>) -> Locality {
        let node = node.and_then(|n| self.nodes.get(n));
        let region = self
            .info
            .region
            .as_deref()
            .or_else(|| node.and_then(|n| n.locality.region.as_deref()))
            .or(self.derived_region.as_deref());
        let zone = zone
            .or_else(|| node.and_then(|n| n.locality.zone.as_deref()))
            .or(self.info.zone.as_deref());
        Locality {
            region: region.map(str::to_owned),
            zone: zone.map(str::to_owned),
        }
    }

    // ---- Gateways ----

    /// Recomputes the addresses other clusters reach this one through; returns whether they
    /// changed. Published addresses (load balancer, external IPs) win; without any, the
    /// first few nodes' addresses with the NodePort serve.
    pub(crate) fn refresh_gateway_addresses(&mut self) -> bool {
        let mut addresses: BTreeSet<GatewayAddress> = self
            .gateways
            .values()
            .flat_map(|gw| {
                gw.addresses.iter().map(|a| GatewayAddress {
                    address: a.clone(),
                    port: gw.port,
                })
            })
            .collect();
        if addresses.is_empty() {
            let mut node_names: Vec<&String> = self.nodes.keys().collect();
            node_names.sort();
            for gw in self.gateways.values() {
                let Some(node_port) = gw.node_port else {
                    continue;
                };
                let node_addresses = node_names
                    .iter()
                    .filter_map(|n| self.nodes.get(*n)?.addresses.first())
                    .take(NODEPORT_GATEWAY_NODES);
                addresses.extend(node_addresses.map(|a| GatewayAddress {
                    address: a.clone(),
                    port: node_port,
                }));
            }
        }
        let addresses: Vec<_> = addresses.into_iter().collect();
        let changed = addresses != self.gateway_addresses;
        self.gateway_addresses = addresses;
        changed
    }

    // ---- Backends ----

    /// The backends this cluster has for `host`: the Services selecting its workloads (a
    /// headless Service only when no regular one does), with ready endpoints per locality.
    pub(crate) fn compute_backends(&self, host: &Host) -> Vec<LocalBackend> {
        let mut services: BTreeSet<&ObjectKey> = BTreeSet::new();
        for id in self.host_workloads.get(host).into_iter().flatten() {
            let Some(workload) = self.workloads.get(id) else {
                continue;
            };
            let matched = self.services_selecting(workload);
            let any_regular = matched.iter().any(|s| !s.headless);
            services.extend(
                matched
                    .into_iter()
                    .filter(|s| !(any_regular && s.headless))
                    .map(|s| &s.key),
            );
        }
        services
            .into_iter()
            .filter_map(|key| self.services.get(key))
            .map(|service| LocalBackend {
                service: service.key.clone(),
                ports: service.ports.clone(),
                created: service.created,
                endpoints: self.ready_endpoints(&service.key),
            })
            .collect()
    }

    /// Services in the workload's namespace that select its pods and offer mesh ports.
    pub(crate) fn services_selecting(&self, workload: &WorkloadInfo) -> Vec<&ServiceInfo> {
        let Some(ns) = self.namespaces.get(&workload.key.namespace) else {
            return Vec::new();
        };
        ns.services
            .iter()
            .filter_map(|name| {
                self.services
                    .get(&ObjectKey::new(&workload.key.namespace, name))
            })
            .filter(|s| !s.ports.is_empty() && selects(&s.selector, &workload.pod_labels))
            .collect()
    }

    /// The Service's ready endpoints over all its slices, sorted by address; an address in
    /// several slices (during a slice rollover) counts once.
    fn ready_endpoints(&self, service: &ObjectKey) -> Vec<BackendEndpoint> {
        let mut ready = Vec::new();
        for name in self.slices_by_service.get(service).into_iter().flatten() {
            let Some(slice) = self.slices.get(&ObjectKey::new(&service.namespace, name)) else {
                continue;
            };
            for ep in &slice.ready {
                ready.push(BackendEndpoint {
                    address: ep.address.clone(),
                    locality: self.endpoint_locality(ep.node.as_deref(), ep.zone.as_deref()),
                    target_ports: slice.ports.clone(),
                });
            }
        }
        ready.sort();
        ready.dedup_by(|a, b| a.address == b.address);
        ready
    }

    fn namespace(&mut self, namespace: &str) -> &mut NamespaceIndex {
        self.namespaces.entry(namespace.to_owned()).or_default()
    }

    fn prune_namespace(&mut self, namespace: &str) {
        if self
            .namespaces
            .get(namespace)
            .is_some_and(|ns| ns.services.is_empty() && ns.workloads.is_empty())
        {
            self.namespaces.remove(namespace);
        }
    }
}

/// Kubernetes selector semantics: a non-empty selector matches labels that contain all of
/// its pairs. An empty selector selects nothing here (such Services have manual endpoints).
pub(crate) fn selects(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}
