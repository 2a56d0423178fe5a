//! What the registry knows of each cluster's Istio setup: its network, its east-west
//! gateway's locality, and users' Gateways that claim the global hosts.

use crate::model::{ClusterName, Locality, MeshNamespaceInfo, PassthroughClaimInfo, SmolStr};

use super::cluster::ClusterState;
use super::{ChangeSet, Registry};

impl Registry {
    /// Users' Gateways in `cluster` that already pass global hosts through on the gateway
    /// port, sorted, each with just its hosts that cover global hosts.
    pub fn passthrough_claims(&self, cluster: &ClusterName) -> Vec<PassthroughClaimInfo> {
        let suffix = &self.config.host_suffix;
        let Some(state) = self.clusters.get(cluster) else {
            return Vec::new();
        };
        state
            .passthrough_claims
            .values()
            .filter_map(|gateway| {
                let hosts: Vec<String> = gateway
                    .hosts
                    .iter()
                    .filter(|h| covers_suffix(h, suffix))
                    .cloned()
                    .collect();
                (!hosts.is_empty()).then(|| PassthroughClaimInfo {
                    key: gateway.key.clone(),
                    hosts,
                })
            })
            .collect()
    }
}

impl ClusterState {
    /// The Istio network of the cluster's endpoints: the Secret's override, else the
    /// network label of its Istio system namespace, else its name.
    pub(crate) fn network(&self) -> &str {
        let labelled = self
            .mesh_namespace
            .as_ref()
            .and_then(|n| n.network.as_deref());
        self.info.network(labelled)
    }

    /// Where the cluster's east-west gateway is, as other clusters see it: the cluster's
    /// region (override, else most nodes'), and its zone only when the Secret names one.
    /// Envoy keeps one host per address, so each gateway address gets one locality.
    pub(crate) fn gateway_locality(&self) -> Locality {
        Locality {
            region: self
                .info
                .region
                .as_deref()
                .or(self.derived_region.as_deref())
                .map(SmolStr::new),
            zone: self.info.zone.as_deref().map(SmolStr::new),
        }
    }
}

/// Records (or forgets) a cluster's Istio namespace; when that changes the cluster's network,
/// every host of the cluster is re-rendered, and the cluster itself always (its findings).
pub(super) fn set_mesh_namespace(
    state: &mut ClusterState,
    namespace: Option<MeshNamespaceInfo>,
    changes: &mut ChangeSet,
) {
    if state.mesh_namespace == namespace {
        return;
    }
    let before = state.network().to_owned();
    state.mesh_namespace = namespace;
    if state.network() != before {
        changes.hosts.extend(state.hosts().cloned());
    }
    changes.clusters.insert(state.info.name.clone());
}

/// Whether a Gateway server host (`[namespace/]host`) passes every host under `suffix`:
/// `*` or `*.<suffix>`. A Gateway naming a few global hosts claims only those, and
/// federator's own Gateway is still needed for the rest.
fn covers_suffix(host: &str, suffix: &str) -> bool {
    let host = host.rsplit_once('/').map_or(host, |(_, h)| h);
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "*" || host.strip_prefix("*.") == Some(suffix.to_ascii_lowercase().as_str())
}
