//! Cost of a DNS snapshot: built whole (at start, or when federator's change history does not
//! reach back), and updated after a batch of registry changes, which is added to the time
//! until a change is answerable.
//!
//! Run: `cargo bench -p federator-dns --bench snapshot`

// A failed fixture should stop a benchmark loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::time::Duration;

use federator_dns::{Change, HostRecord, Snapshot, SnapshotConfig, Zone};

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
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(3));
    for n in [1_000u32, 10_000, 100_000] {
        let input = hosts(n);
        group.bench_with_input(BenchmarkId::from_parameter(n), &input, |b, input| {
            b.iter(|| black_box(Snapshot::build(&config, input.iter().cloned())))
        });
    }
    group.finish();
    let snapshots: Vec<(u32, Snapshot)> = [1_000u32, 10_000, 100_000]
        .into_iter()
        .map(|n| (n, Snapshot::build(&config, hosts(n)).0))
        .collect();
    // Host n/2 moves to another VIP and loses a port.
    let moved = |n: u32| {
        let mut moved = hosts(n)[n as usize / 2].clone();
        moved.address = IpAddr::V4(Ipv4Addr::new(240, 255, 0, 1));
        moved.ports.pop();
        moved
    };
    let mut changed = c.benchmark_group("dns_snapshot_update_one_host_changed");
    changed.measurement_time(Duration::from_secs(2));
    for (n, snapshot) in &snapshots {
        let moved = moved(*n);
        changed.bench_with_input(BenchmarkId::from_parameter(n), snapshot, |b, s| {
            b.iter(|| black_box(s.update([Change::Host(moved.clone())])))
        });
    }
    changed.finish();
    let mut added = c.benchmark_group("dns_snapshot_update_one_host_added_and_removed");
    added.measurement_time(Duration::from_secs(2));
    for (n, snapshot) in &snapshots {
        let new = HostRecord {
            name: "prod.new.global".into(),
            ..moved(*n)
        };
        added.bench_with_input(BenchmarkId::from_parameter(n), snapshot, |b, s| {
            b.iter(|| {
                let (with, _) = s.update([Change::Host(new.clone())]);
                black_box(with.update([Change::HostGone(new.name.clone())]))
            })
        });
    }
    added.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
