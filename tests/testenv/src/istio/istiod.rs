//! A real istiod (`pilot-discovery discovery`) for one test cluster.
//!
//! What istiod needs outside a Kubernetes pod, learned by running it:
//! - `--kubeconfig` of its cluster (no `KUBERNETES_SERVICE_HOST`), `POD_NAMESPACE=istio-system`
//!   (its system namespace, which must exist), `CLUSTER_ID`/`--clusterID` (the name proxies send
//!   as `CLUSTER_ID` metadata and that multi-cluster configs use).
//! - Every listener on 127.0.0.1 and a free port: `--grpcAddr` (plaintext XDS, what the
//!   harness's Envoys use: plaintext XDS needs no authentication), `--secureGRPCAddr` (XDS and
//!   CA over mTLS), `--httpAddr` (debug endpoints and `/ready`), `--httpsAddr` (webhooks,
//!   `/validate`), `--monitoringAddr` (metrics), `--ctrlz_port` (ControlZ; its fixed default
//!   9876 clashes between two istiods).
//! - Plug-in CA: istiod signs with `./etc/cacerts/{ca-cert,ca-key,root-cert,cert-chain}.pem`
//!   relative to its working folder (`ROOT_CA_DIR`); when those four files are complete it
//!   does not look for the `cacerts` Secret, so the harness writes files only.
//! - `ISTIOD_CUSTOM_HOST=localhost`: its webhook certificate (signed by the cluster's
//!   intermediate, served with the chain) is then valid for `https://localhost:<port>`.
//! - Upstream Envoy lacks istio-proxy's filters, so `PILOT_ENABLE_METADATA_EXCHANGE=false`,
//!   `PILOT_ENABLE_ALPN_FILTER=false` and `PILOT_DISABLE_MX_ALPN=true`; the mesh config sets
//!   no default metrics provider (no `istio.stats` filter) and `enableTracing: false` (no
//!   zipkin cluster in the bootstrap).
//! - `PILOT_ENABLE_GATEWAY_API=false`: the clusters have no Gateway API CRDs.
//! - The cluster's network is the `topology.istio.io/network` label of `istio-system`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::http;
use super::pki::ClusterCa;
use crate::binaries::Binaries;
use crate::ports::free_port;
use crate::process::Process;
use crate::{TestCluster, TestEnvError};

/// The version proxies report as `ISTIO_VERSION` (istiod built from a pseudo-version reports
/// no release of its own; this is the release line of the pinned module).
pub const ISTIO_VERSION: &str = "1.31.0";

/// istiod's namespace.
pub const ISTIO_SYSTEM: &str = "istio-system";

const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// How to run an istiod.
#[derive(Debug)]
pub struct IstiodOptions {
    /// The cluster's network (label `topology.istio.io/network` on `istio-system`).
    pub network: String,
    /// The cluster's intermediate CA (plug-in CA).
    pub ca: ClusterCa,
    /// Turns on istiod's config analysis with status (`PILOT_ENABLE_ANALYSIS`,
    /// `PILOT_ENABLE_STATUS`): it then writes `status.validationMessages` on Istio objects.
    pub analysis: bool,
    /// More environment variables for istiod (override the harness's).
    pub env: Vec<(String, String)>,
}

impl IstiodOptions {
    /// Options for a cluster in `network` whose istiod signs with `ca`.
    pub fn new(network: &str, ca: ClusterCa) -> Self {
        Self {
            network: network.to_owned(),
            ca,
            analysis: false,
            env: Vec::new(),
        }
    }
}

/// istiod's loopback addresses.
#[derive(Debug, Clone, Copy)]
pub struct IstiodPorts {
    /// Plaintext XDS (gRPC).
    pub grpc: u16,
    /// XDS and CA over mTLS (gRPC).
    pub secure_grpc: u16,
    /// Debug endpoints and `/ready` (HTTP).
    pub http: u16,
    /// Webhooks (HTTPS, `/validate`).
    pub https: u16,
    /// Metrics (HTTP).
    pub monitoring: u16,
    /// ControlZ introspection (HTTP; its default 9876 would clash between istiods).
    pub ctrlz: u16,
}

/// A running istiod for one cluster; killed when dropped.
pub struct Istiod {
    pub(crate) cluster: String,
    pub(crate) network: String,
    pub(crate) client: kube::Client,
    pub(crate) ca: ClusterCa,
    pub(crate) binaries: Binaries,
    pub(crate) env_dir: PathBuf,
    dir: PathBuf,
    ports: IstiodPorts,
    process: Process,
}

impl std::fmt::Debug for Istiod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Istiod")
            .field("cluster", &self.cluster)
            .field("network", &self.network)
            .field("ports", &self.ports)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Istiod {
    /// Starts istiod for `cluster` and waits until `/ready` answers 200 (caches synced, CA
    /// and webhook certificate ready). Creates `istio-system` with the network label first.
    /// Its files are in `<env dir>/<cluster>-istiod/`, its log is
    /// `<env dir>/<cluster>-istiod.log`.
    pub async fn start(cluster: &TestCluster, opts: IstiodOptions) -> Result<Self, TestEnvError> {
        let binaries = Binaries::locate()?;
        binaries.pilot_discovery()?;
        let env_dir = cluster
            .kubeconfig()
            .parent()
            .map(Path::to_owned)
            .unwrap_or_default();
        let name = cluster.name().to_owned();
        let dir = env_dir.join(format!("{name}-istiod"));
        opts.ca.write_cacerts(&dir.join("etc/cacerts"))?;
        write_mesh_config(&dir)?;
        cluster.label_network(&opts.network).await?;
        let mut last = None;
        for _ in 0..3 {
            let ports = IstiodPorts {
                grpc: free_port()?,
                secure_grpc: free_port()?,
                http: free_port()?,
                https: free_port()?,
                monitoring: free_port()?,
                ctrlz: free_port()?,
            };
            let command = command(&binaries, cluster, &dir, &ports, &opts);
            let mut process = Process::spawn(
                &format!("istiod of cluster {name}"),
                command,
                &env_dir.join(format!("{name}-istiod.log")),
            )?;
            match wait_ready(&mut process, ports.http).await {
                Ok(()) => {
                    return Ok(Self {
                        cluster: name,
                        network: opts.network,
                        client: cluster.client(),
                        ca: opts.ca,
                        binaries,
                        env_dir,
                        dir,
                        ports,
                        process,
                    });
                }
                Err(err) if process.lost_port_race() => last = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last.unwrap_or_else(|| TestEnvError::Other("istiod did not start".into())))
    }

    /// The cluster's name (istiod's `CLUSTER_ID`).
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The cluster's network.
    pub fn network(&self) -> &str {
        &self.network
    }

    /// The cluster's intermediate CA, which also issues the harness's workload certificates.
    pub fn ca(&self) -> &ClusterCa {
        &self.ca
    }

    /// istiod's ports.
    pub fn ports(&self) -> IstiodPorts {
        self.ports
    }

    /// Plaintext XDS address (what Envoys' `xds-grpc` cluster points at).
    pub fn xds_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.grpc))
    }

    /// Debug/readiness address (`/ready`, `/debug/...`).
    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.http))
    }

    /// Webhook address (`https://localhost:<port>/validate`).
    pub fn webhook_port(&self) -> u16 {
        self.ports.https
    }

    /// istiod's working folder (with `etc/cacerts` and its mesh config).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// istiod's log file.
    pub fn log(&self) -> &Path {
        &self.process.log
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Resident memory of the process, in bytes (from `/proc`).
    pub fn rss_bytes(&self) -> Option<u64> {
        super::rss_bytes(self.process.id())
    }

    /// GETs one of istiod's debug endpoints (for example `/debug/syncz`,
    /// `/debug/configz`) and parses it as JSON.
    pub async fn debug(&self, path: &str) -> Result<serde_json::Value, TestEnvError> {
        let response = http::get(self.http_addr(), "localhost", path)
            .await
            .map_err(TestEnvError::Other)?;
        serde_json::from_str(&response.body).map_err(|e| {
            TestEnvError::Other(format!(
                "istiod {path}: not JSON ({e}): {}",
                truncate(&response.body)
            ))
        })
    }

    /// istiod's analysis messages on an Istio object (its `status.validationMessages`, for
    /// example `{"level": "ERROR", "type": {"code": "IST0101"}, ...}`); empty when there are
    /// none or the object is gone. Needs [`IstiodOptions::analysis`]; istiod analyses after
    /// a debounce, so poll.
    pub async fn validation_messages(
        &self,
        object: &serde_json::Value,
    ) -> Result<Vec<serde_json::Value>, TestEnvError> {
        let found = crate::json::get_json_with(&self.client, &self.cluster, object).await?;
        Ok(found
            .and_then(|o| o["status"]["validationMessages"].as_array().cloned())
            .unwrap_or_default())
    }

    /// Whether the process is still running (an error with its log's end if not).
    pub fn check_running(&mut self) -> Result<(), TestEnvError> {
        self.process.check_running()
    }

    /// Stops istiod now (dropping does the same).
    pub fn stop(&mut self) {
        self.process.stop();
    }
}

fn truncate(text: &str) -> &str {
    let end = text.char_indices().nth(2000).map_or(text.len(), |(i, _)| i);
    &text[..end]
}

/// Mesh config: Istio's defaults, minus what upstream Envoy cannot run.
fn write_mesh_config(dir: &Path) -> Result<(), TestEnvError> {
    let config = dir.join("etc/istio/config");
    std::fs::create_dir_all(&config)
        .map_err(TestEnvError::io(format!("creating {}", config.display())))?;
    let mesh = "\
# Written by federator-testenv: Istio's defaults, except what upstream Envoy cannot run.
trustDomain: cluster.local
# No zipkin cluster in the harness's bootstraps.
enableTracing: false
# Access logs to Envoy's stdout (its log file), with the built-in file logger.
accessLogFile: /dev/stdout
# No istio.stats filter (an istio-proxy extension).
defaultProviders: {}
enableAutoMtls: true
outboundTrafficPolicy:
  mode: ALLOW_ANY
";
    for (name, text) in [("mesh", mesh), ("meshNetworks", "networks: {}\n")] {
        let path = config.join(name);
        std::fs::write(&path, text)
            .map_err(TestEnvError::io(format!("writing {}", path.display())))?;
    }
    Ok(())
}

fn command(
    binaries: &Binaries,
    cluster: &TestCluster,
    dir: &Path,
    ports: &IstiodPorts,
    opts: &IstiodOptions,
) -> Command {
    let mut command = Command::new(&binaries.pilot_discovery_path);
    let addr = |port: u16| format!("127.0.0.1:{port}");
    command
        .current_dir(dir)
        .arg("discovery")
        .arg(format!("--kubeconfig={}", cluster.kubeconfig().display()))
        .arg(format!("--clusterID={}", cluster.name()))
        .arg("--meshConfig=./etc/istio/config/mesh")
        .arg("--networksConfig=./etc/istio/config/meshNetworks")
        .arg(format!("--grpcAddr={}", addr(ports.grpc)))
        .arg(format!("--secureGRPCAddr={}", addr(ports.secure_grpc)))
        .arg(format!("--httpAddr={}", addr(ports.http)))
        .arg(format!("--httpsAddr={}", addr(ports.https)))
        .arg(format!("--monitoringAddr={}", addr(ports.monitoring)))
        .arg("--ctrlz_address=127.0.0.1")
        .arg(format!("--ctrlz_port={}", ports.ctrlz))
        .arg("--domain=cluster.local")
        .arg("--keepaliveMaxServerConnectionAge=30m")
        .arg("--log_output_level=default:info")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("POD_NAMESPACE", ISTIO_SYSTEM)
        .env("POD_NAME", format!("istiod-{}", cluster.name()))
        .env("CLUSTER_ID", cluster.name())
        .env("REVISION", "default")
        .env("ISTIOD_CUSTOM_HOST", "localhost")
        .env("PILOT_CERT_PROVIDER", "istiod")
        .env("PILOT_ENABLE_METADATA_EXCHANGE", "false")
        .env("PILOT_ENABLE_ALPN_FILTER", "false")
        .env("PILOT_DISABLE_MX_ALPN", "true")
        .env("PILOT_ENABLE_GATEWAY_API", "false")
        .env("PILOT_ENABLE_GATEWAY_API_STATUS", "false")
        .env("PILOT_ENABLE_GATEWAY_API_DEPLOYMENT_CONTROLLER", "false")
        .env("PILOT_ENABLE_AMBIENT", "false")
        .env("GOMAXPROCS", "2");
    if opts.analysis {
        command
            .env("PILOT_ENABLE_ANALYSIS", "true")
            .env("PILOT_ENABLE_STATUS", "true");
    }
    for (key, value) in &opts.env {
        command.env(key, value);
    }
    command
}

async fn wait_ready(process: &mut Process, http_port: u16) -> Result<(), TestEnvError> {
    let started = Instant::now();
    let addr = SocketAddr::from(([127, 0, 0, 1], http_port));
    loop {
        process.check_running()?;
        if let Ok(response) = http::get(addr, "localhost", "/ready").await
            && response.status == 200
        {
            return Ok(());
        }
        process.not_ready_after(started, READY_TIMEOUT)?;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
