//! The registry's global services as the API's messages.

use super::pb;
use crate::clusters::health::State;
use crate::model::ClusterName;
use crate::registry::{GlobalService, LocalBackend, RegistryView};
use crate::runtime::ClusterStatus;

/// `service` as a message.
pub(super) fn service(service: &GlobalService) -> pb::Service {
    let backends = service
        .backends
        .iter()
        .flat_map(|(cluster, list)| list.iter().map(move |b| backend(cluster, b)))
        .collect();
    let rejected = service
        .rejected
        .iter()
        .map(|r| backend(&r.cluster, &r.backend))
        .collect();
    pb::Service {
        host: service.host.to_string(),
        identity: service.identity.clone(),
        env: service.env.clone(),
        vip: service.vip.map(|v| v.to_string()).unwrap_or_default(),
        ports: service
            .ports
            .iter()
            .map(|p| pb::Port {
                name: p.name.to_string(),
                number: u32::from(p.number),
                protocol: p.protocol.to_string(),
            })
            .collect(),
        serving: service.is_serving(),
        backends,
        rejected,
        policy: service
            .policy
            .as_ref()
            .map(|p| format!("{}/{}", p.cluster, p.info.key))
            .unwrap_or_default(),
        clusterset: service.clusterset.as_ref().map(|c| pb::Clusterset {
            headless: c.headless,
            cluster_ids: c
                .cluster_ids
                .iter()
                .map(|(cluster, id)| (cluster.to_string(), id.clone()))
                .collect(),
        }),
    }
}

fn backend(cluster: &ClusterName, backend: &LocalBackend) -> pb::Backend {
    pb::Backend {
        cluster: cluster.to_string(),
        namespace: backend.service.namespace.to_string(),
        service: backend.service.name.to_string(),
        endpoints: backend
            .endpoints
            .iter()
            .map(|e| pb::Endpoint {
                address: e.address.to_string(),
                region: e.locality.region.as_deref().unwrap_or_default().to_owned(),
                zone: e.locality.zone.as_deref().unwrap_or_default().to_owned(),
                hostname: e.hostname.as_deref().unwrap_or_default().to_owned(),
            })
            .collect(),
    }
}

/// What the registry view and the manager know of cluster `name`, as a message.
pub(super) fn cluster(
    name: &ClusterName,
    status: &ClusterStatus,
    view: &RegistryView,
) -> pb::Cluster {
    let (mut hosts, mut ready) = (0u32, 0u32);
    for service in view.services() {
        if let Some(backends) = service.backends.get(name) {
            hosts = hosts.saturating_add(1);
            let here = backends
                .iter()
                .map(LocalBackend::ready_count)
                .fold(0u32, u32::saturating_add);
            ready = ready.saturating_add(here);
        }
    }
    let since = status
        .since
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    pb::Cluster {
        name: name.to_string(),
        state: match status.followed {
            true => pb::ClusterState::Followed,
            false => state(status.state),
        } as i32,
        state_since_unix_seconds: since,
        last_error: status.last_error.clone().unwrap_or_default(),
        removal_pending: status.removal_pending,
        degraded: status
            .degraded
            .iter()
            .map(|(kind, why)| format!("{kind}: {why}"))
            .collect(),
        network: view.network(name).to_owned(),
        gateway_addresses: view
            .gateway_addresses(name)
            .iter()
            .map(|g| format!("{}:{}", g.address, g.port))
            .collect(),
        hosts,
        ready_endpoints: ready,
        owner: status.owner.clone().unwrap_or_default(),
    }
}

fn state(state: State) -> pb::ClusterState {
    match state {
        State::Connecting => pb::ClusterState::Connecting,
        State::Listing => pb::ClusterState::Listing,
        State::Synced => pb::ClusterState::Synced,
        State::Unreachable => pb::ClusterState::Unreachable,
        State::Withdrawn => pb::ClusterState::Stale,
    }
}
