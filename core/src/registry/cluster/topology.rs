//! Where a cluster is and how it is reached: the region most nodes report, each endpoint's
//! locality, and the east-west gateway addresses other clusters connect through.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::ClusterState;
use crate::model::{ClusterInfo, Locality, NodeInfo, SmolStr};

/// How many nodes serve as gateway addresses when the gateway has only a NodePort.
pub(crate) const NODEPORT_GATEWAY_NODES: usize = 3;

/// What places a cluster's endpoints: its overrides, its nodes and the region most of them
/// are in. Borrowed apart from the cluster's slices, so that those can be placed again
/// while they are updated.
pub(super) struct Placer<'a> {
    info: &'a ClusterInfo,
    nodes: &'a HashMap<String, NodeInfo>,
    derived_region: Option<&'a str>,
}

impl<'a> Placer<'a> {
    /// A placer over these parts of a cluster.
    pub(super) fn of(
        info: &'a ClusterInfo,
        nodes: &'a HashMap<String, NodeInfo>,
        derived_region: Option<&'a str>,
    ) -> Self {
        Self {
            info,
            nodes,
            derived_region,
        }
    }

    /// The locality of an endpoint on `node` in `zone`: overrides first, then the node's
    /// labels, then the region most nodes are in.
    pub(super) fn locality(&self, node: Option<&str>, zone: Option<&str>) -> Locality {
        let node = node.and_then(|n| self.nodes.get(n));
        let region = self
            .info
            .region
            .as_deref()
            .or_else(|| node.and_then(|n| n.locality.region.as_deref()))
            .or(self.derived_region);
        let zone = zone
            .or_else(|| node.and_then(|n| n.locality.zone.as_deref()))
            .or(self.info.zone.as_deref());
        Locality {
            region: region.map(SmolStr::new),
            zone: zone.map(SmolStr::new),
        }
    }
}

/// An address (and port) through which other clusters reach this one.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GatewayAddress {
    /// IP or hostname.
    pub address: String,
    /// Port that accepts mTLS passthrough (15443, or a NodePort).
    pub port: u16,
}

impl ClusterState {
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
}
