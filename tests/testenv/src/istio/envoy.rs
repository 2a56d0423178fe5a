//! Upstream Envoy processes standing in for istio-proxies (sidecars, gateways) and for
//! meshed backends.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::bootstrap::{self, ProxyKind};
use super::http::{self, HttpResponse};
use super::istiod::Istiod;
use super::sds::SdsServer;
use super::workload::Workload;
use crate::TestEnvError;
use crate::process::Process;

const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// One Envoy process: its bootstrap and log in the environment's folder, its admin API on a
/// free port of 127.0.0.1, killed when dropped.
#[derive(Debug)]
pub struct Envoy {
    workload: Workload,
    process: Process,
    admin: SocketAddr,
    bootstrap: PathBuf,
    sds: Option<SdsServer>,
}

impl Envoy {
    /// A sidecar of `workload` in `istiod`'s cluster and network, connected to istiod over
    /// ADS (plaintext gRPC), with the workload's certificate from a harness SDS server.
    ///
    /// It has no iptables: make it reachable with a `Sidecar` resource whose egress listener
    /// binds the workload's ip ([`super::objects::sidecar_egress`]), applied before this starts
    /// (or wait for the listener with [`Envoy::wait_for_listener`]).
    pub async fn sidecar(istiod: &Istiod, workload: &Workload) -> Result<Self, TestEnvError> {
        Self::proxy(ProxyKind::Sidecar, istiod, workload).await
    }

    /// An east-west gateway (router mode, `ROUTER_MODE: sni-dnat`, `REQUESTED_NETWORK_VIEW`
    /// its network) of `istiod`'s cluster. Give `workload` the labels the Gateway resource
    /// selects (see [`super::objects::eastwest_gateway_workload`]); its listeners come from
    /// a Gateway resource (binding `0.0.0.0:<port>` unless the server has `bind`).
    pub async fn gateway(istiod: &Istiod, workload: &Workload) -> Result<Self, TestEnvError> {
        Self::proxy(ProxyKind::Router, istiod, workload).await
    }

    async fn proxy(
        kind: ProxyKind,
        istiod: &Istiod,
        workload: &Workload,
    ) -> Result<Self, TestEnvError> {
        let cert = istiod
            .ca
            .workload(&workload.namespace, &workload.service_account)?;
        let sds = SdsServer::start(&cert).await?;
        let config = bootstrap::proxy(
            kind,
            workload,
            &istiod.cluster,
            &istiod.network,
            istiod.xds_addr(),
            sds.addr(),
        );
        Self::spawn(istiod, workload, config, Some(sds)).await
    }

    /// A backend standing in for a meshed pod of `istiod`'s cluster (only its CA is used):
    /// listens on `<workload ip>:<port>`, terminates Istio mTLS with the workload's certificate
    /// (client certificate required, verified against the mesh root, ALPN `istio` accepted)
    /// and answers every HTTP request with 200, body `<workload name>\n` and header
    /// `x-backend: <workload name>`.
    pub async fn backend(
        istiod: &Istiod,
        workload: &Workload,
        port: u16,
    ) -> Result<Self, TestEnvError> {
        let cert = istiod
            .ca
            .workload(&workload.namespace, &workload.service_account)?;
        let config = bootstrap::backend(workload, port, &cert, &format!("{}\n", workload.name));
        Self::spawn(istiod, workload, config, None).await
    }

    async fn spawn(
        istiod: &Istiod,
        workload: &Workload,
        config: Value,
        sds: Option<SdsServer>,
    ) -> Result<Self, TestEnvError> {
        let binary = istiod.binaries.envoy()?;
        let (env_dir, cluster) = (&istiod.env_dir, &istiod.cluster);
        let stem = format!("{cluster}-envoy-{}.{}", workload.name, workload.namespace);
        let bootstrap = env_dir.join(format!("{stem}.json"));
        let admin_file = env_dir.join(format!("{stem}.admin"));
        let text = serde_json::to_string_pretty(&config)
            .map_err(|e| TestEnvError::Other(format!("Envoy bootstrap: {e}")))?;
        std::fs::write(&bootstrap, text)
            .map_err(TestEnvError::io(format!("writing {}", bootstrap.display())))?;
        let _ = std::fs::remove_file(&admin_file);
        let level = std::env::var("FEDERATOR_ENVOY_LOG_LEVEL").unwrap_or_else(|_| "info".into());
        let mut command = Command::new(binary);
        command
            .arg("-c")
            .arg(&bootstrap)
            .arg("--admin-address-path")
            .arg(&admin_file)
            .arg("--disable-hot-restart")
            .arg("--concurrency")
            .arg("1")
            .arg("--drain-time-s")
            .arg("1")
            // Access logs reach the log file within a quarter second (tests read them).
            .arg("--file-flush-interval-msec")
            .arg("250")
            .arg("--log-level")
            .arg(level);
        let mut process = Process::spawn(
            &format!("Envoy {} of cluster {cluster}", workload.name),
            command,
            &env_dir.join(format!("{stem}.log")),
        )?;
        let started = Instant::now();
        let admin = loop {
            process.check_running()?;
            if let Ok(text) = std::fs::read_to_string(&admin_file)
                && let Ok(addr) = text.trim().parse::<SocketAddr>()
            {
                break addr;
            }
            process.not_ready_after(started, READY_TIMEOUT)?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // `/ready` says LIVE once the initial XDS fetch is done (or static config loaded).
        loop {
            process.check_running()?;
            if let Ok(response) = http::get(admin, "localhost", "/ready").await
                && response.status == 200
            {
                break;
            }
            process.not_ready_after(started, READY_TIMEOUT)?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self {
            workload: workload.clone(),
            process,
            admin,
            bootstrap,
            sds,
        })
    }

    /// The workload this Envoy stands in for.
    pub fn workload(&self) -> &Workload {
        &self.workload
    }

    /// The admin API's address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// The log file (Envoy's log and access log).
    pub fn log(&self) -> &Path {
        &self.process.log
    }

    /// The bootstrap file.
    pub fn bootstrap(&self) -> &Path {
        &self.bootstrap
    }

    /// The last lines of the log.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }

    /// Secret names Envoy asked the harness's SDS server for, and whether it had them.
    pub fn requested_secrets(&self) -> std::collections::BTreeMap<String, bool> {
        self.sds
            .as_ref()
            .map(SdsServer::requested)
            .unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Resident memory of the process, in bytes (from `/proc`).
    pub fn rss_bytes(&self) -> Option<u64> {
        super::rss_bytes(self.process.id())
    }

    /// Kills the process (SIGKILL), as when a backend dies.
    pub fn kill(&mut self) {
        self.process.stop();
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.process.check_running().is_ok()
    }

    /// GETs an admin path and parses the body as JSON.
    pub async fn admin_json(&self, path: &str) -> Result<Value, TestEnvError> {
        let response = http::get(self.admin, "localhost", path)
            .await
            .map_err(TestEnvError::Other)?;
        if response.status != 200 {
            return Err(TestEnvError::Other(format!(
                "Envoy {} admin {path}: status {}: {}",
                self.workload.name, response.status, response.body
            )));
        }
        serde_json::from_str(&response.body).map_err(|e| {
            TestEnvError::Other(format!(
                "Envoy {} admin {path}: not JSON: {e}",
                self.workload.name
            ))
        })
    }

    /// `/clusters?format=json`: every cluster with its hosts, their health, locality,
    /// priority and weight.
    pub async fn clusters(&self) -> Result<Value, TestEnvError> {
        self.admin_json("/clusters?format=json").await
    }

    /// `/config_dump?include_eds`: everything Envoy was configured with.
    pub async fn config_dump(&self) -> Result<Value, TestEnvError> {
        self.admin_json("/config_dump?include_eds").await
    }

    /// The value of counter or gauge `name`, 0 when Envoy has no such stat. istiod gives its
    /// clusters an `alt_stat_name` ending in `;`, so a cluster's stats are named like
    /// `cluster.outbound|8080||prod.demo.global;.ssl.handshake`.
    pub async fn stat(&self, name: &str) -> Result<u64, TestEnvError> {
        let escaped: String = name
            .chars()
            .flat_map(|c| {
                let special = "\\.|()[]{}^$*+?".contains(c);
                special.then_some('\\').into_iter().chain([c])
            })
            .collect();
        let json = self
            .admin_json(&format!(
                "/stats?format=json&filter=^{}$",
                percent_encode(&escaped)
            ))
            .await?;
        Ok(json["stats"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["name"] == name)
            .and_then(|s| s["value"].as_u64())
            .unwrap_or(0))
    }

    /// Polls admin `path` (JSON) until `check` accepts it, and returns that JSON. On timeout
    /// the error shows the last JSON (abridged) and the end of Envoy's log.
    pub async fn wait_for(
        &self,
        path: &str,
        timeout: Duration,
        mut check: impl FnMut(&Value) -> bool,
    ) -> Result<Value, TestEnvError> {
        let started = Instant::now();
        loop {
            let last = self.admin_json(path).await;
            if let Ok(json) = &last
                && check(json)
            {
                return last;
            }
            if started.elapsed() > timeout {
                let shown = match last {
                    Ok(json) => abridged(&json.to_string()),
                    Err(err) => err.to_string(),
                };
                return Err(TestEnvError::Other(format!(
                    "Envoy {}: {path} not as expected after {timeout:?}; last: {shown}\n\
                     secrets requested: {:?}\nlog {}:\n{}",
                    self.workload.name,
                    self.requested_secrets(),
                    self.log().display(),
                    self.log_tail()
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits until Envoy has a listener called `name` (istiod names them `<ip>_<port>`, or
    /// `0.0.0.0_<port>`).
    pub async fn wait_for_listener(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<(), TestEnvError> {
        self.wait_for("/listeners?format=json", timeout, |json| {
            json["listener_statuses"]
                .as_array()
                .is_some_and(|ls| ls.iter().any(|l| l["name"] == name))
        })
        .await
        .map(|_| ())
    }

    /// Sends `GET path` with `Host: host` to `<workload ip>:<port>` (a sidecar's egress
    /// listener, a gateway's or a backend's port).
    pub async fn get(&self, port: u16, host: &str, path: &str) -> Result<HttpResponse, String> {
        http::get(SocketAddr::from((self.workload.ip, port)), host, path).await
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        // SIGTERM first: Envoy then flushes its buffered access log.
        self.process.terminate(Duration::from_secs(2));
    }
}

/// The hosts of one cluster in `/clusters?format=json`.
pub fn cluster_hosts<'a>(clusters: &'a Value, name: &str) -> Vec<&'a Value> {
    clusters["cluster_statuses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["name"] == name)
        .flat_map(|c| c["host_statuses"].as_array().into_iter().flatten())
        .collect()
}

/// Percent-encodes everything but unreserved characters (for a query parameter).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn abridged(text: &str) -> String {
    if text.len() <= 3000 {
        return text.to_owned();
    }
    let end = (0..=3000)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}... ({} bytes)", &text[..end], text.len())
}
