use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use federator_dns::{DnsHandler, DnsMetrics, Snapshot, SnapshotConfig, SnapshotHandle, serve};

use super::{DnsArgs, SettingsArgs};

/// `federator dns`.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["snapshot", "upstream"])))]
pub(super) struct DnsCommandArgs {
    /// Snapshot folder, as for `federator render`.
    #[arg(long)]
    snapshot: Option<PathBuf>,
    /// A federator's gRPC registry API (`http://host:port`, or `https://` with
    /// --upstream-ca-file): answer what it holds, kept current through its Watch stream.
    #[arg(long, env = "FEDERATOR_UPSTREAM")]
    upstream: Option<String>,
    /// CA certificate (PEM) of the upstream's TLS certificate.
    #[arg(long, requires = "upstream")]
    upstream_ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for an upstream that requires one; with --upstream-key-file.
    #[arg(long, requires = "upstream_key_file", requires = "upstream_ca_file")]
    upstream_cert_file: Option<PathBuf>,
    /// Client key (PEM); with --upstream-cert-file.
    #[arg(long, requires = "upstream_cert_file")]
    upstream_key_file: Option<PathBuf>,
    /// With --upstream: /readyz fails once the upstream has been unreachable this long
    /// (answers keep coming from the last snapshot).
    #[arg(long, default_value = "30s", value_parser = super::duration_at_least::<1000>)]
    upstream_stale_after: Duration,
    /// With --upstream: address of /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:9090", env = "FEDERATOR_METRICS_ADDR")]
    metrics_addr: SocketAddr,
    #[command(flatten)]
    dns: DnsArgs,
    #[command(flatten)]
    settings: SettingsArgs,
}

pub(super) async fn run(args: DnsCommandArgs) -> anyhow::Result<ExitCode> {
    let settings = args.settings.settings()?;
    let dns_settings = args.dns.settings(&settings.registry.host_suffix)?;
    let sockets = federator_dns::bind(args.dns.dns_listen)
        .await
        .with_context(|| format!("binding DNS on {}", args.dns.dns_listen))?;
    let Some(url) = args.upstream.clone() else {
        let folder = args.snapshot.clone().unwrap_or_default();
        let loaded = federator::offline::load_registry(&folder, &settings)?;
        super::log_load_problems(&loaded.problems);
        let (snapshot, errors) =
            federator::dns::snapshot(&loaded.registry.full_view(), &dns_settings, 1);
        for err in errors {
            tracing::warn!(error = %err, "not answered");
        }
        tracing::info!(addr = %sockets.udp.local_addr()?, hosts = snapshot.hosts(), "serving DNS (UDP and TCP)");
        let handler = DnsHandler::new(SnapshotHandle::new(snapshot), None);
        return serve_until_signal(handler, sockets, &args).await;
    };
    let read = |path: &Option<PathBuf>| -> anyhow::Result<Option<Vec<u8>>> {
        path.as_ref()
            .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
            .transpose()
    };
    let options = federator::upstream::UpstreamOptions {
        url: url.clone(),
        ca: read(&args.upstream_ca_file)?,
        identity: read(&args.upstream_cert_file)?.zip(read(&args.upstream_key_file)?),
    };
    let channel = federator::upstream::channel(&options)?;
    // SERVFAIL until the first snapshot: a negative answer now would be cached.
    let config = SnapshotConfig {
        zones: dns_settings.zones.clone(),
        ttl: dns_settings.ttl,
        serial: 0,
    };
    let handle = SnapshotHandle::new(Snapshot::starting(&config));
    let metrics = DnsMetrics::default();
    let handler = DnsHandler::new(handle.clone(), Some(metrics.clone()));
    let (state_tx, state) = tokio::sync::watch::channel(federator::upstream::UpstreamState {
        whole: false,
        connected: false,
        since: Instant::now(),
    });
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .with_context(|| format!("binding {}", args.metrics_addr))?;
    tracing::info!(addr = %listener.local_addr()?, "serving /healthz, /readyz and /metrics");
    tracing::info!(addr = %sockets.udp.local_addr()?, upstream = url, "serving DNS (UDP and TCP) from the upstream's registry");
    let health = federator::upstream::serve_health(
        listener,
        state,
        args.upstream_stale_after,
        url.clone(),
        &metrics,
    );
    let follow = federator::upstream::follow(channel, url, handle, dns_settings, state_tx);
    tokio::select! {
        result = serve_until_signal(handler, sockets, &args) => result,
        result = health => Err(anyhow::anyhow!("health server stopped: {result:?}")),
        () = follow => Ok(ExitCode::SUCCESS),
    }
}

async fn serve_until_signal(
    handler: DnsHandler,
    sockets: federator_dns::Sockets,
    args: &DnsCommandArgs,
) -> anyhow::Result<ExitCode> {
    tokio::select! {
        err = serve(handler, sockets, args.dns.server()) => {
            Err(anyhow::Error::new(err).context("DNS server"))
        }
        () = super::run::shutdown_signal() => Ok(ExitCode::SUCCESS),
    }
}
