//! Cost of building a DNS snapshot: federator rebuilds it after every batch of registry
//! changes, so this is added to the time until a change is answerable.
//!
//! Run: `cargo bench -p federator-dns --bench snapshot`

// A failed fixture should stop a benchmark loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use federator_dns::{HostRecord, Snapshot, SnapshotConfig, Zone};

fn hosts(n: u32) -> Vec<HostRecord> {
    (0..n)
        .map(|i| HostRecord {
            name: format!("prod.svc-{i}.global"),
            address: IpAddr::V4(Ipv4Addr::from(0xf000_0000 + i + 1)),
            ports: vec![("http".into(), 8080), ("grpc".into(), 9090)],
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let config = SnapshotConfig {
        zones: vec![Zone::new("global").unwrap()],
        ttl: 5,
        serial: 1,
    };
    let mut group = c.benchmark_group("dns_snapshot_build");
    group.sample_size(20);
    for n in [1_000u32, 10_000] {
        let input = hosts(n);
        group.bench_with_input(BenchmarkId::from_parameter(n), &input, |b, input| {
            b.iter(|| black_box(Snapshot::build(&config, input.iter().cloned())))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
