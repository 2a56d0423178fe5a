//! Running federator against the test environment's real API servers, the way a user would:
//! clusters registered through labelled Secrets in the config cluster.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use federator::istio::ServiceEntry;
use federator::runtime::{Listeners, RunOptions, run};
use k8s_openapi::ByteString;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use testenv::objects::{self, Ep};
use testenv::{TestCluster, TestEnv};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Generous: tests wait for convergence, they never time it.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// Namespace of the cluster Secrets.
pub const NAMESPACE: &str = "federator";

/// Region and gateway address each test cluster gets.
pub fn topology(cluster: &str) -> (&'static str, &'static str) {
    match cluster {
        "east" => ("us-east-1", "198.51.100.1"),
        "west" => ("us-west-2", "198.51.100.2"),
        _ => ("eu-central-1", "198.51.100.3"),
    }
}

/// Gives a cluster a node (for locality) and a gateway address.
pub async fn prepare(cluster: &TestCluster) {
    let (region, gateway) = topology(cluster.name());
    cluster
        .apply(&objects::node(
            "node-1",
            region,
            &format!("{region}a"),
            "10.0.0.1",
        ))
        .await
        .unwrap();
    cluster.set_gateway_address(gateway).await.unwrap();
}

/// A Secret registering `clusters` (one data key each) in the config cluster.
pub fn cluster_secret(name: &str, clusters: &[(&str, String)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NAMESPACE.into()),
            labels: Some(BTreeMap::from([(
                "federator.io/cluster".into(),
                "true".into(),
            )])),
            ..Default::default()
        },
        data: Some(
            clusters
                .iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.clone().into_bytes())))
                .collect(),
        ),
        ..Default::default()
    }
}

/// Name of the least-privilege user of [`kubeconfig_without_endpoint_slices`] (a
/// ServiceAccount in `default`), of its ClusterRole and of their binding.
const READER: &str = "federator-reader";

/// The reader's ClusterRole: every verb on every resource of the API groups federator reads
/// and writes (core, apps, Argo, its own, Istio's), and `discovery.k8s.io` only `with_slices`.
fn reader_role(with_slices: bool) -> ClusterRole {
    let mut groups = vec![
        "",
        "apps",
        "argoproj.io",
        "federator.io",
        "networking.istio.io",
        "multicluster.x-k8s.io",
        "about.k8s.io",
    ];
    if with_slices {
        groups.push("discovery.k8s.io");
    }
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(READER.into()),
            ..Default::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(groups.into_iter().map(String::from).collect()),
            resources: Some(vec!["*".into()]),
            verbs: vec!["*".into()],
            ..Default::default()
        }]),
        ..Default::default()
    }
}

/// A kubeconfig for `cluster` whose user may do everything federator does there except read
/// EndpointSlices (a least-privilege role that forgot them): a ServiceAccount bound to
/// [`reader_role`], with a real token from the TokenRequest API.
pub async fn kubeconfig_without_endpoint_slices(cluster: &TestCluster) -> String {
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(READER.into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    cluster.apply(&account).await.unwrap();
    cluster.apply(&reader_role(false)).await.unwrap();
    let binding = ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(READER.into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: READER.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: READER.into(),
            namespace: Some("default".into()),
            ..Default::default()
        }]),
    };
    cluster.apply(&binding).await.unwrap();
    token_kubeconfig(cluster, "default", READER).await
}

/// The cluster's admin kubeconfig with the admin token swapped for a fresh token (from the
/// TokenRequest API) of ServiceAccount `namespace/account`.
pub async fn token_kubeconfig(cluster: &TestCluster, namespace: &str, account: &str) -> String {
    let accounts: Api<ServiceAccount> = Api::namespaced(cluster.client(), namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let token = accounts
        .create_token_request(account, &Default::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let admin = cluster.kubeconfig_text().unwrap();
    admin.replace(
        &format!("token: {}", admin_token(cluster)),
        &format!("token: {token}"),
    )
}

/// The admin token of the cluster's kubeconfig.
pub fn admin_token(cluster: &TestCluster) -> String {
    let text = cluster.kubeconfig_text().unwrap();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .unwrap()
        .to_owned()
}

/// Lets the user of [`kubeconfig_without_endpoint_slices`] read EndpointSlices after all.
pub async fn grant_endpoint_slices(cluster: &TestCluster) {
    cluster.apply(&reader_role(true)).await.unwrap();
}

/// Registers each named cluster of `env` through its own Secret in the config cluster.
pub async fn register(env: &TestEnv, clusters: &[&str]) {
    let config = env.cluster("config");
    config.create_namespace(NAMESPACE).await.unwrap();
    for name in clusters {
        let kubeconfig = env.cluster(name).kubeconfig_text().unwrap();
        config
            .apply(&cluster_secret(
                &format!("cluster-{name}"),
                &[(name, kubeconfig)],
            ))
            .await
            .unwrap();
    }
}

/// Starts the test clusters `names`, each with a node and a gateway address, and registers
/// `registered` of them through their own Secrets: the fleet most end-to-end tests begin with.
pub async fn fleet(names: &[&str], registered: &[&str]) -> TestEnv {
    let env = TestEnv::start(names).await.unwrap();
    for c in env.clusters() {
        prepare(c).await;
    }
    register(&env, registered).await;
    env
}

/// Writes what a cluster's controllers would hold for a workload: Deployment, Service with
/// an HTTP port, EndpointSlice with `ready` endpoints (and `not_ready` failing ones).
pub async fn deploy(cluster: &TestCluster, name: &str, ready: usize, not_ready: usize) {
    let (region, _) = topology(cluster.name());
    cluster.create_namespace("sample").await.unwrap();
    cluster
        .apply(&objects::deployment("sample", name, name, "prod"))
        .await
        .unwrap();
    cluster
        .apply(&objects::service("sample", name, &[("http", 8080)]))
        .await
        .unwrap();
    scale(cluster, name, ready, not_ready, region).await;
}

/// Sets a workload's EndpointSlice to `ready` ready and `not_ready` unready endpoints.
pub async fn scale(
    cluster: &TestCluster,
    name: &str,
    ready: usize,
    not_ready: usize,
    region: &str,
) {
    let ips: Vec<String> = (0..ready + not_ready)
        .map(|i| format!("10.1.0.{}", i + 10))
        .collect();
    let zone = format!("{region}a");
    let eps: Vec<Ep<'_>> = ips
        .iter()
        .enumerate()
        .map(|(i, ip)| Ep {
            ip,
            node: "node-1",
            zone: &zone,
            ready: i < ready,
        })
        .collect();
    cluster
        .apply(&objects::endpoint_slice(
            "sample",
            name,
            &[("http", 8080)],
            &eps,
        ))
        .await
        .unwrap();
}

/// A federator running in this process against the config cluster.
pub struct Federator {
    task: Option<JoinHandle<Result<(), federator::runtime::RunError>>>,
    stop: Option<oneshot::Sender<()>>,
    /// Where /metrics and friends are served.
    pub addr: SocketAddr,
    /// Where DNS is served (UDP and TCP).
    pub dns: SocketAddr,
    /// Where the gRPC registry API is served.
    pub grpc: SocketAddr,
}

impl Federator {
    /// Starts federator with test-friendly timings; clusters unreachable for `stale_after`
    /// are withdrawn (`--on-unreachable withdraw`).
    pub async fn start(env: &TestEnv, stale_after: Duration) -> Self {
        Self::start_with(env, |o| {
            o.stale_after = stale_after;
            o.on_unreachable = federator::clusters::health::OnUnreachable::Withdraw;
        })
        .await
    }

    /// Starts federator with test-friendly timings, changed by `configure`.
    pub async fn start_with(env: &TestEnv, configure: impl FnOnce(&mut RunOptions)) -> Self {
        let mut options = Self::options();
        configure(&mut options);
        let federator = Self::launch(env, options).await;
        eventually("federator ready", || async {
            federator.get("/readyz").await.0 == 200
        })
        .await;
        federator
    }

    /// Test-friendly settings: fast probes, no resync or stale-after within a test, a
    /// cluster removed as soon as its Secret is gone.
    pub fn options() -> RunOptions {
        RunOptions {
            namespace: NAMESPACE.into(),
            removal_grace: Duration::ZERO,
            instance: format!("{NAMESPACE}.federator"),
            stale_after: Duration::from_secs(600),
            initial_sync_timeout: Duration::from_secs(20),
            probe_interval: Duration::from_millis(250),
            resync_period: Duration::from_secs(3600),
            ..RunOptions::default()
        }
    }

    /// Starts federator with exactly `options`, without waiting for it to be ready.
    pub async fn launch(env: &TestEnv, options: RunOptions) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let dns_sockets = federator_dns::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let dns = dns_sockets.udp.local_addr().unwrap();
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc_addr = grpc.local_addr().unwrap();
        let listeners = Listeners {
            http: listener,
            dns: Some(dns_sockets),
            grpc: Some(grpc),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let client = env.cluster("config").client();
        let task = tokio::spawn(run(options, client, listeners, async move {
            let _ = stopped.await;
        }));
        Self {
            task: Some(task),
            stop: Some(stop),
            addr,
            dns,
            grpc: grpc_addr,
        }
    }

    /// What the gRPC API says of `cluster`.
    pub async fn cluster_status(&self, cluster: &str) -> federator::api::pb::Cluster {
        let mut client = federator::api::pb::registry_client::RegistryClient::connect(format!(
            "http://{}",
            self.grpc
        ))
        .await
        .unwrap();
        let request = federator::api::pb::ClusterStatusRequest {
            cluster: cluster.into(),
        };
        let mut clusters = client
            .cluster_status(request)
            .await
            .unwrap()
            .into_inner()
            .clusters;
        assert_eq!(clusters.len(), 1, "{clusters:?}");
        clusters.remove(0)
    }

    /// Status and body of a GET.
    pub async fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path).await
    }

    /// The sum of a metric's samples whose label set contains every `labels` pair.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let (_, body) = self.get("/metrics").await;
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.split(['{', ' ']).next() == Some(name))
            .filter(|l| {
                labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Waits until the writer of each of `clusters` finished a full pass (read everything,
    /// compared, converged).
    pub async fn fully_reconciled(&self, clusters: &[&str]) {
        eventually(&format!("{clusters:?} fully reconciled"), || async {
            for cluster in clusters {
                let labels = [("cluster", *cluster)];
                if self
                    .metric("federator_full_reconciles_total", &labels)
                    .await
                    < 1.0
                {
                    return false;
                }
            }
            true
        })
        .await;
    }

    /// Waits until federator has stopped writing to `cluster` (its write count holds still
    /// for a second), so a test that records writes from now on sees only what follows.
    pub async fn settled(&self, cluster: &str) {
        let labels = [("cluster", cluster)];
        let writes = || self.metric("federator_writes_total", &labels);
        let mut last = writes().await;
        let start = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = writes().await;
            if now == last {
                return;
            }
            last = now;
            assert!(
                start.elapsed() < DEADLINE,
                "writes to {cluster} never settled"
            );
        }
    }

    /// Stops federator and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Federator {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Status and body of a GET to `addr` (status 0 when it does not answer within seconds).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let limit = Duration::from_secs(2);
    let connect = tokio::net::TcpStream::connect(addr);
    let Ok(Ok(mut stream)) = tokio::time::timeout(limit, connect).await else {
        return (0, String::new());
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: federator\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return (0, String::new());
    }
    let mut response = String::new();
    let read = stream.read_to_string(&mut response);
    if tokio::time::timeout(limit, read).await.is_err() {
        return (0, String::new());
    }
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Runs `dig` against federator's DNS server; returns its status word (`NOERROR`,
/// `NXDOMAIN`, `REFUSED`, ...) and the answer section's values.
pub async fn dig(server: SocketAddr, name: &str, extra: &[&str]) -> (String, Vec<String>) {
    let output = tokio::process::Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args([
            "-p",
            &server.port().to_string(),
            name,
            "+noall",
            "+answer",
            "+comments",
            "+tries=1",
            "+time=5",
        ])
        .args(extra)
        .output()
        .await
        .expect("dig (Debian package dnsutils) must be installed");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let status = text
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("NO ANSWER")
        .to_owned();
    let answers = text
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().last().map(str::to_owned))
        .collect();
    (status, answers)
}

/// Whether an Event in `namespace` of `cluster` is about object `name`, has `reason` and a
/// message containing `words`.
pub async fn has_event(
    cluster: &TestCluster,
    namespace: &str,
    name: &str,
    reason: &str,
    words: &str,
) -> bool {
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(cluster.client(), namespace);
    events
        .list(&Default::default())
        .await
        .map(|list| {
            list.items.iter().any(|e| {
                e.involved_object.name.as_deref() == Some(name)
                    && e.reason.as_deref() == Some(reason)
                    && e.message.as_deref().unwrap_or_default().contains(words)
            })
        })
        .unwrap_or(false)
}

/// Polls `check` until it holds or the deadline passes (then the test fails naming `what`).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < DEADLINE,
            "timed out after {DEADLINE:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The ServiceEntry federator wrote for `host` in a cluster, if any.
pub async fn service_entry(cluster: &TestCluster, host: &str) -> Option<ServiceEntry> {
    let api: Api<ServiceEntry> = Api::namespaced(cluster.client(), "federator-sync");
    api.get_opt(host).await.ok().flatten()
}

/// Endpoint addresses of a cluster's ServiceEntry for `host`, in its order (local pods, then
/// other clusters' gateways); empty when there is none.
pub async fn endpoints(cluster: &TestCluster, host: &str) -> Vec<String> {
    service_entry(cluster, host)
        .await
        .map(|se| se.spec.endpoints.into_iter().map(|e| e.address).collect())
        .unwrap_or_default()
}

/// The CRD of another project's kind (`group/v1alpha1`), schema-less as federator reads it,
/// with a status subresource: what a test cluster needs to hold such objects. A `k8s.io`
/// group is protected, so it carries the approval annotation such CRDs carry.
pub fn foreign_crd(group: &str, kind: &str, plural: &str, namespaced: bool) -> serde_json::Value {
    let mut metadata = serde_json::json!({"name": format!("{plural}.{group}")});
    if group.ends_with("k8s.io") {
        metadata["annotations"] = serde_json::json!({
            "api-approved.kubernetes.io": "https://github.com/kubernetes/enhancements/pull/1111"
        });
    }
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": metadata,
        "spec": {
            "group": group,
            "names": {"kind": kind, "listKind": format!("{kind}List"), "plural": plural, "singular": kind.to_lowercase()},
            "scope": if namespaced { "Namespaced" } else { "Cluster" },
            "versions": [{
                "name": "v1alpha1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                "subresources": {"status": {}},
            }],
        },
    })
}
