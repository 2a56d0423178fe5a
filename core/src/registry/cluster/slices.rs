//! A cluster's EndpointSlices, kept as the backends publish their endpoints: a Service's
//! backends share its slice's list of endpoints (when it has one slice, as most do) rather
//! than hold a copy.

use std::sync::Arc;

use super::arena::Id;
use super::topology::Placer;
use super::{ClusterState, index, pair_hash};
use crate::model::{EndpointSliceInfo, Locality, ObjectKey, SmolStr};
use crate::registry::global::BackendEndpoint;
use crate::registry::interner::Interner;

/// Where an endpoint runs, as its slice says: its node and zone. A cluster has a few of
/// these and many endpoints: each is held once (see [`ClusterState::upsert_slice`]).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Placement {
    /// The node the endpoint runs on, sharing the node index's copy of the name.
    pub(crate) node: Option<SmolStr>,
    /// The zone the slice gives it, which wins over the node's.
    pub(crate) zone: Option<SmolStr>,
}

/// An EndpointSlice as the registry keeps it.
#[derive(Debug)]
pub(crate) struct StoredSlice {
    /// Namespace and name of the slice.
    pub(crate) key: ObjectKey,
    /// Name of its Service.
    pub(crate) service: SmolStr,
    /// Its ready endpoints, sorted, one per address, placed as they were last looked at
    /// (see [`StoredSlice::place`]).
    endpoints: Arc<[BackendEndpoint]>,
    /// Where each of them runs, in the same order.
    placements: Box<[Arc<Placement>]>,
    /// The cluster's placement epoch when they were placed.
    placed_in: u64,
}

impl StoredSlice {
    /// The slice's endpoints, each with where it runs.
    #[cfg(test)]
    pub(crate) fn endpoints(&self) -> impl Iterator<Item = (&BackendEndpoint, &Placement)> {
        self.endpoints
            .iter()
            .zip(self.placements.iter().map(Arc::as_ref))
    }

    /// The list the slice's backends share.
    #[cfg(test)]
    pub(crate) fn shared_endpoints(&self) -> &Arc<[BackendEndpoint]> {
        &self.endpoints
    }

    /// Places the endpoints again with what the cluster now knows of its nodes; the list is
    /// rebuilt only when a locality changed.
    fn place(&mut self, placer: &Placer<'_>, epoch: u64, localities: &mut Interner<Locality>) {
        if self.placed_in == epoch {
            return;
        }
        self.placed_in = epoch;
        let located: Vec<Arc<Locality>> = self
            .placements
            .iter()
            .map(|p| localities.intern(placer.locality(p.node.as_deref(), p.zone.as_deref())))
            .collect();
        let moved = self
            .endpoints
            .iter()
            .zip(&located)
            .any(|(ep, locality)| ep.locality != *locality);
        if moved {
            let endpoints = self.endpoints.iter().cloned().zip(located);
            let placed = endpoints.map(|(ep, locality)| BackendEndpoint { locality, ..ep });
            let (endpoints, placements) = sorted(placed.zip(self.placements.iter().cloned()));
            self.endpoints = endpoints;
            self.placements = placements;
        }
    }
}

/// Endpoints sorted, one per address (the first in order), with their placements.
fn sorted(
    pairs: impl Iterator<Item = (BackendEndpoint, Arc<Placement>)>,
) -> (Arc<[BackendEndpoint]>, Box<[Arc<Placement>]>) {
    let mut pairs: Vec<_> = pairs.collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs.dedup_by(|a, b| a.0.address == b.0.address);
    let (endpoints, placements): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
    (endpoints.into(), placements.into())
}

impl ClusterState {
    /// Stores a slice, replacing the one with its key; the name of the Service the replaced
    /// one belonged to.
    pub(crate) fn upsert_slice(
        &mut self,
        slice: EndpointSliceInfo,
        localities: &mut Interner<Locality>,
    ) -> Option<SmolStr> {
        let old = self.remove_slice(&slice.key);
        let placer = Placer::of(&self.info, &self.nodes, self.derived_region.as_deref());
        let mut pairs = Vec::with_capacity(slice.ready.len());
        for ep in slice.ready {
            let node = ep.node.map(|node| {
                // The index's copy of the name: a node name is often longer than a
                // `SmolStr` holds inline, and every endpoint on the node then shares one.
                match self.slices_by_node.get_key_value(&node) {
                    Some((shared, _)) => shared.clone(),
                    None => node,
                }
            });
            let locality = localities.intern(placer.locality(node.as_deref(), ep.zone.as_deref()));
            let placement = self.placements.intern(Placement {
                node,
                zone: ep.zone,
            });
            let endpoint = BackendEndpoint {
                address: ep.address,
                locality,
                target_ports: slice.ports.clone(),
                hostname: ep.hostname,
            };
            pairs.push((endpoint, placement));
        }
        let (endpoints, placements) = sorted(pairs.into_iter());
        // Indexed under the nodes of the endpoints kept (one per address), which are the
        // nodes removal unindexes.
        let mut nodes: Vec<SmolStr> = placements.iter().filter_map(|p| p.node.clone()).collect();
        nodes.sort_unstable();
        nodes.dedup();
        let service = pair_hash(&slice.key.namespace, &slice.service);
        let (id, _) = self.slices.insert(StoredSlice {
            key: slice.key,
            service: slice.service,
            endpoints,
            placements,
            placed_in: self.placement_epoch,
        });
        index(&mut self.slices_by_service, service, id, true);
        for node in nodes {
            self.slices_by_node.entry(node).or_default().insert(id);
        }
        old
    }

    /// Removes a slice; the name of the Service it belonged to.
    pub(crate) fn remove_slice(&mut self, key: &ObjectKey) -> Option<SmolStr> {
        let (id, old) = self.slices.remove(key)?;
        let service = pair_hash(&key.namespace, &old.service);
        index(&mut self.slices_by_service, service, id, false);
        for node in old.placements.iter().filter_map(|p| p.node.as_ref()) {
            if let Some(ids) = self.slices_by_node.get_mut(node) {
                ids.remove(&id);
                if ids.is_empty() {
                    self.slices_by_node.remove(node);
                }
            }
        }
        Some(old.service)
    }

    /// The ids of the slices of the Service `service`.
    fn slice_ids_of(&self, service: &ObjectKey) -> Vec<Id> {
        let hash = pair_hash(&service.namespace, &service.name);
        let ids = self.slices_by_service.get(&hash).into_iter().flatten();
        ids.copied()
            .filter(|id| {
                self.slices.by_id(*id).is_some_and(|slice| {
                    slice.service == service.name && slice.key.namespace == service.namespace
                })
            })
            .collect()
    }

    /// The Service's ready endpoints over all its slices, sorted by address, placed as the
    /// cluster's nodes now say; an address in several slices (during a slice rollover)
    /// counts once. A Service with one slice shares its list.
    pub(super) fn ready_endpoints(
        &mut self,
        service: &ObjectKey,
        localities: &mut Interner<Locality>,
    ) -> Arc<[BackendEndpoint]> {
        let ids = self.slice_ids_of(service);
        let placer = Placer::of(&self.info, &self.nodes, self.derived_region.as_deref());
        for id in &ids {
            if let Some(slice) = self.slices.by_id_mut(*id) {
                slice.place(&placer, self.placement_epoch, localities);
            }
        }
        let mut slices = ids.iter().filter_map(|id| self.slices.by_id(*id));
        match (slices.next(), slices.next()) {
            (None, _) => Arc::from([]),
            (Some(only), None) => Arc::clone(&only.endpoints),
            (Some(first), Some(second)) => {
                let all = [first, second].into_iter().chain(slices);
                let pairs = all.flat_map(|s| {
                    s.endpoints
                        .iter()
                        .cloned()
                        .zip(s.placements.iter().cloned())
                });
                sorted(pairs).0
            }
        }
    }
}
