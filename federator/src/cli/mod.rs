//! Command-line parsing and the subcommands; the only place `anyhow` is used.

mod cluster;
mod config_file;
mod crds;
mod dns;
mod election;
mod render;
mod run;
mod state;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use federator::config::Settings;
use federator::ingest::{IngestConfig, MetaKey};
use federator::registry::RegistryConfig;
use federator::render::{EastWestGateway, ExportScope, RenderOptions};
use ipnet::IpNet;
use tracing_subscriber::EnvFilter;

/// Multi-cluster service discovery for Istio meshes.
#[derive(Parser, Debug)]
#[command(name = "federator", version, about)]
struct Cli {
    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "FEDERATOR_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Render the Istio objects every cluster of a snapshot would receive (offline/GitOps).
    Render(Box<render::RenderArgs>),
    /// Print (or write) the CRD manifests federator defines and the Istio ones it writes.
    Crds(crds::CrdsArgs),
    /// Run the controller: watch every registered cluster and keep its Istio config right.
    Run(Box<run::RunArgs>),
    /// Manage cluster registrations.
    Cluster(cluster::ClusterArgs),
    /// Serve the global names of a snapshot over DNS, to try the DNS server out.
    Dns(Box<dns::DnsCommandArgs>),
}

/// DNS settings shared by `run` and `dns`.
#[derive(Args, Debug, Clone)]
struct DnsArgs {
    /// Address the DNS server listens on (UDP and TCP).
    #[arg(long, default_value = "0.0.0.0:5353", env = "FEDERATOR_DNS_LISTEN")]
    dns_listen: std::net::SocketAddr,
    /// TTL of DNS answers.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    dns_ttl: std::time::Duration,
    /// Zones answered (default: the host suffix and `clusterset.local`, the MCS API's; give
    /// `clusterset.local` too when setting this, to answer clusterset services).
    #[arg(long)]
    dns_zone: Vec<String>,
    /// Most DNS-over-TCP connections open at once; more are closed on arrival (UDP is not
    /// affected).
    #[arg(long, default_value_t = 256)]
    dns_max_tcp_connections: usize,
    /// A DNS-over-TCP connection that sends no complete query for this long is closed.
    #[arg(long, default_value = "10s", value_parser = duration_at_least::<100>)]
    dns_tcp_idle_timeout: std::time::Duration,
}

/// A duration flag (`30s`, `5m`) of at least `MILLIS` milliseconds: a zero interval would
/// spin a core, a zero timeout fail everything.
pub(crate) fn duration_at_least<const MILLIS: u64>(
    text: &str,
) -> Result<std::time::Duration, String> {
    let value = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    let min = std::time::Duration::from_millis(MILLIS);
    if value < min {
        return Err(format!(
            "must be at least {}",
            humantime::format_duration(min)
        ));
    }
    Ok(value)
}

impl DnsArgs {
    fn settings(&self, host_suffix: &str) -> anyhow::Result<federator::dns::DnsSettings> {
        let names = if self.dns_zone.is_empty() {
            vec![
                host_suffix.to_owned(),
                federator::model::CLUSTERSET_ZONE.to_owned(),
            ]
        } else {
            self.dns_zone.clone()
        };
        let zones = names
            .iter()
            .map(|z| federator_dns::Zone::new(z))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(federator::dns::DnsSettings {
            zones,
            ttl: u32::try_from(self.dns_ttl.as_secs()).unwrap_or(u32::MAX),
        })
    }

    fn server(&self) -> federator_dns::ServeOptions {
        federator_dns::ServeOptions {
            max_tcp_connections: self.dns_max_tcp_connections,
            tcp_idle_timeout: self.dns_tcp_idle_timeout,
        }
    }
}

/// Settings shared by every subcommand that builds a registry; each default is DESIGN.md's.
#[derive(Args, Debug, Clone)]
struct SettingsArgs {
    /// Suffix of global host names (`<env>.<identity>.<suffix>`).
    #[arg(long, default_value = "global", env = "FEDERATOR_HOST_SUFFIX")]
    host_suffix: String,
    /// Range VIPs are allocated from.
    #[arg(long, default_value = "240.0.0.0/16", env = "FEDERATOR_VIP_RANGE")]
    vip_range: IpNet,
    /// Namespace the Istio objects are written to in every cluster.
    #[arg(
        long,
        default_value = "federator-sync",
        env = "FEDERATOR_SYNC_NAMESPACE"
    )]
    sync_namespace: String,
    /// Namespace Istio runs in; its `topology.istio.io/network` label names the cluster's
    /// network (a Secret's `federator.io/network` annotation overrides it).
    #[arg(long, default_value = "istio-system")]
    istio_namespace: String,
    /// Do not write the `federator-eastwest` Gateway (AUTO_PASSTHROUGH of `*.<suffix>` on
    /// the east-west gateway): for meshes that already have a Gateway passing those hosts.
    #[arg(long)]
    no_eastwest_gateway: bool,
    /// Identity keys, in order (`label:KEY` or `annotation:KEY`).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "label:identity,annotation:identity"
    )]
    identity_keys: Vec<String>,
    /// Env keys, in order (`label:KEY` or `annotation:KEY`).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "annotation:federator.io/env,annotation:admiral.io/env,label:admiral.io/env,label:env"
    )]
    env_keys: Vec<String>,
    /// Env of workloads that set none.
    #[arg(long, default_value = "default")]
    default_env: String,
    /// Namespace of the east-west gateway Service.
    #[arg(long, default_value = "istio-system")]
    gateway_namespace: String,
    /// Label that marks the east-west gateway Service (`key=value`).
    #[arg(long, default_value = "istio=eastwestgateway")]
    gateway_label: String,
    /// The gateway's mTLS passthrough port.
    #[arg(long, default_value_t = 15443)]
    gateway_port: u16,
    /// Most global hosts one cluster may contribute; past it its new hosts are held back
    /// and reported (so one runaway cluster cannot flood the others).
    #[arg(long, default_value_t = federator::registry::DEFAULT_MAX_HOSTS_PER_CLUSTER)]
    max_hosts_per_cluster: usize,
    /// Which clusters get a host's ServiceEntry and DestinationRule: `all`, or `dependents`
    /// (clusters where a caller named by a Dependency runs, and those where the host runs).
    #[arg(long, value_enum, default_value_t = ExportScopeArg::All, env = "FEDERATOR_EXPORT_SCOPE")]
    export_scope: ExportScopeArg,
}

/// `--export-scope`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ExportScopeArg {
    /// Every cluster gets every host.
    All,
    /// A host goes where its callers (by Dependency) and its own workloads run.
    Dependents,
}

impl SettingsArgs {
    fn settings(&self) -> anyhow::Result<Settings> {
        let keys = |list: &[String]| -> anyhow::Result<Vec<MetaKey>> {
            list.iter()
                .map(|k| match k.split_once(':') {
                    Some(("label", key)) => Ok(MetaKey::label(key)),
                    Some(("annotation", key)) => Ok(MetaKey::annotation(key)),
                    _ => anyhow::bail!("key {k:?} must be label:KEY or annotation:KEY"),
                })
                .collect()
        };
        let (label_key, label_value) = self.gateway_label.split_once('=').ok_or_else(|| {
            anyhow::anyhow!("--gateway-label {:?} must be key=value", self.gateway_label)
        })?;
        let mut ingest = IngestConfig::default();
        ingest.identity.identity = keys(&self.identity_keys)?;
        ingest.identity.env = keys(&self.env_keys)?;
        ingest.identity.default_env = self.default_env.clone();
        ingest.gateway.namespace = self.gateway_namespace.clone();
        ingest.gateway.labels = [(label_key.to_owned(), label_value.to_owned())].into();
        ingest.gateway.port = self.gateway_port;
        ingest.mesh_namespace = self.istio_namespace.clone();
        let eastwest_gateway = (!self.no_eastwest_gateway).then(|| EastWestGateway {
            selector: ingest.gateway.labels.clone(),
            port: self.gateway_port,
        });
        // Validate the suffix once, up front, rather than per workload.
        federator::model::Host::build("env", "identity", &self.host_suffix)?;
        let suffix = self.host_suffix.trim_matches('.').to_ascii_lowercase();
        let zone = federator::model::CLUSTERSET_ZONE;
        if suffix == zone
            || suffix.ends_with(&format!(".{zone}"))
            || zone.ends_with(&format!(".{suffix}"))
        {
            anyhow::bail!(
                "--host-suffix {suffix:?} overlaps {zone}, the Multicluster Services API's zone: global hosts would be taken for clusterset services; pick another suffix"
            );
        }
        Ok(Settings {
            ingest,
            registry: RegistryConfig {
                host_suffix: self.host_suffix.clone(),
                vip_range: self.vip_range,
                max_hosts_per_cluster: self.max_hosts_per_cluster,
                change_history: federator::registry::DEFAULT_CHANGE_HISTORY,
            },
            render: RenderOptions {
                namespace: self.sync_namespace.clone(),
                eastwest_gateway,
                export_scope: match self.export_scope {
                    ExportScopeArg::All => ExportScope::All,
                    ExportScopeArg::Dependents => ExportScope::Dependents,
                },
                mesh_namespace: self.istio_namespace.clone(),
                ..RenderOptions::default()
            },
        })
    }
}

/// Raises the soft limit of open files to the hard limit: servers hold a descriptor per
/// watch, connection and DNS client, and the common soft default of 1024 is reached long
/// before the hard one.
fn raise_open_files_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let before = limit.current;
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        match setrlimit(Resource::Nofile, limit) {
            Ok(()) => {
                tracing::debug!(from = ?before, to = ?limit.current, "raised the open files limit")
            }
            Err(err) => {
                tracing::warn!(error = %err, soft = ?before, "cannot raise the open files limit")
            }
        }
    }
}

/// Logs each problem found reading a snapshot, naming its cluster and location.
fn log_load_problems(problems: &[federator::offline::LoadProblem]) {
    for problem in problems {
        tracing::warn!(
            cluster = problem.cluster,
            location = problem.location,
            "{}",
            problem.message
        );
    }
}

/// Log filter when `FEDERATOR_LOG` is not set: federator at info; hickory's per-query lines
/// (two info lines per DNS query) only when something is wrong.
const DEFAULT_LOG_FILTER: &str = "info,hickory_server=warn,hickory_proto=warn,hickory_net=warn";

/// Parses the command line (and `--config FILE`), sets up logging and runs the subcommand.
pub fn main() -> ExitCode {
    let args = match config_file::expand(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::from(2);
        }
    };
    let cli = Cli::parse_from(args);
    let filter = EnvFilter::try_from_env("FEDERATOR_LOG")
        .unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only on a terminal: a log file or collector gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => builder.with_target(false).init(),
        LogFormat::Json => builder.json().init(),
    }
    if matches!(cli.command, Command::Run(_) | Command::Dns(_)) {
        raise_open_files_limit();
    }
    let result = match cli.command {
        Command::Render(args) => render::run(*args),
        Command::Crds(args) => crds::run(args),
        Command::Cluster(args) => cluster::run(args),
        Command::Run(args) => match tokio::runtime::Runtime::new() {
            Ok(runtime) => runtime.block_on(run::run_command(*args)),
            Err(err) => Err(err.into()),
        },
        Command::Dns(args) => match tokio::runtime::Runtime::new() {
            Ok(runtime) => runtime.block_on(dns::run(*args)),
            Err(err) => Err(err.into()),
        },
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "federator failed");
            ExitCode::FAILURE
        }
    }
}
