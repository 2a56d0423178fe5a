//! The registry's global services as the API's messages.

use super::pb;
use crate::model::ClusterName;
use crate::registry::{GlobalService, LocalBackend};

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
                name: p.name.clone(),
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
    }
}

fn backend(cluster: &ClusterName, backend: &LocalBackend) -> pb::Backend {
    pb::Backend {
        cluster: cluster.to_string(),
        namespace: backend.service.namespace.clone(),
        service: backend.service.name.clone(),
        endpoints: backend
            .endpoints
            .iter()
            .map(|e| pb::Endpoint {
                address: e.address.clone(),
                region: e.locality.region.clone().unwrap_or_default(),
                zone: e.locality.zone.clone().unwrap_or_default(),
            })
            .collect(),
    }
}
