//! What one sidecar must hold, with and without a Dependency: the hosts (Envoy clusters) and
//! endpoints it is sent, and the size of their ServiceEntry and DestinationRule specs as JSON,
//! for a client in a fleet of 1,000 global hosts. Without a Sidecar, Istio sends every
//! sidecar every ServiceEntry of the mesh (the floor); a Dependency of 10 destinations makes
//! federator write a Sidecar that admits only those. Printed as a table; the cost side, the
//! render of the client's cluster with `--export-scope all` and `dependents`, is timed.
//!
//! Run: `cargo bench -p federator --bench sidecar_scope`

// A failed fixture or assertion should stop a test or benchmark loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use federator::fixtures::*;
use federator::model::{ClusterName, Host};
use federator::registry::{Registry, RegistryConfig, RegistryView};
use federator::render::{
    ExportScope, RenderOptions, RenderedHost, render_cluster, render_sidecars,
};

const CLUSTERS: usize = 3;
/// Nodes per cluster, spread over [`ZONES`] zones.
const NODES: usize = 4;
const ZONES: usize = 2;
/// Global identities (env `prod`), each running in two clusters.
const IDENTITIES: usize = 1_000;
/// Ready endpoints of an identity in each cluster it runs in.
const READY: usize = 3;
/// Apps per namespace, roughly what one team runs.
const PER_NAMESPACE: usize = 20;
/// Identities the client's Dependency names.
const CALLS: usize = 10;
/// The calling identity, running in cluster 0 only.
const CLIENT: &str = "client";

fn cluster_name(c: usize) -> String {
    format!("cluster-{c:02}")
}

/// Every `IDENTITIES / CALLS`-th identity: some run in cluster 0, some only elsewhere.
fn destinations() -> Vec<String> {
    (0..CALLS)
        .map(|k| format!("svc-{}", k * IDENTITIES / CALLS))
        .collect()
}

fn build() -> Registry {
    let mut r = Registry::new(RegistryConfig::default());
    for c in 0..CLUSTERS {
        let name = cluster_name(c);
        r.apply(cluster(&name));
        r.apply(upsert(&name, gateway(&[&format!("192.0.2.{c}")])));
        for n in 0..NODES {
            r.apply(upsert(
                &name,
                node(
                    &format!("node-{n}"),
                    &format!("region-{c}"),
                    &format!("zone-{}", n % ZONES),
                    &format!("10.{c}.0.{n}"),
                ),
            ));
        }
    }
    for i in 0..IDENTITIES {
        for c in [i % CLUSTERS, (i + 1) % CLUSTERS] {
            let endpoints = ready_on_nodes(i);
            let endpoints: Vec<(&str, &str)> = endpoints
                .iter()
                .map(|(n, z)| (n.as_str(), z.as_str()))
                .collect();
            for d in app(
                &cluster_name(c),
                &format!("team-{}", i / PER_NAMESPACE),
                &format!("svc-{i}"),
                &format!("svc-{i}"),
                "prod",
                &[("http", 8080), ("grpc", 9090)],
                &endpoints,
            ) {
                r.apply(d);
            }
        }
    }
    let client = cluster_name(0);
    let endpoints = ready_on_nodes(0);
    let endpoints: Vec<(&str, &str)> = endpoints
        .iter()
        .map(|(n, z)| (n.as_str(), z.as_str()))
        .collect();
    for d in app(
        &client,
        CLIENT,
        CLIENT,
        CLIENT,
        "prod",
        &[("http", 8080)],
        &endpoints,
    ) {
        r.apply(d);
    }
    let calls = destinations();
    let calls: Vec<&str> = calls.iter().map(String::as_str).collect();
    r.apply(upsert(&client, dependency(CLIENT, CLIENT, &calls)));
    r
}

/// `(node, zone)` of the [`READY`] endpoints of identity `i` in a cluster.
fn ready_on_nodes(i: usize) -> Vec<(String, String)> {
    (0..READY)
        .map(|e| {
            let n = (i + e) % NODES;
            (format!("node-{n}"), format!("zone-{}", n % ZONES))
        })
        .collect()
}

/// What a sidecar is sent: hosts, their endpoints, and their specs' size as JSON.
#[derive(Clone, Copy, Debug, Default)]
struct Footprint {
    hosts: usize,
    endpoints: usize,
    bytes: usize,
}

fn footprint<'a>(objects: impl IntoIterator<Item = &'a RenderedHost>) -> Footprint {
    objects.into_iter().fold(Footprint::default(), |f, o| {
        let bytes = serde_json::to_vec(&o.service_entry.spec).unwrap().len()
            + serde_json::to_vec(&o.destination_rule.spec).unwrap().len();
        Footprint {
            hosts: f.hosts + o.service_entry.spec.hosts.len(),
            endpoints: f.endpoints + o.service_entry.spec.endpoints.len(),
            bytes: f.bytes + bytes,
        }
    })
}

/// Whether the Sidecar egress entry `entry` (`<namespace>/<host>`, in a Sidecar of namespace
/// `sidecar_namespace`) admits `host` of an object in `namespace`: `.` is the Sidecar's
/// namespace, `*` any namespace or host, `*.<suffix>` any host ending in `.<suffix>`.
fn admits(entry: &str, sidecar_namespace: &str, namespace: &str, host: &str) -> bool {
    let Some((ns, pattern)) = entry.split_once('/') else {
        return false;
    };
    let namespace_ok = match ns {
        "*" => true,
        "." => namespace == sidecar_namespace,
        ns => ns == namespace,
    };
    let host_ok = match pattern.strip_prefix('*') {
        Some(suffix) => host.ends_with(suffix),
        None => host == pattern,
    };
    namespace_ok && host_ok
}

/// The client's Sidecar in cluster 0, and what of `objects` it lets through.
fn through_sidecar<'a>(
    view: &RegistryView,
    objects: &'a [RenderedHost],
    options: &RenderOptions,
) -> Vec<&'a RenderedHost> {
    let host = Host::build("prod", CLIENT, "global").unwrap();
    let client = view.get(&host).unwrap();
    let sidecars = render_sidecars(view, client, &ClusterName::new(cluster_name(0)), options);
    assert_eq!(sidecars.len(), 1, "one Sidecar for the client's Deployment");
    let sidecar = &sidecars[0];
    let egress: Vec<&String> = sidecar.spec.egress.iter().flat_map(|e| &e.hosts).collect();
    objects
        .iter()
        .filter(|o| {
            let se = &o.service_entry;
            se.spec.hosts.iter().any(|h| {
                egress
                    .iter()
                    .any(|e| admits(e, &sidecar.metadata.namespace, &se.metadata.namespace, h))
            })
        })
        .collect()
}

fn print_table(rows: &[(&str, Footprint)], floor: Footprint) {
    let ratio = |floor: usize, this: usize| floor as f64 / this as f64;
    println!();
    println!(
        "| the client's sidecar in {} ({IDENTITIES} identities in 2 of {CLUSTERS} clusters, \
         {READY} ready endpoints each) | hosts | endpoints | KiB (ServiceEntry + \
         DestinationRule specs, JSON) | ratio: no Sidecar / this (hosts, endpoints, KiB) |",
        cluster_name(0)
    );
    println!("| --- | --- | --- | --- | --- |");
    for (what, f) in rows {
        println!(
            "| {what} | {} | {} | {:.1} | {:.1} x, {:.1} x, {:.1} x |",
            f.hosts,
            f.endpoints,
            f.bytes as f64 / 1024.0,
            ratio(floor.hosts, f.hosts),
            ratio(floor.endpoints, f.endpoints),
            ratio(floor.bytes, f.bytes),
        );
    }
    println!();
}

fn bench(c: &mut Criterion) {
    let r = build();
    let view = r.full_view();
    let destination = ClusterName::new(cluster_name(0));
    let all = RenderOptions::default();
    let dependents = RenderOptions {
        export_scope: ExportScope::Dependents,
        ..RenderOptions::default()
    };

    // Every host's objects for cluster 0 (`render_host` for every service).
    let objects = render_cluster(&view, &destination, &all);
    let scoped_objects = render_cluster(&view, &destination, &dependents);
    let floor = footprint(&objects);
    let with_sidecar = footprint(through_sidecar(&view, &objects, &all));
    let dependents_only = footprint(&scoped_objects);
    let dependents_sidecar = footprint(through_sidecar(&view, &scoped_objects, &dependents));
    assert_eq!(floor.hosts, IDENTITIES + 1, "every host, the client's too");
    assert_eq!(
        with_sidecar.hosts, CALLS,
        "the Dependency's destinations only"
    );
    assert_eq!(
        (dependents_sidecar.hosts, dependents_sidecar.endpoints),
        (with_sidecar.hosts, with_sidecar.endpoints),
        "the destinations are exported to the client's cluster"
    );
    let sidecar_row = format!("the Dependency's Sidecar ({CALLS} destinations)");
    print_table(
        &[
            ("no Sidecar (Istio's default: every host; the floor)", floor),
            (&sidecar_row, with_sidecar),
            (
                "no Sidecar, `--export-scope dependents` (what a sidecar without a Dependency holds)",
                dependents_only,
            ),
        ],
        floor,
    );

    // The cost side: rendering cluster 0's objects in either scope, and the client's Sidecar.
    let mut group = c.benchmark_group("sidecar_scope");
    group
        .measurement_time(Duration::from_secs(5))
        .sample_size(20);
    group.bench_function("render_cluster/export_scope_all", |b| {
        b.iter(|| black_box(render_cluster(&view, &destination, &all)))
    });
    group.bench_function("render_cluster/export_scope_dependents", |b| {
        b.iter(|| black_box(render_cluster(&view, &destination, &dependents)))
    });
    let client = view
        .get(&Host::build("prod", CLIENT, "global").unwrap())
        .unwrap();
    group.bench_function("render_sidecars/client", |b| {
        b.iter(|| black_box(render_sidecars(&view, client, &destination, &all)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
