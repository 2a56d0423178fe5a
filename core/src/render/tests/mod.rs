//! Render tests, by topic; the registries and helpers here are shared by all of them.

use super::*;
use crate::fixtures::*;
use crate::istio::{OutlierDetection, Resolution, TlsMode};
use crate::model::{ClusterInfo, Host, LocalityMode, ObjectKey, PolicyInfo, TrafficPolicy};
use crate::registry::{Delta, Registry, RegistryConfig};
use std::collections::BTreeMap;

mod destination_rule;
mod endpoints;
mod objects;
mod scoping;

fn build(deltas: impl IntoIterator<Item = Delta>) -> Registry {
    let mut r = Registry::new(RegistryConfig::default());
    for d in deltas {
        r.apply(d);
    }
    r
}

fn greeting_host() -> Host {
    Host::build("prod", "greeting", "global").unwrap()
}

/// greeting in `cluster` loses all its ready endpoints.
fn scaled_to_zero(cluster: &str) -> Delta {
    upsert(cluster, slice("sample", "greeting-1", "greeting", &[]))
}

/// The endpoint addresses of the greeting ServiceEntry in `cluster`.
fn addresses(r: &Registry, cluster: &str) -> Vec<String> {
    let se = render(r, cluster).unwrap().service_entry;
    se.spec.endpoints.into_iter().map(|e| e.address).collect()
}

fn render(r: &Registry, cluster: &str) -> Option<RenderedHost> {
    let view = r.full_view();
    let service = view.get(&greeting_host())?;
    render_host(
        &view,
        service,
        &ClusterName::new(cluster),
        &RenderOptions::default(),
    )
}

/// east and west run greeting; south only calls it. Every cluster has a gateway.
fn three_clusters() -> Vec<Delta> {
    let mut d = vec![cluster("east"), cluster("west"), cluster("south")];
    for (c, region, ip) in [
        ("east", "us-east-1", "203.0.113.1"),
        ("west", "us-west-2", "203.0.113.2"),
        ("south", "sa-east-1", "203.0.113.3"),
    ] {
        d.push(upsert(
            c,
            node("n1", region, &format!("{region}a"), "10.0.0.1"),
        ));
        d.push(upsert(c, gateway(&[ip])));
    }
    d.extend(app(
        "east",
        "sample",
        "greeting",
        "greeting",
        "prod",
        &[("http", 8080), ("grpc", 9090)],
        &[("n1", ""), ("n1", "")],
    ));
    d.extend(app(
        "west",
        "sample",
        "greeting",
        "greeting",
        "prod",
        &[("http", 8080), ("grpc", 9090)],
        &[("n1", "")],
    ));
    d
}
