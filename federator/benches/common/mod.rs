//! Helpers of the live benchmarks: the config cluster's Secrets, the `federator` process's
//! HTTP endpoints, waiting.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use testenv::TestEnv;

/// Gives the `i`-th cluster of the benchmark a node (in `region-<i>`, `zone-<i>`) and a
/// gateway address.
pub async fn prepare_cluster(cluster: &testenv::TestCluster, i: usize) {
    cluster
        .apply(&testenv::objects::node(
            "node-1",
            &format!("region-{i}"),
            &format!("zone-{i}"),
            "10.0.0.1",
        ))
        .await
        .unwrap();
    cluster
        .set_gateway_address(&format!("198.51.100.{}", i + 1))
        .await
        .unwrap();
}

/// A host in namespace `bench` of `cluster`: Deployment `name` (identity `name`, env
/// `prod`), its Service with an HTTP port, and an EndpointSlice with one ready endpoint.
pub async fn add_host(cluster: &testenv::TestCluster, name: &str) {
    use testenv::objects::{self, Ep};
    cluster
        .apply(&objects::deployment("bench", name, name, "prod"))
        .await
        .unwrap();
    cluster
        .apply(&objects::service("bench", name, &[("http", 8080)]))
        .await
        .unwrap();
    let ep = [Ep {
        ip: "10.1.0.1",
        node: "node-1",
        zone: "zone-a",
        ready: true,
    }];
    cluster
        .apply(&objects::endpoint_slice(
            "bench",
            name,
            &[("http", 8080)],
            &ep,
        ))
        .await
        .unwrap();
}

/// Registers every cluster of `names` through its own Secret in the config cluster.
pub async fn register_clusters(env: &TestEnv, names: &[&str]) {
    let config = env.cluster("config");
    config.create_namespace("federator").await.unwrap();
    for name in names {
        let mut secret = Secret::default();
        secret.metadata.name = Some(format!("cluster-{name}"));
        secret.metadata.namespace = Some("federator".into());
        secret.metadata.labels =
            Some([("federator.io/cluster".to_owned(), "true".to_owned())].into());
        let kubeconfig = env.cluster(name).kubeconfig_text().unwrap();
        secret.data = Some([(name.to_string(), ByteString(kubeconfig.into_bytes()))].into());
        config.apply(&secret).await.unwrap();
    }
}

pub async fn wait_for<F, Fut>(mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "gave up waiting"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

pub async fn get(port: u16, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return (0, String::new());
    };
    let _ = s
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
    let mut response = String::new();
    let _ = s.read_to_string(&mut response).await;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (
        status,
        response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default(),
    )
}

pub async fn metric(port: u16, name: &str) -> f64 {
    let (_, body) = get(port, "/metrics").await;
    body.lines()
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub fn free_port() -> u16 {
    testenv::free_port().unwrap()
}

/// `federator run` against the config cluster of `env`, serving metrics on `port`, its log
/// in [`log_file`]; the caller adds flags and spawns it.
pub fn federator_run(env: &TestEnv, port: u16) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_federator"));
    command
        .args(["run", "--kubeconfig"])
        .arg(env.cluster("config").kubeconfig())
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .env(
            "FEDERATOR_LOG",
            std::env::var("FEDERATOR_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(log_file());
    command
}

/// federator's log, appended to `FEDERATOR_BENCH_LOG` (default: discarded).
pub fn log_file() -> Stdio {
    match std::env::var_os("FEDERATOR_BENCH_LOG") {
        Some(path) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map(Stdio::from)
            .unwrap_or(Stdio::null()),
        None => Stdio::null(),
    }
}
