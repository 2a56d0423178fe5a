//! Folding one delta into the registry: each kind of object updates its cluster's state
//! and indexes, and collects the hosts whose backends must be recomputed.

use std::collections::BTreeSet;

use super::cluster::ClusterState;
use super::{ChangeSet, Delta, Registry, cluster_state, mesh};
use crate::model::{ClusterName, Host, Object, ObjectRef, WorkloadInfo, WorkloadKind};

impl Registry {
    /// Folds one delta into the model and reports what it changed.
    pub fn apply(&mut self, delta: Delta) -> ChangeSet {
        let mut changes = ChangeSet::default();
        // (cluster, host) pairs whose backends must be recomputed.
        let mut recompute: BTreeSet<Host> = BTreeSet::new();
        let mut dirty_cluster: Option<ClusterName> = None;
        // Identities whose workloads came, went or changed.
        let mut callers: BTreeSet<String> = BTreeSet::new();
        match delta {
            Delta::UpsertCluster(info) => {
                let name = info.name.clone();
                let state = self
                    .clusters
                    .get_or_insert_with(name.clone(), || ClusterState::new(info.clone(), false));
                if !state.registered || state.info != info {
                    state.registered = true;
                    state.set_info(info);
                    recompute.extend(state.hosts().cloned());
                    changes.hosts.extend(state.hosts().cloned());
                    changes.clusters.insert(name.clone());
                    dirty_cluster = Some(name);
                }
            }
            Delta::RemoveCluster(name) => {
                if let Some(state) = self.clusters.get(&name) {
                    callers.extend(state.all_workloads().map(|w| w.identity.to_string()));
                }
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
                    self.remove_cluster_dependencies(&name, &state.dependencies, &mut changes);
                }
            }
            Delta::Upsert(cluster, object) => {
                // A valid version replaces a rejected one (and the other way round, below).
                self.forget_rejected(&cluster, &object.reference());
                if let Object::Workload(w) = &object {
                    callers.extend(self.callers_beside(&cluster, &w.key.namespace));
                    callers.insert(w.identity.to_string());
                    let old = self.workload_identity(&cluster, w.kind, &w.key);
                    callers.extend(old);
                }
                self.upsert_object(&cluster, object, &mut recompute, &mut changes);
                dirty_cluster = Some(cluster);
            }
            Delta::Remove(cluster, object) => {
                self.forget_rejected(&cluster, &object);
                if let ObjectRef::Workload(kind, key) = &object {
                    callers.extend(self.callers_beside(&cluster, &key.namespace));
                    callers.extend(self.workload_identity(&cluster, *kind, key));
                }
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
        for identity in callers {
            self.caller_changed(&identity, &mut changes);
        }
        changes
    }

    /// Drops the rejected version of `reference`, if `cluster` holds one.
    fn forget_rejected(&mut self, cluster: &ClusterName, reference: &ObjectRef) {
        let held = self
            .clusters
            .get(cluster)
            .is_some_and(|s| s.rejected.contains_key(reference));
        if held && let Some(state) = self.clusters.get_mut(cluster) {
            state.rejected.remove(reference);
        }
    }

    /// The identity of a workload of `cluster`, if known.
    fn workload_identity(
        &self,
        cluster: &ClusterName,
        kind: crate::model::WorkloadKind,
        key: &crate::model::ObjectKey,
    ) -> Option<String> {
        let state = self.clusters.get(cluster)?;
        let workload = state.workload(&(kind, key.clone()))?;
        Some(workload.identity.to_string())
    }

    /// Folds a new or changed object of `cluster`.
    fn upsert_object(
        &mut self,
        cluster: &ClusterName,
        object: Object,
        recompute: &mut BTreeSet<Host>,
        changes: &mut ChangeSet,
    ) {
        let suffix = self.config.host_suffix.clone();
        match object {
            Object::Service(mut service) => {
                service.ports = self.interners.service_ports.share(service.ports);
                let state = self.state(cluster);
                let key = service.key.clone();
                state.hosts_of_service(&key, &suffix, recompute);
                state.upsert_service(service);
                state.hosts_of_service(&key, &suffix, recompute);
            }
            Object::EndpointSlice(mut slice) => {
                slice.ports = slice.ports.shared_in(&mut self.interners.target_ports);
                let namespace = slice.key.namespace.clone();
                let new_service = crate::model::ObjectKey::new(&namespace, &slice.service);
                let state = cluster_state(&mut self.clusters, cluster);
                if let Some(old) = state.upsert_slice(slice, &mut self.interners.localities) {
                    let old_service = crate::model::ObjectKey::new(&namespace, &old);
                    state.hosts_of_service(&old_service, &suffix, recompute);
                }
                state.hosts_of_service(&new_service, &suffix, recompute);
            }
            Object::Workload(workload) => {
                let id = (workload.kind, workload.key.clone());
                // A Rollout's preview or canary side is a workload of its own (its host).
                let variant = (workload.kind == WorkloadKind::Rollout)
                    .then(|| (workload.rollout_variant(), workload.key.clone()));
                let role = |w: &WorkloadInfo| w.rollout_role.as_ref().map(|(r, _)| *r);
                let state = self.state(cluster);
                let same_host = state.workload(&id).is_some_and(|old| {
                    old.identity == workload.identity
                        && old.env == workload.env
                        && old.spelling == workload.spelling
                        && (workload.kind != WorkloadKind::RolloutVariant
                            || role(old) == role(&workload))
                }) && !state.invalid_workloads.contains_key(&id)
                    && !state.held.contains_key(&id);
                if same_host {
                    // Only labels changed: keep the host (and its VIP), recompute backends.
                    if let Ok(host) = workload.host(&suffix) {
                        recompute.insert(host);
                    }
                    state.upsert_workload(workload);
                } else {
                    self.unlink_workload(cluster, &id, recompute, changes);
                    self.link_workload(cluster, workload, recompute, changes);
                }
                match variant {
                    Some((Some(variant), _)) => {
                        self.upsert_object(cluster, Object::Workload(variant), recompute, changes);
                    }
                    Some((None, key)) => {
                        let id = (WorkloadKind::RolloutVariant, key);
                        self.unlink_workload(cluster, &id, recompute, changes);
                    }
                    None => {}
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
                let id = (policy.api, policy.key.clone());
                self.policies_by_identity
                    .entry(policy.identity.clone())
                    .or_default()
                    .insert((cluster.clone(), id.clone()));
                let state = self.state(cluster);
                let new_identity = policy.identity.clone();
                if let Some(old) = state.policies.insert(id, policy)
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
            Object::Dependency(dependency) => {
                self.upsert_dependency(cluster, dependency, changes);
            }
            Object::ClusterId(id) => self.set_cluster_id(cluster, Some(id.value), changes),
            Object::Rejected(rejected) => {
                // A policy that turned invalid stops applying (the host falls back to the
                // next one). A Dependency's last valid version stays in force: cutting its
                // source's Sidecars (or exports) over a typo would cut traffic.
                if !matches!(
                    rejected.reference,
                    ObjectRef::Dependency(_) | ObjectRef::AdmiralDependency(_)
                ) {
                    self.remove_object(cluster, &rejected.reference, recompute, changes);
                }
                let state = self.state(cluster);
                state.rejected.insert(rejected.reference.clone(), rejected);
            }
        }
    }

    /// Folds the removal of an object of `cluster`.
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
                    let service = crate::model::ObjectKey::new(&key.namespace, &old);
                    state.hosts_of_service(&service, &suffix, recompute);
                }
            }
            ObjectRef::Workload(kind, key) => {
                let id = (*kind, key.clone());
                self.unlink_workload(cluster, &id, recompute, changes);
                if *kind == WorkloadKind::Rollout {
                    let id = (WorkloadKind::RolloutVariant, key.clone());
                    self.unlink_workload(cluster, &id, recompute, changes);
                }
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
            ObjectRef::Policy(_) | ObjectRef::AdmiralPolicy(_) => {
                let Some((api, key)) = object.policy_id() else {
                    return;
                };
                if let Some(old) = state.policies.remove(&(api, key.clone())) {
                    self.unindex_policy(cluster, &old);
                    self.rebuild_identity(&old.identity, changes);
                }
            }
            ObjectRef::Dependency(_) | ObjectRef::AdmiralDependency(_) => {
                if let Some((api, key)) = object.policy_id() {
                    self.remove_dependency(cluster, &(api, key.clone()), changes);
                }
            }
            ObjectRef::ClusterId => self.set_cluster_id(cluster, None, changes),
        }
    }

    /// The cluster's `id.k8s.io` ClusterProperty came, changed or went: its clusterset
    /// services' per-pod DNS names change with it.
    fn set_cluster_id(
        &mut self,
        cluster: &ClusterName,
        id: Option<String>,
        changes: &mut ChangeSet,
    ) {
        let state = self.state(cluster);
        if state.cluster_id == id {
            return;
        }
        state.cluster_id = id;
        let hosts: Vec<Host> = state
            .hosts()
            .filter(|h| h.is_clusterset())
            .cloned()
            .collect();
        for host in hosts {
            self.rebuild_host(&host, changes);
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
}
