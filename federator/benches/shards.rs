//! Clusters sharded across replicas through a real etcd: the simulated fleet's clusters
//! (the in-process sources of the fleet benchmark) spread over 1, 2 and 3 replicas, each a
//! process of its own running the sharding code `federator run --leader-election shard`
//! runs: membership, claims, publishing its clusters' objects, following the others'.
//!
//! Each replica builds the objects of the clusters it owns (as its watchers would), claims
//! and publishes them, follows the others' until its registry holds every cluster, then
//! makes the first writer pass for its own clusters. Then EndpointSlice changes are made,
//! each by its cluster's owner, and every replica waits for the others'. Reported per run:
//! the slowest replica's convergence and writers' first pass, the largest RSS, what each
//! replica exchanged with etcd, and the etcd bytes one change costs.
//!
//! Parameters (environment): `SHARDS_CLUSTERS` (default 200), `SHARDS_IDENTITIES` (default
//! 4,000, each in 3 clusters), `SHARDS_REPLICAS` (default `1,2,3`), `SHARDS_CHANGES`
//! (default 60). Without `--bench` (under `cargo test`) it runs a small fleet as a smoke
//! test.
//!
//! Run: `cargo bench -p federator --bench shards`

// A failed fixture or assertion should stop a benchmark loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use federator::ingest::{self, IngestConfig};
use federator::leader::ElectionTiming;
use federator::model::ClusterName;
use federator::registry::{Delta, Registry, RegistryConfig};
use federator::render::RenderOptions;
use federator::shard::claims::{self, ClaimInputs, ClaimOptions, Claimed, Writing};
use federator::shard::follow::{SharedUpdate, follow_shared};
use federator::shard::membership::{MemberOptions, Membership};
use federator::shard::objects::Publisher;
use federator::state::etcd::{EtcdClient, EtcdOptions, EtcdTraffic};
use federator_core::planner::shards;
use tokio::sync::{mpsc, watch};

mod fleet_model;
mod fleet_sinks;
use fleet_model::{
    Shape, cluster_name, cluster_objects, clusters_of, endpoint_slice, rss_mib, upsert,
};
use fleet_sinks::{Sink, writer_pass};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn shape(smoke: bool) -> Shape {
    Shape {
        clusters: env_usize("SHARDS_CLUSTERS", if smoke { 12 } else { 200 }),
        identities: env_usize("SHARDS_IDENTITIES", if smoke { 60 } else { 4_000 }),
        spread: 3,
        endpoints: 3,
        deltas: env_usize("SHARDS_CHANGES", if smoke { 6 } else { 60 }),
    }
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    if let Ok(replica) = std::env::var("SHARDS_CHILD") {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(replica_main(shape(smoke), replica));
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let env = runtime.block_on(testenv::TestEnv::start(&[])).unwrap();
    let replicas: Vec<usize> = std::env::var("SHARDS_REPLICAS")
        .unwrap_or_else(|_| if smoke { "1,2".into() } else { "1,2,3".into() })
        .split(',')
        .map(|s| s.trim().parse().expect("SHARDS_REPLICAS: numbers"))
        .collect();
    let shape = shape(smoke);
    println!(
        "{} clusters, {} identities in 3 clusters each, {} EndpointSlice changes",
        shape.clusters, shape.identities, shape.deltas
    );
    println!(
        "| replicas | clusters each watches | converged (slowest) | writers' first pass (slowest) | RSS (largest) | etcd per replica to converge: sent / received (largest) | one change: bytes sent by its owner | one change: bytes received by each other replica |"
    );
    println!("|{}", " --- |".repeat(8));
    for count in replicas {
        run(&env.etcd_endpoint(), count);
    }
}

/// One run: `count` replica processes under a prefix of their own.
fn run(endpoint: &str, count: usize) {
    let prefix = format!("/bench-{count}/");
    let mut children: Vec<(Child, BufReader<ChildStdout>)> = (0..count)
        .map(|i| {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args(std::env::args().skip(1))
                .env("SHARDS_CHILD", format!("replica-{i}"))
                .env("SHARDS_ENDPOINT", endpoint)
                .env("SHARDS_PREFIX", &prefix)
                .env("SHARDS_MEMBERS", count.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let out = BufReader::new(child.stdout.take().unwrap());
            (child, out)
        })
        .collect();
    let converged: Vec<BTreeMap<String, f64>> = children
        .iter_mut()
        .map(|(_, out)| read_report(out, "converged"))
        .collect();
    for (child, _) in &mut children {
        writeln!(child.stdin.as_mut().unwrap(), "go").unwrap();
    }
    let done: Vec<BTreeMap<String, f64>> = children
        .iter_mut()
        .map(|(_, out)| read_report(out, "done"))
        .collect();
    for (mut child, _) in children {
        assert!(child.wait().unwrap().success());
    }
    let max = |reports: &[BTreeMap<String, f64>], key: &str| {
        reports.iter().map(|r| r[key]).fold(0.0, f64::max)
    };
    let min = |reports: &[BTreeMap<String, f64>], key: &str| {
        reports.iter().map(|r| r[key]).fold(f64::INFINITY, f64::min)
    };
    let changes: f64 = done.iter().map(|r| r["changes"]).sum();
    let sent: f64 = done.iter().map(|r| r["sent"]).sum();
    let received = done
        .iter()
        .map(|r| r["received"] / r["received_changes"].max(1.0))
        .fold(0.0, f64::max);
    let received = if count > 1 {
        format!("{received:.0} B")
    } else {
        "-".to_owned()
    };
    println!(
        "| {count} | {:.0}-{:.0} | {:.2} s | {:.2} s | {:.0} MiB | {:.1} / {:.1} MiB | {:.0} B | {received} |",
        min(&converged, "owned"),
        max(&converged, "owned"),
        max(&converged, "converge_ms") / 1000.0,
        max(&converged, "writers_ms") / 1000.0,
        max(&converged, "rss_mib"),
        max(&converged, "sent") / (1024.0 * 1024.0),
        max(&converged, "received") / (1024.0 * 1024.0),
        sent / changes.max(1.0),
    );
}

/// Reads lines until one starts with `word`; its `key=value` pairs.
fn read_report(out: &mut BufReader<ChildStdout>, word: &str) -> BTreeMap<String, f64> {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "replica ended");
        if let Some(rest) = line.trim().strip_prefix(word) {
            return rest
                .split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.parse().unwrap()))
                .collect();
        }
    }
}

/// The cluster change `j` is made in, and by which identity's slice.
fn change(shape: Shape, j: usize) -> (usize, usize) {
    let c = (j * 7) % shape.clusters;
    let identities: Vec<usize> = (0..shape.identities)
        .filter(|i| clusters_of(shape, *i).any(|k| k == c))
        .collect();
    (c, identities[j % identities.len()])
}

/// Bytes sent and received with etcd so far, every call.
fn bytes(traffic: &EtcdTraffic) -> (u64, u64) {
    const CALLS: [&str; 6] = [
        "Range",
        "Txn",
        "Watch",
        "LeaseGrant",
        "LeaseKeepAlive",
        "LeaseRevoke",
    ];
    CALLS.iter().fold((0, 0), |(s, r), call| {
        (s + traffic.sent(call), r + traffic.received(call))
    })
}

/// One replica: joins, converges, writes, then makes its share of the changes.
async fn replica_main(shape: Shape, replica: String) {
    let var = |name: &str| std::env::var(name).unwrap();
    let prefix = var("SHARDS_PREFIX");
    let wanted: usize = var("SHARDS_MEMBERS").parse().unwrap();
    let traffic = EtcdTraffic::default();
    let client = EtcdClient::new(&EtcdOptions {
        endpoints: vec![var("SHARDS_ENDPOINT")],
        prefix: prefix.clone(),
        ca_file: None,
        client_cert: None,
    })
    .unwrap()
    .counted(traffic.clone());
    let timing = ElectionTiming::default();
    let member = MemberOptions {
        replica: replica.clone(),
        settings: BTreeMap::new(),
        timing,
    };
    let membership = Membership::join(client.clone(), &prefix, member)
        .await
        .unwrap();
    let mut members = membership.members.clone();
    members
        .wait_for(|m| m.replicas.len() == wanted)
        .await
        .unwrap();
    let replicas = members.borrow().replicas.clone();
    let started = Instant::now();
    let names: Vec<ClusterName> = (0..shape.clusters)
        .map(|c| ClusterName::new(cluster_name(c)))
        .collect();
    let owner = |c: usize| shards::owner(&cluster_name(c), replicas.iter().map(String::as_str));
    let owned: Vec<usize> = (0..shape.clusters)
        .filter(|c| owner(*c) == Some(replica.as_str()))
        .collect();

    let (_clusters_tx, clusters) = watch::channel(names.iter().cloned().collect());
    let (writing_tx, writing) = watch::channel(Writing::default());
    let (claimed_tx, mut claimed) = watch::channel(Claimed::default());
    let options = ClaimOptions {
        replica: replica.clone(),
        prefix: prefix.clone(),
        lease: membership.lease(),
        retry: timing.retry(),
    };
    let inputs = ClaimInputs {
        members: membership.members.clone(),
        clusters,
        writing,
    };
    tokio::spawn(claims::run(client.clone(), options, inputs, claimed_tx));
    let local: BTreeSet<ClusterName> = owned.iter().map(|c| names[*c].clone()).collect();
    let (_local_tx, local_rx) = watch::channel(local);
    let (tx, mut rx) = mpsc::channel(4096);
    tokio::spawn(follow_shared(client.clone(), prefix.clone(), local_rx, tx));

    let mut registry = Registry::new(RegistryConfig {
        max_hosts_per_cluster: usize::MAX,
        ..RegistryConfig::default()
    });
    for name in &names {
        registry.apply(federator::fixtures::cluster(name.as_str()));
    }
    let mut publisher = Publisher::new(client.clone(), &replica, membership.lease(), &prefix);
    let config = IngestConfig::default();
    for c in &owned {
        cluster_objects(shape, *c, &config, |delta| {
            publisher.record(&delta);
            registry.apply(delta);
        });
    }
    let mut published = BTreeSet::new();
    let mut marks = BTreeSet::new();
    let mut batch = Vec::new();
    loop {
        let now = claimed.borrow_and_update().clone();
        writing_tx.send_replace(Writing {
            generation: now.generation,
            clusters: now.writable.clone(),
        });
        for cluster in &now.writable {
            if published.insert(cluster.clone()) {
                publisher
                    .publish(cluster, now.revisions[cluster])
                    .await
                    .unwrap();
            }
        }
        if marks.len() == shape.clusters && registry.len() == shape.identities {
            break;
        }
        tokio::select! {
            changed = claimed.changed() => changed.unwrap(),
            received = rx.recv_many(&mut batch, 1024) => {
                assert!(received > 0, "following ended");
                for update in batch.drain(..) {
                    match update {
                        SharedUpdate::Delta(delta) => {
                            registry.apply(*delta);
                        }
                        SharedUpdate::Listed(cluster) => {
                            marks.insert(cluster);
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    let converge = started.elapsed();
    let (sent, received) = bytes(&traffic);
    let view = registry.publish();
    let started = Instant::now();
    let render = RenderOptions::default();
    let sinks: Vec<Sink> = owned
        .iter()
        .map(|c| {
            let mut sink = Sink::default();
            writer_pass(&view, &names[*c], &render, &mut sink, None);
            sink
        })
        .collect();
    let writers = started.elapsed();
    drop(view);
    println!(
        "converged owned={} converge_ms={} writers_ms={} rss_mib={:.1} sent={sent} received={received}",
        owned.len(),
        converge.as_millis(),
        writers.as_millis(),
        rss_mib("VmRSS:"),
    );

    // The changes, once every replica converged.
    let go = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).unwrap();
        line
    });
    assert_eq!(go.await.unwrap().trim(), "go");
    let (sent_before, received_before) = bytes(&traffic);
    let mine: Vec<usize> = (0..shape.deltas)
        .filter(|j| owner(change(shape, *j).0) == Some(replica.as_str()))
        .collect();
    for j in &mine {
        let (c, i) = change(shape, *j);
        let slice = endpoint_slice(shape, c, i, shape.endpoints - 1);
        let delta = upsert(&cluster_name(c), ingest::endpoint_slice(&slice).map(Some));
        publisher.record(&delta);
        registry.apply(delta);
        assert!(publisher.flush().await.is_empty());
    }
    let (sent_after, _) = bytes(&traffic);
    // Everyone else's changes.
    let expected = shape.deltas - mine.len();
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen < expected {
        let left = deadline.saturating_duration_since(Instant::now());
        let received = tokio::time::timeout(left, rx.recv_many(&mut batch, 1024))
            .await
            .expect("every other replica's changes within 60 s");
        assert!(received > 0);
        for update in batch.drain(..) {
            if let SharedUpdate::Delta(delta) = update
                && matches!(
                    *delta,
                    Delta::Upsert(_, federator::model::Object::EndpointSlice(_))
                )
            {
                registry.apply(*delta);
                seen += 1;
            }
        }
    }
    let (_, received_after) = bytes(&traffic);
    println!(
        "done changes={} sent={} received={} received_changes={expected}",
        mine.len(),
        sent_after - sent_before,
        received_after - received_before,
    );
    std::hint::black_box(&sinks);
    let _ = membership.leave().await;
}
