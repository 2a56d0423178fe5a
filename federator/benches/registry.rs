//! Cost of applying one delta to registries of 1k, 10k and 100k hosts spread over 10
//! clusters, and of publishing the view readers render from. The target is a flat cost: a
//! delta and its publication pay for what they touch, not for the size of the registry.
//!
//! Run: `cargo bench -p federator --bench registry`

// A failed fixture or assertion should stop a test or benchmark loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use federator::fixtures::*;
use federator::model::{ObjectKey, ObjectRef, WorkloadKind};
use federator::registry::{Delta, Registry, RegistryConfig};

const CLUSTERS: usize = 10;
/// Apps per namespace, roughly what one team runs.
const PER_NAMESPACE: usize = 20;

fn cluster_name(c: usize) -> String {
    format!("cluster-{c:02}")
}

/// `hosts` identities; each runs in two clusters with three ready endpoints over two zones.
fn build(hosts: usize) -> Registry {
    // 100k identities over 10 clusters is 20k hosts per cluster, past the default quota:
    // this measures the registry at that size, not the quota.
    build_with_quota(hosts, usize::MAX)
}

/// As [`build`], with at most `quota` hosts per cluster: the rest are held back.
fn build_with_quota(hosts: usize, quota: usize) -> Registry {
    let mut r = Registry::new(RegistryConfig {
        max_hosts_per_cluster: quota,
        ..RegistryConfig::default()
    });
    for c in 0..CLUSTERS {
        let name = cluster_name(c);
        r.apply(cluster(&name));
        r.apply(upsert(&name, gateway(&[&format!("192.0.2.{c}")])));
        for n in 0..10 {
            r.apply(upsert(
                &name,
                node(
                    &format!("node-{n}"),
                    &format!("region-{}", c % 3),
                    &format!("zone-{}", n % 3),
                    &format!("10.{c}.0.{n}"),
                ),
            ));
        }
    }
    for i in 0..hosts {
        for c in [i % CLUSTERS, (i + 1) % CLUSTERS] {
            for d in app_in(c, i, 3) {
                r.apply(d);
            }
        }
    }
    r
}

fn app_in(c: usize, i: usize, ready: usize) -> Vec<Delta> {
    let endpoints: Vec<(String, String)> = (0..ready)
        .map(|e| {
            (
                format!("node-{}", (i + e) % 10),
                format!("zone-{}", (i + e) % 3),
            )
        })
        .collect();
    let endpoints: Vec<(&str, &str)> = endpoints
        .iter()
        .map(|(n, z)| (n.as_str(), z.as_str()))
        .collect();
    app(
        &cluster_name(c),
        &format!("team-{}", i / PER_NAMESPACE),
        &format!("svc-{i}"),
        &format!("svc-{i}"),
        "prod",
        &[("http", 8080), ("grpc", 9090)],
        &endpoints,
    )
}

fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("registry_delta");
    group
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    for hosts in [1_000usize, 10_000, 100_000] {
        let mut r = build(hosts);
        eprintln!(
            "registry of {hosts} hosts x 2 clusters: RSS {:.0} MiB",
            rss_mib().unwrap_or(f64::NAN)
        );
        let target = hosts / 2;
        let cluster = cluster_name(target % CLUSTERS);
        let ns = format!("team-{}", target / PER_NAMESPACE);
        let svc = format!("svc-{target}");

        // An EndpointSlice changing its ready count (the most frequent event).
        let slices = ready_flips(&cluster, &ns, &svc);
        let mut flip = 0;
        group.bench_with_input(
            BenchmarkId::new("endpointslice_update", hosts),
            &hosts,
            |b, _| {
                b.iter(|| {
                    flip ^= 1;
                    black_box(r.apply(slices[flip].clone()))
                })
            },
        );

        // The same, followed by publishing the view writers and DNS read, while the previous
        // view is still held (as the watch channel holds it); against the floor a registry
        // without shared maps would pay, a copy of every host per batch.
        update_and_publish(&mut group, hosts, &mut r, &slices);
        group.bench_with_input(
            BenchmarkId::new("view_from_scratch", hosts),
            &hosts,
            |b, _| b.iter(|| black_box(r.full_view())),
        );
        // The live warnings, which the registry loop works out between batches.
        group.bench_with_input(BenchmarkId::new("warnings", hosts), &hosts, |b, _| {
            b.iter(|| black_box(r.warnings()))
        });

        // A Service changing a port, re-deciding the host's ports across clusters.
        let services = [8080u16, 8081].map(|p| {
            upsert(
                &cluster,
                service(&ns, &svc).port("http", p).port("grpc", 9090),
            )
        });
        group.bench_with_input(BenchmarkId::new("service_update", hosts), &hosts, |b, _| {
            b.iter(|| {
                flip ^= 1;
                black_box(r.apply(services[flip].clone()))
            })
        });

        // A new identity appearing and going again (host creation, VIP allocation, removal).
        let fresh = app_in(3, hosts + 7, 2);
        let removal = Delta::Remove(
            cluster_name(3).as_str().into(),
            ObjectRef::Workload(
                WorkloadKind::Deployment,
                ObjectKey::new(
                    format!("team-{}", (hosts + 7) / PER_NAMESPACE),
                    format!("svc-{}", hosts + 7),
                ),
            ),
        );
        group.bench_with_input(
            BenchmarkId::new("host_add_remove", hosts),
            &hosts,
            |b, _| {
                b.iter(|| {
                    black_box(r.apply(fresh[0].clone()));
                    black_box(r.apply(removal.clone()))
                })
            },
        );
    }
    group.finish();

    // Every cluster full, holding back three quarters of its hosts: publishing a changed
    // cluster's view must not cost what it holds back.
    let mut group = c.benchmark_group("registry_full_clusters");
    group
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    for hosts in [10_000usize, 100_000] {
        let per_cluster = hosts * 2 / CLUSTERS;
        let mut r = build_with_quota(hosts, per_cluster / 4);
        let slices = ready_flips(&cluster_name(0), "team-0", "svc-0");
        update_and_publish(&mut group, hosts, &mut r, &slices);
    }
    group.finish();
}

/// `svc`'s EndpointSlice with 2 ready endpoints, and with 3.
fn ready_flips(cluster: &str, ns: &str, svc: &str) -> [Delta; 2] {
    [2usize, 3].map(|n| {
        let eps: Vec<(String, String)> = (0..n)
            .map(|e| (format!("node-{e}"), format!("zone-{e}")))
            .collect();
        let eps: Vec<(&str, &str)> = eps.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        upsert(cluster, slice(ns, &format!("{svc}-1"), svc, &eps))
    })
}

/// One of `slices` applied, then the view published while the previous one is still held
/// (as the watch channel holds it).
fn update_and_publish(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    hosts: usize,
    r: &mut Registry,
    slices: &[Delta; 2],
) {
    let mut held = r.publish();
    let mut flip = 0;
    group.bench_with_input(
        BenchmarkId::new("endpointslice_update_and_publish", hosts),
        &hosts,
        |b, _| {
            b.iter(|| {
                flip ^= 1;
                black_box(r.apply(slices[flip].clone()));
                held = r.publish();
                black_box(&held);
            })
        },
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
