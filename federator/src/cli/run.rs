use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use federator::clusters::health::OnUnreachable;
use federator::clusters::{Allowance, KubeconfigPolicy, SecretPolicy};
use federator::connect::ConnectSettings;
use federator::runtime::{Listeners, RunOptions, run};

use super::SettingsArgs;

/// `--on-unreachable`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum UnreachablePolicy {
    /// Keep the last-known backends and alert.
    Keep,
    /// Withdraw the backends after --stale-after.
    Withdraw,
}

/// `federator run`.
#[derive(Args, Debug)]
pub(super) struct RunArgs {
    /// kubeconfig of the config cluster (default: $KUBECONFIG, ~/.kube/config, or the
    /// in-cluster service account).
    #[arg(long, env = "FEDERATOR_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Context of that kubeconfig to use.
    #[arg(long)]
    context: Option<String>,
    /// Namespace of the cluster Secrets.
    #[arg(long, default_value = "federator", env = "FEDERATOR_NAMESPACE")]
    namespace: String,
    /// Label selector of cluster Secrets.
    #[arg(long, default_value = "federator.io/cluster=true")]
    secret_selector: String,
    /// How long a cluster may be unreachable before --on-unreachable applies.
    #[arg(long, default_value = "3m", value_parser = super::duration_at_least::<1000>)]
    stale_after: Duration,
    /// What happens to the backends of a cluster unreachable for longer than --stale-after:
    /// `keep` its last-known backends (an Event and the federator_cluster_state metric
    /// alert; outlier detection ejects endpoints that really fail), or `withdraw` them
    /// everywhere until it answers again.
    #[arg(long, value_enum, default_value = "keep")]
    on_unreachable: UnreachablePolicy,
    /// How long a cluster outlives its Secret: a Secret deleted and recreated within it
    /// (kubectl replace --force, a GitOps replace) changes nothing.
    #[arg(long, default_value = "2m", value_parser = super::duration_at_least::<0>)]
    removal_grace: Duration,
    /// When a cluster is unregistered, delete what this installation wrote in it (if it
    /// still answers).
    #[arg(long)]
    cleanup_on_remove: bool,
    /// This installation's name, set as label federator.io/instance on every object it
    /// writes; objects of another instance are never touched (default: <namespace>.federator).
    #[arg(long, env = "FEDERATOR_INSTANCE")]
    instance: Option<String>,
    /// Take federator objects without a federator.io/instance label (written by a federator
    /// older than the label) as this installation's, and label them on their next write.
    /// For upgrading a single installation; never when two ran against the same clusters.
    #[arg(long)]
    adopt_unlabelled: bool,
    /// How long start-up waits for every cluster to list its objects before writing.
    #[arg(long, default_value = "30s", value_parser = super::duration_at_least::<1000>)]
    initial_sync_timeout: Duration,
    /// How often each cluster's API server is probed.
    #[arg(long, default_value = "5s", value_parser = super::duration_at_least::<1000>)]
    probe_interval: Duration,
    /// How often every cluster is re-read and repaired even without changes.
    #[arg(long, default_value = "10m", value_parser = super::duration_at_least::<10000>)]
    resync_period: Duration,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:9090", env = "FEDERATOR_METRICS_ADDR")]
    metrics_addr: SocketAddr,
    /// Kubeconfig contents allowed in cluster Secrets beyond inline credentials, comma
    /// separated. Each widens what whoever can write a Secret in the namespace can do:
    /// `exec` runs their command in federator's pod, next to every cluster's credentials;
    /// `files` reads files of the pod (tokenFile, client-certificate, client-key,
    /// certificate-authority), its own service-account token included; `insecure` lets
    /// anyone on the path pose as the API server (insecure-skip-tls-verify); `http` sends
    /// credentials in clear text.
    #[arg(long, value_delimiter = ',')]
    allow_kubeconfig: Vec<Allowance>,
    /// Most clusters (keys) one Secret may register; the rest, by name, are ignored and
    /// reported.
    #[arg(long, default_value_t = federator::clusters::DEFAULT_MAX_KEYS)]
    max_clusters_per_secret: usize,
    /// How long an allowed exec credential plugin may run before it is killed.
    #[arg(long, default_value = "10s", value_parser = super::duration_at_least::<100>)]
    exec_timeout: Duration,
    #[command(flatten)]
    dns: super::DnsArgs,
    /// Do not serve DNS.
    #[arg(long)]
    no_dns: bool,
    /// Serve the gRPC registry API (federator.v1.Registry, with health and reflection) on
    /// this address. Plain text and open to anyone who reaches it unless
    /// --grpc-tls-cert-file (TLS) and --grpc-client-ca-file (mutual TLS) are given. Off
    /// unless given.
    #[arg(long, env = "FEDERATOR_GRPC_ADDR")]
    grpc_addr: Option<SocketAddr>,
    /// Registry changes remembered for gRPC Watch clients that reconnect: one older than
    /// that gets a full snapshot, and a connected one that falls that far behind is cut off.
    // The default is federator::registry::DEFAULT_CHANGE_HISTORY.
    #[arg(long, default_value = "4096", value_parser = clap::value_parser!(u64).range(1..))]
    watch_history: u64,
    /// Serve the gRPC API over TLS with this certificate chain (PEM); with
    /// --grpc-tls-key-file.
    #[arg(long, requires = "grpc_tls_key_file", requires = "grpc_addr")]
    grpc_tls_cert_file: Option<PathBuf>,
    /// The gRPC API's TLS key (PEM).
    #[arg(long, requires = "grpc_tls_cert_file")]
    grpc_tls_key_file: Option<PathBuf>,
    /// Mutual TLS: every gRPC client must present a certificate signed by this CA (PEM).
    #[arg(long, requires = "grpc_tls_cert_file")]
    grpc_client_ca_file: Option<PathBuf>,
    #[command(flatten)]
    election: super::election::ElectionArgs,
    #[command(flatten)]
    store: super::state::StoreArgs,
    #[command(flatten)]
    settings: SettingsArgs,
}

pub(super) async fn run_command(args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut settings = args.settings.settings()?;
    // Kept only for Watch clients: without the API, no history.
    settings.registry.change_history = match args.grpc_addr {
        Some(_) => usize::try_from(args.watch_history).unwrap_or(usize::MAX),
        None => 0,
    };
    let client = config_client(args.kubeconfig.as_deref(), args.context.as_deref()).await?;
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .with_context(|| format!("binding {}", args.metrics_addr))?;
    tracing::info!(addr = %listener.local_addr()?, "serving /healthz, /readyz and /metrics");
    let dns_settings = args.dns.settings(&settings.registry.host_suffix)?;
    let dns = if args.no_dns {
        None
    } else {
        let sockets = federator_dns::bind(args.dns.dns_listen)
            .await
            .with_context(|| format!("binding DNS on {}", args.dns.dns_listen))?;
        tracing::info!(addr = %sockets.udp.local_addr()?, "serving DNS (UDP and TCP)");
        Some(sockets)
    };
    let instance = args
        .instance
        .clone()
        .unwrap_or_else(|| format!("{}.federator", args.namespace));
    federator::model::validate_label_value(&instance)
        .map_err(|why| anyhow::anyhow!("--instance {instance:?}: {why}"))?;
    let store = args.store.options(&instance)?;
    let api_tls = api_tls(&args)?;
    let options = RunOptions {
        store,
        api_tls,
        settings,
        on_unreachable: match args.on_unreachable {
            UnreachablePolicy::Keep => OnUnreachable::Keep,
            UnreachablePolicy::Withdraw => OnUnreachable::Withdraw,
        },
        removal_grace: args.removal_grace,
        cleanup_on_remove: args.cleanup_on_remove,
        instance,
        adopt_unlabelled: args.adopt_unlabelled,
        namespace: args.namespace,
        secret_selector: args.secret_selector,
        stale_after: args.stale_after,
        initial_sync_timeout: args.initial_sync_timeout,
        probe_interval: args.probe_interval,
        resync_period: args.resync_period,
        dns: dns_settings,
        dns_server: args.dns.server(),
        secrets: SecretPolicy {
            kubeconfig: KubeconfigPolicy::allowing(args.allow_kubeconfig.iter().copied()),
            max_keys: args.max_clusters_per_secret,
        },
        connect: ConnectSettings {
            exec_timeout: args.exec_timeout,
            ..ConnectSettings::default()
        },
        election: args.election.options()?,
        shard: args.election.shard()?,
    };
    if !args.allow_kubeconfig.is_empty() {
        let allowed: Vec<&str> = args.allow_kubeconfig.iter().map(|a| a.as_str()).collect();
        tracing::warn!(allowed = ?allowed, "cluster Secrets may use kubeconfig contents beyond inline credentials");
    }
    let grpc = match args.grpc_addr {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the gRPC API on {addr}"))?;
            tracing::info!(addr = %listener.local_addr()?, "serving the gRPC registry API");
            Some(listener)
        }
        None => None,
    };
    let listeners = Listeners {
        http: listener,
        dns,
        grpc,
    };
    run(options, client, listeners, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// The gRPC API's TLS files, read now (a missing file stops the start with its path).
fn api_tls(args: &RunArgs) -> anyhow::Result<Option<federator::api::ApiTls>> {
    let read =
        |path: &PathBuf| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    let (Some(cert), Some(key)) = (&args.grpc_tls_cert_file, &args.grpc_tls_key_file) else {
        return Ok(None);
    };
    Ok(Some(federator::api::ApiTls {
        cert: read(cert)?,
        key: read(key)?,
        client_ca: args.grpc_client_ca_file.as_ref().map(read).transpose()?,
    }))
}

async fn config_client(
    kubeconfig: Option<&std::path::Path>,
    context: Option<&str>,
) -> anyhow::Result<kube::Client> {
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_owned),
        ..Default::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &options).await?
        }
        None if context.is_some() => kube::Config::from_kubeconfig(&options).await?,
        None => kube::Config::infer()
            .await
            .context("no kubeconfig found and not running in a cluster")?,
    };
    Ok(kube::Client::try_from(config)?)
}

pub(super) async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
