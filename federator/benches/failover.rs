//! Live benchmark on real API servers: failover time of two `federator` replicas. Each round
//! kills the leader with SIGKILL, changes a cluster at the same instant, and measures until
//! the change is written by the new leader (the first write of its term); the killed replica
//! is then started again as a follower. The floor is the lease duration: a follower may not
//! take over before the lease it last saw has run out.
//!
//! Run: `cargo bench -p federator --bench failover` (20 kills; `FEDERATOR_BENCH_KILLS`
//! overrides). Under `cargo test` it runs 2 kills.

// A failed fixture or assertion should stop a benchmark loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Child;
use std::time::{Duration, Instant};

use federator::istio::ServiceEntry;
use futures::StreamExt;
use kube::Api;
use kube::runtime::watcher;
use testenv::TestEnv;

mod common;
use common::{
    add_host, federator_run, free_port, get, metric, prepare_cluster, register_clusters, wait_for,
};

const CLUSTERS: [&str; 3] = ["config", "east", "west"];
/// The lease of the benchmark (and the floor of a takeover).
const LEASE: Duration = Duration::from_secs(3);

struct Replica {
    child: Child,
    port: u16,
}

fn spawn(env: &TestEnv, identity: &str) -> Replica {
    let port = free_port();
    let child = federator_run(env, port)
        .args(["--no-dns", "--identity", identity, "--probe-interval", "1s"])
        .args(["--lease-duration", "3s", "--renew-deadline", "2s"])
        .args(["--retry-period", "500ms"])
        .spawn()
        .unwrap();
    Replica { child, port }
}

async fn leads(replica: &Replica) -> bool {
    metric(replica.port, "federator_leader").await == 1.0
}

/// Which replica leads, once one does.
async fn the_leader(replicas: &[Replica]) -> usize {
    let start = Instant::now();
    loop {
        for (i, r) in replicas.iter().enumerate() {
            if leads(r).await {
                return i;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(120), "nobody leads");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::main]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let kills: usize = if bench {
        std::env::var("FEDERATOR_BENCH_KILLS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20)
    } else {
        2
    };
    let env = TestEnv::start(&CLUSTERS).await.unwrap();
    for (i, name) in CLUSTERS.iter().enumerate() {
        prepare_cluster(env.cluster(name), i).await;
    }
    env.cluster("east").create_namespace("bench").await.unwrap();
    for i in 0..20 {
        add_host(env.cluster("east"), &format!("svc-{i}")).await;
    }
    register_clusters(&env, &CLUSTERS).await;
    let mut replicas = vec![spawn(&env, "r-0"), spawn(&env, "r-1")];
    for r in &replicas {
        wait_for(|| async { get(r.port, "/readyz").await.0 == 200 }).await;
    }
    let west: Api<ServiceEntry> = Api::namespaced(env.cluster("west").client(), "federator-sync");
    let mut failovers = Vec::new();
    for round in 0..kills {
        let leader = the_leader(&replicas).await;
        let host = format!("late-{round}");
        let name = format!("prod.{host}.global");
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let mut written = watcher::watcher(west.clone(), config).boxed();
        // The watch is established before the kill: its first event is the initial list.
        while !matches!(written.next().await, Some(Ok(watcher::Event::InitDone))) {}
        let killed = Instant::now();
        replicas[leader].child.kill().unwrap();
        let _ = replicas[leader].child.wait();
        add_host(env.cluster("east"), &host).await;
        loop {
            if let Some(Ok(watcher::Event::Apply(_))) = written.next().await {
                break;
            }
        }
        failovers.push(killed.elapsed());
        // Back to two replicas: the killed one starts again, as a follower.
        replicas[leader] = spawn(&env, &format!("r-{leader}-{round}"));
        let r = &replicas[leader];
        wait_for(|| async { get(r.port, "/readyz").await.0 == 200 }).await;
    }
    for r in &mut replicas {
        let _ = r.child.kill();
        let _ = r.child.wait();
    }
    failovers.sort();
    let pct = |p: f64| failovers[((failovers.len() as f64 - 1.0) * p).round() as usize];
    println!("| kills | {kills} |");
    println!("| lease duration (floor) | {:.2} s |", LEASE.as_secs_f64());
    println!(
        "| failover p50 (leader killed -> the change written by the new leader) | {:.2} s |",
        pct(0.5).as_secs_f64()
    );
    println!("| failover p99 | {:.2} s |", pct(0.99).as_secs_f64());
    println!(
        "| failover min / max | {:.2} s / {:.2} s |",
        failovers[0].as_secs_f64(),
        failovers[failovers.len() - 1].as_secs_f64()
    );
    println!(
        "| target | under {:.2} s (lease + 1 s) |",
        (LEASE + Duration::from_secs(1)).as_secs_f64()
    );
}
