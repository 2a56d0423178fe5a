use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::metadata::object_meta;
use super::{RenderOptions, Rendered};
use crate::istio::{Location, Resolution, ServiceEntrySpec, ServicePort, WorkloadEntry};
use crate::model::{ClusterName, Locality};
use crate::registry::{GlobalService, RegistryView};

/// Label that tells client sidecars to use Istio mTLS (and so the SNI that remote
/// east-west gateways route on).
const TLS_MODE_LABEL: &str = "security.istio.io/tlsMode";
/// Label naming the cluster an endpoint leads to, for people and for subsets.
const CLUSTER_LABEL: &str = "federator.io/cluster";

/// The ServiceEntry of `service` in `destination`: the local pods first, each with its own
/// locality and target ports, then every other cluster with ready endpoints: through each of
/// its gateway addresses once, or, when it is on the destination's own network (pods
/// reachable directly, as Istio defines a network), pod by pod like local ones. `None` when
/// no endpoint is reachable from `destination`.
///
/// Why per pod: Envoy prefers localities only among distinct hosts, and outlier detection
/// ejects hosts. One Service FQDN per zone resolves to one ClusterIP everywhere, so
/// kube-proxy would spread traffic over every zone and a bad pod would eject the Service.
/// Why each gateway address once: Envoy keeps one host per address, so an address listed in
/// several localities silently loses all but the first.
pub(super) fn render(
    view: &RegistryView,
    service: &GlobalService,
    destination: &ClusterName,
    options: &RenderOptions,
) -> Option<Rendered<ServiceEntrySpec>> {
    let vip = service.vip?;
    // Weighted backends (an Argo canary) need finer weights than one per pod; every weight
    // of the host then counts in hundredths of a pod, so clusters and gateways stay on one
    // scale.
    let weighted = service
        .backends
        .values()
        .flatten()
        .any(|b| b.weight.is_some());
    let scale = if weighted { 100 } else { 1 };
    let mut endpoints = pod_endpoints(view, service, destination, scale);
    let network = view.network(destination);
    for cluster in service.backends.keys().filter(|c| *c != destination) {
        if view.network(cluster) == network {
            // Never through a gateway on the same network: that gateway's own view (Istio's
            // REQUESTED_NETWORK_VIEW) would include this cluster's gateway again.
            endpoints.extend(pod_endpoints(view, service, cluster, scale));
        } else {
            endpoints.extend(remote_endpoints(view, service, cluster, scale));
        }
    }
    if endpoints.is_empty() {
        return None;
    }
    let all_ips = endpoints
        .iter()
        .all(|e| e.address.parse::<IpAddr>().is_ok());
    let spec = ServiceEntrySpec {
        hosts: vec![service.host.as_str().to_owned()],
        addresses: vec![vip.to_string()],
        ports: service
            .ports
            .iter()
            .map(|p| ServicePort {
                number: u32::from(p.number),
                protocol: p.protocol.as_istio().to_owned(),
                name: p.name.to_string(),
            })
            .collect(),
        location: Some(Location::MeshInternal),
        resolution: Some(if all_ips {
            Resolution::Static
        } else {
            Resolution::Dns
        }),
        endpoints,
        export_to: vec!["*".into()],
    };
    Some(Rendered {
        metadata: object_meta(service, options),
        spec,
    })
}

/// One entry per ready pod of `cluster`'s backends (an address shared by two backend
/// Services counts once), each on its target ports; weighted when the backends carry
/// shares (an Argo canary under traffic routing).
fn pod_endpoints(
    view: &RegistryView,
    service: &GlobalService,
    cluster: &ClusterName,
    scale: u32,
) -> Vec<WorkloadEntry> {
    let network = view.network(cluster);
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let backends = service.backends.get(cluster).into_iter().flatten();
    let weighted_pods: usize = backends
        .clone()
        .filter(|b| b.weight.is_some())
        .map(|b| b.endpoints.len())
        .sum();
    for backend in backends {
        let weight = match backend.weight {
            Some(share) => Some(endpoint_weight(
                share,
                weighted_pods,
                backend.endpoints.len(),
            )),
            None => (scale > 1).then_some(scale),
        };
        for endpoint in backend.endpoints.iter() {
            if !seen.insert(endpoint.address.as_str()) {
                continue;
            }
            let ports = service
                .ports
                .iter()
                .map(|p| {
                    let target = backend.target_port(endpoint, p.number);
                    (p.name.to_string(), u32::from(target))
                })
                .collect();
            out.push(entry(
                &endpoint.address,
                ports,
                cluster,
                network,
                &endpoint.locality,
                weight,
            ));
        }
    }
    out
}

/// One entry per gateway address of `cluster`, in the gateway's locality, weighted by the
/// cluster's ready endpoints (split over its addresses).
fn remote_endpoints(
    view: &RegistryView,
    service: &GlobalService,
    cluster: &ClusterName,
    scale: u32,
) -> Vec<WorkloadEntry> {
    let gateways = view.gateway_addresses(cluster);
    let ready: u32 = service.ready_in(cluster).values().sum();
    if gateways.is_empty() || ready == 0 {
        return Vec::new();
    }
    let network = view.network(cluster);
    let locality = view.gateway_locality(cluster);
    gateways
        .iter()
        .enumerate()
        .map(|(index, gateway)| {
            let ports = service
                .ports
                .iter()
                .map(|p| (p.name.to_string(), u32::from(gateway.port)))
                .collect();
            let weight = share(ready, gateways.len(), index).saturating_mul(scale);
            entry(
                &gateway.address,
                ports,
                cluster,
                network,
                &locality,
                Some(weight),
            )
        })
        .collect()
}

/// The weight of gateway address `index` of `n` for `count` ready endpoints: the count is
/// split over the addresses so a cluster with two gateway IPs does not draw twice the
/// traffic, but no address drops below 1.
fn share(count: u32, n: usize, index: usize) -> u32 {
    let n = u32::try_from(n).unwrap_or(u32::MAX).max(1);
    let index = u32::try_from(index).unwrap_or(u32::MAX);
    let base = count / n;
    let extra = u32::from(index < count % n);
    (base + extra).max(1)
}

/// The weight, in hundredths of a pod, of each of the `endpoints` pods of a backend with
/// `share` percent of the traffic of the `pods` weighted pods of its cluster: the backends
/// keep their shares and together weigh what as many unweighted pods would (80 % over 4
/// stable pods and 20 % over 1 canary pod: 100 and 100; 2 and 1 pods: 120 each and 60), and
/// no pod drops below 1 (Istio refuses 0).
fn endpoint_weight(share: u32, pods: usize, endpoints: usize) -> u32 {
    let pods = u32::try_from(pods).unwrap_or(u32::MAX);
    let n = u32::try_from(endpoints).unwrap_or(u32::MAX).max(1);
    (pods.saturating_mul(share) / n).max(1)
}

fn entry(
    address: &str,
    ports: BTreeMap<String, u32>,
    cluster: &ClusterName,
    network: &str,
    locality: &Locality,
    weight: Option<u32>,
) -> WorkloadEntry {
    WorkloadEntry {
        address: address.to_owned(),
        ports,
        labels: BTreeMap::from([
            (CLUSTER_LABEL.to_owned(), cluster.as_str().to_owned()),
            (TLS_MODE_LABEL.to_owned(), "istio".to_owned()),
        ]),
        network: Some(network.to_owned()),
        locality: locality.to_istio(),
        weight,
    }
}

#[cfg(test)]
mod tests {
    use super::{endpoint_weight, share};

    #[test]
    fn pod_weights_keep_each_backends_share() {
        assert_eq!(
            (endpoint_weight(80, 5, 4), endpoint_weight(20, 5, 1)),
            (100, 100)
        );
        assert_eq!(
            (endpoint_weight(80, 3, 2), endpoint_weight(20, 3, 1)),
            (120, 60)
        );
        assert_eq!(
            (endpoint_weight(90, 5, 4), endpoint_weight(10, 5, 1)),
            (112, 50)
        );
        assert_eq!(endpoint_weight(1, 1, 1000), 1);
    }

    #[test]
    fn weights_split_over_gateway_addresses() {
        assert_eq!((0..2).map(|i| share(5, 2, i)).collect::<Vec<_>>(), [3, 2]);
        assert_eq!(
            (0..3).map(|i| share(1, 3, i)).collect::<Vec<_>>(),
            [1, 1, 1]
        );
        assert_eq!(share(4, 1, 0), 4);
    }
}
