//! The simulated fleet: many clusters fed through the code `federator run` uses, with
//! in-process sources and sinks instead of API servers.
//!
//! Each cluster's objects are built as the API would send them (Deployments, Services,
//! EndpointSlices, Nodes, the east-west gateway Service), converted by `ingest` and folded
//! into one registry; every cluster then gets a writer's first pass (render every host,
//! fingerprint, plan against the sink, record the writes in the sink, which keeps what a
//! writer caches of the objects it wrote), and DNS builds its snapshot. Then EndpointSlice
//! changes arrive one at a time and each is carried to every affected cluster's plan and to
//! DNS, as the registry loop, the writers and the DNS publisher would.
//!
//! Each fleet size runs in a child process of its own, so its RSS is its own. Sizes are
//! parameters (environment):
//!
//! - `FLEET_CLUSTERS`: fleet sizes to run, comma separated (default `10,30,100`);
//! - `FLEET_IDENTITIES`: identities at the largest size (default 10,000; smaller fleets get
//!   the same number per cluster, so clusters stay the same size as the fleet grows);
//! - `FLEET_SPREAD`: clusters each identity runs in (default 3);
//! - `FLEET_ENDPOINTS`: ready endpoints per identity and cluster, over 2 zones (default 3);
//! - `FLEET_DELTAS`: EndpointSlice changes timed per size (default 200);
//! - `FLEET_REGISTRY_ONLY=1`: stop after the registry is built and report only what it holds
//!   on the heap (fast, so the registry can be measured at any number of pairs).
//!
//! Without `--bench` (under `cargo test`) it runs one small fleet, as a smoke test.
//!
//! Run: `cargo bench -p federator --bench fleet`

// A failed fixture or assertion should stop a benchmark loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use federator::dns::DnsSettings;
use federator::ingest::{self, IngestConfig};
use federator::model::ClusterName;
use federator::registry::{Registry, RegistryConfig, Since};
use federator::render::RenderOptions;
use federator_dns::Zone;

mod fleet_model;
mod fleet_sinks;
use fleet_model::{
    Shape, cluster_name, clusters_of, endpoint_slice, feed_cluster, rss_mib, upsert,
};
use fleet_sinks::{Sink, writer_pass};
mod heap_count;

/// Counts the heap, so the registry's bytes per pair are exact.
#[global_allocator]
static HEAP: heap_count::Counting = heap_count::Counting;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if let Ok(clusters) = std::env::var("FLEET_CHILD") {
        let shape = Shape {
            clusters: clusters.parse().unwrap(),
            identities: env_usize("FLEET_CHILD_IDENTITIES", 0),
            spread: env_usize("FLEET_SPREAD", 3),
            endpoints: env_usize("FLEET_ENDPOINTS", 3),
            deltas: env_usize("FLEET_DELTAS", 200),
        };
        run(shape);
        return;
    }
    // `cargo bench` passes `--bench`; anything else (`cargo test --all-targets` runs every
    // bench once) gets a small fleet.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let sizes: Vec<usize> = std::env::var("FLEET_CLUSTERS")
        .unwrap_or_else(|_| {
            if smoke {
                "4".into()
            } else {
                "10,30,100".into()
            }
        })
        .split(',')
        .map(|s| s.trim().parse().expect("FLEET_CLUSTERS: numbers"))
        .collect();
    let largest = sizes.iter().copied().max().unwrap_or(1);
    let identities = env_usize("FLEET_IDENTITIES", if smoke { 40 } else { 10_000 });
    print_header(registry_only());
    for clusters in sizes {
        let scaled = (identities * clusters).div_ceil(largest);
        let status = Command::new(std::env::current_exe().unwrap())
            .env("FLEET_CHILD", clusters.to_string())
            .env("FLEET_CHILD_IDENTITIES", scaled.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "fleet of {clusters} clusters failed");
    }
}

fn registry_only() -> bool {
    std::env::var("FLEET_REGISTRY_ONLY").is_ok_and(|v| v == "1")
}

/// The table's header: the registry's heap only, or the whole fleet.
fn print_header(registry_only: bool) {
    let columns: &[&str] = if registry_only {
        &[
            "clusters",
            "identities",
            "(identity, cluster) pairs",
            "registry build",
            "registry's heap",
            "per pair: bytes, blocks",
        ]
    } else {
        &[
            "clusters",
            "identities",
            "(identity, cluster) pairs",
            "registry build",
            "writers' first pass (objects)",
            "DNS build",
            "RSS: registry + writers' caches + DNS = total (peak)",
            "one EndpointSlice change: registry",
            "to every cluster's plan (p50 / p99)",
            "DNS update",
            "writes per change",
        ]
    };
    println!("| {} |", columns.join(" | "));
    println!("|{}", " --- |".repeat(columns.len()));
}

fn run(shape: Shape) {
    let config = IngestConfig::default();
    let options = RenderOptions::default();
    let settings = DnsSettings {
        zones: vec![Zone::new("global").unwrap()],
        ttl: 5,
    };
    let mut registry = Registry::new(RegistryConfig {
        max_hosts_per_cluster: usize::MAX,
        ..RegistryConfig::default()
    });

    let held_before = heap_count::Held::now();
    let started = Instant::now();
    for c in 0..shape.clusters {
        feed_cluster(&mut registry, shape, c, &config);
    }
    let mut view = registry.publish();
    let registry_build = started.elapsed();
    let registry_rss = rss_mib("VmRSS:");
    let registry_heap = heap_count::Held::now().since(held_before);
    assert_eq!(view.len(), shape.identities, "every identity is a host");
    let pairs = shape.identities * shape.spread.min(shape.clusters);
    if registry_only() {
        println!(
            "| {} | {} | {pairs} | {} | {:.1} MiB | {} B, {:.1} |",
            shape.clusters,
            shape.identities,
            ms(registry_build),
            registry_heap.bytes as f64 / (1024.0 * 1024.0),
            registry_heap.bytes / pairs.max(1),
            registry_heap.blocks as f64 / pairs.max(1) as f64,
        );
        return;
    }

    let started = Instant::now();
    let names: Vec<ClusterName> = (0..shape.clusters)
        .map(|c| ClusterName::new(cluster_name(c)))
        .collect();
    let mut sinks: Vec<Sink> = names.iter().map(|_| Sink::default()).collect();
    for (cluster, sink) in names.iter().zip(&mut sinks) {
        writer_pass(&view, cluster, &options, sink, None);
    }
    let writers_build = started.elapsed();
    let writers_rss = rss_mib("VmRSS:");
    let objects: usize = sinks.iter().map(|s| s.existing.len()).sum();
    assert_eq!(
        objects,
        2 * shape.identities * shape.clusters,
        "every host in every cluster"
    );

    let started = Instant::now();
    let (mut snapshot, errors) = federator::dns::snapshot(&view, &settings, 1);
    assert!(errors.is_empty());
    let dns_build = started.elapsed();
    let (rss, peak) = (rss_mib("VmRSS:"), rss_mib("VmHWM:"));

    // EndpointSlice changes, one at a time: a ready endpoint goes, then comes back.
    let mut registry_times = Vec::new();
    let mut writer_times = Vec::new();
    let mut dns_times = Vec::new();
    let writes_before: usize = sinks.iter().map(|s| s.writes).sum();
    for d in 0..shape.deltas {
        // Pairs of changes: one identity's slice loses a ready endpoint, then gets it back.
        let pair = d / 2;
        let i = (pair * 7919) % shape.identities;
        let c = clusters_of(shape, i)
            .nth(pair % shape.spread.min(shape.clusters))
            .unwrap();
        let ready = if d % 2 == 0 {
            shape.endpoints - 1
        } else {
            shape.endpoints
        };
        let slice = endpoint_slice(shape, c, i, ready);
        let generation = view.hosts_generation();

        let started = Instant::now();
        registry.apply(upsert(
            &cluster_name(c),
            ingest::endpoint_slice(&slice).map(Some),
        ));
        view = registry.publish();
        let Since::Hosts(changed) = view.changed_since(generation) else {
            panic!("the change is in the view's history");
        };
        registry_times.push(started.elapsed());

        let started = Instant::now();
        for (cluster, sink) in names.iter().zip(&mut sinks) {
            writer_pass(&view, cluster, &options, sink, Some(&changed));
        }
        writer_times.push(started.elapsed());

        let started = Instant::now();
        // As the DNS publisher does: the hosts the change touched, updated in place.
        let (next, errors) = snapshot.update(federator::dns::changes(&view, &changed));
        assert!(errors.is_empty());
        snapshot = next;
        dns_times.push(started.elapsed());
    }
    std::hint::black_box(&snapshot);
    let writes: usize = sinks.iter().map(|s| s.writes).sum::<usize>() - writes_before;

    println!(
        "| {} | {} | {} | {} | {} ({objects}) | {} | {registry_rss:.0} + {:.0} + {:.0} = {rss:.0} MiB ({peak:.0}) | {} | {} / {} | {} | {:.1} |",
        shape.clusters,
        shape.identities,
        pairs,
        ms(registry_build),
        ms(writers_build),
        ms(dns_build),
        writers_rss - registry_rss,
        rss - writers_rss,
        ms(percentile(&mut registry_times, 50)),
        ms(percentile(&mut writer_times, 50)),
        ms(percentile(&mut writer_times, 99)),
        ms(percentile(&mut dns_times, 50)),
        writes as f64 / shape.deltas.max(1) as f64,
    );
}

fn percentile(samples: &mut [Duration], p: usize) -> Duration {
    samples.sort();
    samples
        .get((samples.len() * p / 100).min(samples.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 1.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{:.1} us", ms * 1000.0)
    }
}
