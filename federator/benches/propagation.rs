//! Live benchmark on real API servers: start-to-converged time and memory of the `federator`
//! binary with 3 clusters x N services, propagation latency of a change from one cluster to
//! the objects written in another, and the writes of a no-op restart; then, in the same run,
//! the floor of the cold start: a plain client creating the same objects with the same
//! concurrency.
//!
//! Run: `cargo bench -p federator --bench propagation` (N = 1000; `FEDERATOR_BENCH_SERVICES`
//! overrides). Under `cargo test` it runs a small smoke-sized version.

// A failed fixture or assertion should stop a benchmark loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use federator::istio::{DestinationRule, ServiceEntry};
use futures::StreamExt;
use futures::stream::{self, TryStreamExt};
use kube::Api;
use kube::api::ListParams;
use kube::runtime::watcher;
use testenv::objects::{self, Ep};
use testenv::{TestCluster, TestEnv};

mod common;
use common::{
    add_host, federator_run, free_port, get, metric, prepare_cluster, register_clusters, wait_for,
};

const CLUSTERS: [&str; 3] = ["config", "east", "west"];

struct Sizes {
    services: usize,
    samples: usize,
}

#[tokio::main]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let sizes = if bench {
        Sizes {
            services: std::env::var("FEDERATOR_BENCH_SERVICES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000),
            samples: 200,
        }
    } else {
        Sizes {
            services: 10,
            samples: 5,
        }
    };
    let env = TestEnv::start(&CLUSTERS).await.unwrap();
    let t = Instant::now();
    for (i, name) in CLUSTERS.iter().enumerate() {
        let cluster = env.cluster(name);
        prepare_cluster(cluster, i).await;
        populate(cluster, sizes.services).await;
    }
    eprintln!(
        "created {} services in {:?}",
        sizes.services * CLUSTERS.len(),
        t.elapsed()
    );
    register_clusters(&env, &CLUSTERS).await;

    // Start to converged.
    let port = free_port();
    let start = Instant::now();
    let mut federator = spawn(&env, port);
    let ready = wait_for(|| async { get(port, "/readyz").await.0 == 200 }).await;
    let hosts = sizes.services * CLUSTERS.len();
    for name in CLUSTERS {
        let cluster = env.cluster(name);
        wait_for(|| async { count_objects(cluster).await == 2 * hosts }).await;
    }
    let converged = start.elapsed();
    let rss = rss_mib(federator.id(), "VmRSS");
    let rss_anon = rss_mib(federator.id(), "RssAnon");
    let rss_file = rss_mib(federator.id(), "RssFile");
    let first_writes = metric(port, "federator_writes_total").await;

    // Propagation: a ready-count change in east until west's ServiceEntry reflects it.
    let latencies = propagation(&env, sizes.samples).await;
    let internal = metric(port, "federator_propagation_seconds_count").await;
    settle(port).await;
    stop(&mut federator);

    // No-op restart.
    let restart = Instant::now();
    let mut federator = spawn(&env, port);
    wait_for(|| async { get(port, "/readyz").await.0 == 200 }).await;
    wait_for(|| async { metric(port, "federator_full_reconciles_total").await >= 3.0 }).await;
    let restart_converged = restart.elapsed();
    let restart_writes = metric(port, "federator_writes_total").await;
    stop(&mut federator);

    let pct = |p: f64| {
        let mut sorted = latencies.clone();
        sorted.sort();
        sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
    };
    println!(
        "| clusters x services | {} x {} ({hosts} hosts) |",
        CLUSTERS.len(),
        sizes.services
    );
    println!("| start to ready | {:.2} s |", ready.as_secs_f64());
    println!(
        "| start to converged (every cluster has every ServiceEntry and DestinationRule) | {:.2} s |",
        converged.as_secs_f64()
    );
    println!(
        "| objects written on first start | {} |",
        first_writes as u64
    );
    println!(
        "| RSS when converged (heap and stacks + the binary's pages) | {rss:.0} MiB ({rss_anon:.0} + {rss_file:.0}) |"
    );
    println!(
        "| propagation east -> west, {} samples | p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms |",
        latencies.len(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        pct(1.0).as_secs_f64() * 1e3
    );
    println!(
        "| propagations measured by federator itself | {} |",
        internal as u64
    );
    println!(
        "| no-op restart: start to every cluster reconciled | {:.2} s |",
        restart_converged.as_secs_f64()
    );
    println!(
        "| no-op restart: objects written | {} |",
        restart_writes as u64
    );
    assert_eq!(restart_writes, 0.0, "a no-op restart must write nothing");

    // The floor of the cold start: the same objects created by a plain client.
    let floor = plain_client_floor(&env).await;
    println!(
        "| floor: a plain client creating the same {} objects, {WRITES_IN_FLIGHT} in flight per cluster | {:.2} s |",
        2 * hosts * CLUSTERS.len(),
        floor.as_secs_f64()
    );
    println!(
        "| start to converged / floor | {:.2} x |",
        converged.as_secs_f64() / floor.as_secs_f64()
    );
}

/// Writes in flight per cluster, as federator's writers have them.
const WRITES_IN_FLIGHT: usize = 16;

/// How long a plain client takes to create what federator wrote: every ServiceEntry and
/// DestinationRule read back from each cluster (spec, labels, annotations) and created again
/// in a namespace of its own, the same POSTs federator's writers make, as many in flight per
/// cluster, every cluster at once. What federator adds on top of it (start-up, lists,
/// registry, render, planning) is the ratio printed.
async fn plain_client_floor(env: &TestEnv) -> Duration {
    let mut work = Vec::new();
    for name in CLUSTERS {
        let cluster = env.cluster(name);
        cluster.create_namespace("floor").await.unwrap();
        let entries = read_back::<ServiceEntry>(cluster).await;
        let rules = read_back::<DestinationRule>(cluster).await;
        work.push((cluster, entries, rules));
    }
    let start = Instant::now();
    futures::future::join_all(
        work.into_iter()
            .map(|(cluster, entries, rules)| async move {
                let se: Api<ServiceEntry> = Api::namespaced(cluster.client(), "floor");
                let dr: Api<DestinationRule> = Api::namespaced(cluster.client(), "floor");
                let creates = entries
                    .into_iter()
                    .map(|o| {
                        let se = se.clone();
                        futures::FutureExt::boxed(async move {
                            se.create(&Default::default(), &o).await.map(drop)
                        })
                    })
                    .chain(rules.into_iter().map(|o| {
                        let dr = dr.clone();
                        futures::FutureExt::boxed(async move {
                            dr.create(&Default::default(), &o).await.map(drop)
                        })
                    }));
                stream::iter(creates)
                    .buffer_unordered(WRITES_IN_FLIGHT)
                    .try_collect::<Vec<()>>()
                    .await
                    .unwrap();
            }),
    )
    .await;
    start.elapsed()
}

/// The objects of kind `K` federator wrote in `cluster`, as a client would create them in the
/// `floor` namespace: name, labels, annotations and spec.
async fn read_back<K>(cluster: &TestCluster) -> Vec<K>
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(cluster.client(), "federator-sync");
    let mut objects = api.list(&ListParams::default()).await.unwrap().items;
    for object in &mut objects {
        let meta = object.meta_mut();
        *meta = kube::api::ObjectMeta {
            name: meta.name.take(),
            namespace: Some("floor".into()),
            labels: meta.labels.take(),
            annotations: meta.annotations.take(),
            ..Default::default()
        };
    }
    objects
}

async fn populate(cluster: &TestCluster, services: usize) {
    cluster.create_namespace("bench").await.unwrap();
    let name = cluster.name().to_owned();
    stream::iter(0..services)
        .map(|i| {
            let svc = format!("{name}-svc-{i}");
            async move { add_host(cluster, &svc).await }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
}

fn spawn(env: &TestEnv, port: u16) -> Child {
    federator_run(env, port)
        .args(["--probe-interval", "1s", "--initial-sync-timeout", "60s"])
        .spawn()
        .unwrap()
}

fn stop(child: &mut Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
}

async fn propagation(env: &TestEnv, samples: usize) -> Vec<Duration> {
    let east = env.cluster("east");
    let host = "prod.east-svc-0.global";
    let api: Api<ServiceEntry> = Api::namespaced(env.cluster("west").client(), "federator-sync");
    let config = watcher::Config::default().fields(&format!("metadata.name={host}"));
    let mut updates = watcher::watcher(api, config).boxed();
    let mut out = Vec::new();
    for sample in 0..samples {
        let ready = 2 + sample % 2;
        let ips: Vec<String> = (0..ready).map(|i| format!("10.1.0.{}", i + 1)).collect();
        let eps: Vec<Ep<'_>> = ips
            .iter()
            .map(|ip| Ep {
                ip,
                node: "node-1",
                zone: "zone-a",
                ready: true,
            })
            .collect();
        east.apply(&objects::endpoint_slice(
            "bench",
            "east-svc-0",
            &[("http", 8080)],
            &eps,
        ))
        .await
        .unwrap();
        let changed = Instant::now();
        loop {
            let event = tokio::time::timeout(Duration::from_secs(30), updates.try_next())
                .await
                .unwrap()
                .unwrap();
            let se = match event {
                Some(watcher::Event::Apply(se)) | Some(watcher::Event::InitApply(se)) => se,
                _ => continue,
            };
            if se.spec.endpoints.first().and_then(|e| e.weight) == Some(ready as u32) {
                out.push(changed.elapsed());
                break;
            }
        }
    }
    out
}

/// ServiceEntries plus DestinationRules in the sync namespace.
async fn count_objects(cluster: &TestCluster) -> usize {
    let se: Api<ServiceEntry> = Api::namespaced(cluster.client(), "federator-sync");
    let dr: Api<DestinationRule> = Api::namespaced(cluster.client(), "federator-sync");
    let params = ListParams::default();
    let ses = se
        .list_metadata(&params)
        .await
        .map(|l| l.items.len())
        .unwrap_or(0);
    let drs = dr
        .list_metadata(&params)
        .await
        .map(|l| l.items.len())
        .unwrap_or(0);
    ses + drs
}

/// Waits until federator has written nothing for a second: the last propagation reached every
/// cluster, so the restart that follows inherits no work in flight.
async fn settle(port: u16) {
    let mut last = metric(port, "federator_writes_total").await;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = metric(port, "federator_writes_total").await;
        if now == last {
            return;
        }
        last = now;
    }
}

/// One of the process's memory figures in `/proc/<pid>/status` (`VmRSS`, `RssAnon`,
/// `RssFile`), in MiB.
fn rss_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}
