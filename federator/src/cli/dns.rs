use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use federator_dns::{DnsHandler, SnapshotHandle, serve};

use super::{DnsArgs, SettingsArgs};

/// `federator dns`.
#[derive(Args, Debug)]
pub(super) struct DnsCommandArgs {
    /// Snapshot folder, as for `federator render`.
    #[arg(long)]
    snapshot: PathBuf,
    #[command(flatten)]
    dns: DnsArgs,
    #[command(flatten)]
    settings: SettingsArgs,
}

pub(super) async fn run(args: DnsCommandArgs) -> anyhow::Result<ExitCode> {
    let settings = args.settings.settings()?;
    let dns_settings = args.dns.settings(&settings.registry.host_suffix)?;
    let loaded = federator::offline::load_registry(&args.snapshot, &settings)?;
    super::log_load_problems(&loaded.problems);
    let (snapshot, errors) =
        federator::dns::snapshot(&loaded.registry.full_view(), &dns_settings, 1);
    for err in errors {
        tracing::warn!(error = %err, "not answered");
    }
    let sockets = federator_dns::bind(args.dns.dns_listen)
        .await
        .with_context(|| format!("binding DNS on {}", args.dns.dns_listen))?;
    tracing::info!(addr = %sockets.udp.local_addr()?, hosts = snapshot.hosts(), "serving DNS (UDP and TCP)");
    let handler = DnsHandler::new(SnapshotHandle::new(snapshot), None);
    tokio::select! {
        err = serve(handler, sockets, args.dns.server()) => {
            return Err(anyhow::Error::new(err).context("DNS server"));
        }
        () = super::run::shutdown_signal() => {}
    }
    Ok(ExitCode::SUCCESS)
}
