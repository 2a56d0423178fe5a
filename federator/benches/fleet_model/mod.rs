//! The simulated fleet's clusters: each one's objects built as the API would send them
//! (Deployments, Services, EndpointSlices, Nodes, the east-west gateway Service) and
//! converted by `ingest`, as its watchers would. Shared by the fleet and shards benchmarks.

#![allow(dead_code)]

use federator::ingest::{self, IngestConfig};
use federator::model::ClusterName;
use federator::registry::{Delta, Registry};
use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, ServiceStatus};
use testenv::objects::{self, Ep};

/// Apps per namespace, roughly what one team runs.
const PER_NAMESPACE: usize = 20;
/// Nodes per cluster, half in each of its two zones.
const NODES: usize = 6;

/// One fleet's shape.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub clusters: usize,
    pub identities: usize,
    pub spread: usize,
    pub endpoints: usize,
    pub deltas: usize,
}

pub fn cluster_name(c: usize) -> String {
    format!("cluster-{c:03}")
}

/// The clusters identity `i` runs in.
pub fn clusters_of(shape: Shape, i: usize) -> impl Iterator<Item = usize> {
    (0..shape.spread.min(shape.clusters)).map(move |k| (i + k) % shape.clusters)
}

/// Identity `i`'s EndpointSlice in cluster `c` with `ready` ready endpoints.
pub fn endpoint_slice(
    shape: Shape,
    c: usize,
    i: usize,
    ready: usize,
) -> k8s_openapi::api::discovery::v1::EndpointSlice {
    let ips: Vec<String> = (0..shape.endpoints)
        .map(|e| {
            // One address per (cluster, identity, endpoint), all different, within 10/8.
            let n = (c * shape.identities + i) * shape.endpoints + e;
            std::net::Ipv4Addr::from(0x0a00_0000 + (n as u32 & 0x00ff_ffff)).to_string()
        })
        .collect();
    let nodes: Vec<String> = (0..shape.endpoints)
        .map(|e| format!("node-{}", (i + e) % NODES))
        .collect();
    let zones: Vec<String> = (0..shape.endpoints)
        .map(|e| format!("zone-{}", (i + e) % NODES % 2))
        .collect();
    let eps: Vec<Ep<'_>> = (0..shape.endpoints)
        .map(|e| Ep {
            ip: &ips[e],
            node: &nodes[e],
            zone: &zones[e],
            ready: e < ready,
        })
        .collect();
    objects::endpoint_slice(&namespace(i), &name(i), PORTS, &eps)
}

const PORTS: &[(&str, i32)] = &[("http", 8080), ("grpc", 9090)];

fn namespace(i: usize) -> String {
    format!("team-{}", i / PER_NAMESPACE)
}

fn name(i: usize) -> String {
    format!("svc-{i}")
}

pub fn upsert(
    cluster: &str,
    result: Result<Option<ingest::Ingested>, ingest::IngestError>,
) -> Delta {
    let ingested = result.unwrap().expect("the object is used");
    assert!(ingested.warnings.is_empty(), "{:?}", ingested.warnings);
    Delta::Upsert(ClusterName::new(cluster), ingested.object)
}

/// Every object of cluster `c`, converted as a watcher converts them, applied one at a time.
pub fn feed_cluster(registry: &mut Registry, shape: Shape, c: usize, config: &IngestConfig) {
    registry.apply(federator::fixtures::cluster(&cluster_name(c)));
    cluster_objects(shape, c, config, |delta| {
        registry.apply(delta);
    });
}

/// Every object of cluster `c` (not the cluster itself), converted as a watcher converts
/// them, handed to `out` one at a time.
pub fn cluster_objects(shape: Shape, c: usize, config: &IngestConfig, mut out: impl FnMut(Delta)) {
    let cluster = cluster_name(c);
    for n in 0..NODES {
        let node = objects::node(
            &format!("node-{n}"),
            &format!("region-{}", c % 5),
            &format!("zone-{}", n % 2),
            &format!("10.{}.255.{n}", c % 250),
        );
        out(upsert(&cluster, ingest::node(&node).map(Some)));
    }
    let mut gateway = objects::gateway_service();
    gateway.status = Some(ServiceStatus {
        load_balancer: Some(LoadBalancerStatus {
            ingress: Some(vec![LoadBalancerIngress {
                ip: Some(format!("198.51.{}.{}", c / 250, c % 250)),
                ..Default::default()
            }]),
        }),
        ..Default::default()
    });
    out(upsert(
        &cluster,
        ingest::service(&gateway, config).map(Some),
    ));
    for i in (0..shape.identities).filter(|i| clusters_of(shape, *i).any(|k| k == c)) {
        let (ns, svc) = (namespace(i), name(i));
        let deployment = objects::deployment(&ns, &svc, &svc, "prod");
        out(upsert(&cluster, ingest::deployment(&deployment, config)));
        let service = objects::service(&ns, &svc, PORTS);
        out(upsert(
            &cluster,
            ingest::service(&service, config).map(Some),
        ));
        let slice = endpoint_slice(shape, c, i, shape.endpoints);
        out(upsert(&cluster, ingest::endpoint_slice(&slice).map(Some)));
    }
}

/// This process's `field` of /proc/self/status (`VmRSS:`, `VmHWM:`), in MiB.
pub fn rss_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}
