//! Cost of rendering one host's ServiceEntry and DestinationRule for one cluster, and of
//! serialising them to YAML.
//!
//! Run: `cargo bench -p federator --bench render`

// A failed fixture or assertion should stop a test or benchmark loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use federator::fixtures::*;
use federator::istio::{DestinationRule, ServiceEntry};
use federator::model::{ClusterName, Host};
use federator::registry::{Registry, RegistryConfig};
use federator::render::{RenderOptions, render_host};

fn bench(c: &mut Criterion) {
    // greeting runs in 3 of 10 clusters, two ports, endpoints in three zones each.
    let mut r = Registry::new(RegistryConfig::default());
    for i in 0..10 {
        let name = format!("cluster-{i:02}");
        r.apply(cluster(&name));
        r.apply(upsert(&name, gateway(&[&format!("192.0.2.{i}")])));
        for n in 0..3 {
            r.apply(upsert(
                &name,
                node(
                    &format!("n{n}"),
                    &format!("region-{}", i % 3),
                    &format!("zone-{n}"),
                    "10.0.0.1",
                ),
            ));
        }
        if i < 3 {
            for d in app(
                &name,
                "sample",
                "greeting",
                "greeting",
                "prod",
                &[("http", 8080), ("grpc", 9090)],
                &[("n0", ""), ("n1", ""), ("n2", "")],
            ) {
                r.apply(d);
            }
        }
    }
    let host = Host::build("prod", "greeting", "global").unwrap();
    let view = r.publish();
    let service = view.get(&host).unwrap().clone();
    let options = RenderOptions::default();
    let local = ClusterName::new("cluster-00");
    let remote = ClusterName::new("cluster-07");
    c.bench_function("render_host/local_cluster", |b| {
        b.iter(|| black_box(render_host(&view, &service, &local, &options)))
    });
    c.bench_function("render_host/remote_cluster", |b| {
        b.iter(|| black_box(render_host(&view, &service, &remote, &options)))
    });
    // The Kubernetes objects as the writer and `federator render` build them, made once: only
    // serialising is measured.
    let rendered = render_host(&view, &service, &local, &options).unwrap();
    let service_entry = ServiceEntry::from(rendered.service_entry);
    let destination_rule = DestinationRule::from(rendered.destination_rule);
    c.bench_function("render_host/to_yaml", |b| {
        b.iter(|| {
            black_box(serde_saphyr::to_string(&service_entry).unwrap());
            black_box(serde_saphyr::to_string(&destination_rule).unwrap())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
