use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use federator::model::ClusterName;
use federator::offline::{render_snapshot, to_yaml, write_dir};
use federator::registry::Severity;

use super::SettingsArgs;

/// `federator render`.
#[derive(Args, Debug)]
pub(super) struct RenderArgs {
    /// Snapshot folder: one sub-folder per cluster with a cluster.yaml and YAML object files.
    #[arg(long)]
    snapshot: PathBuf,
    /// Write `<out>/<cluster>/<kind>-<host>.yaml` instead of printing one YAML stream.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Render only this cluster.
    #[arg(long)]
    cluster: Option<String>,
    /// Exit with status 2 when the snapshot has problems (for CI of GitOps repositories).
    #[arg(long)]
    strict: bool,
    #[command(flatten)]
    settings: SettingsArgs,
}

pub(super) fn run(args: RenderArgs) -> anyhow::Result<ExitCode> {
    let settings = args.settings.settings()?;
    let only = args.cluster.as_deref().map(ClusterName::new);
    let rendered = render_snapshot(&args.snapshot, &settings, only.as_ref())?;
    if let Some(only) = &only
        && rendered.clusters.is_empty()
    {
        anyhow::bail!(
            "cluster {only} is not in snapshot {}",
            args.snapshot.display()
        );
    }
    super::log_load_problems(&rendered.load_problems);
    for diag in &rendered.diagnostics {
        let cluster = diag.cluster.as_ref().map(|c| c.as_str()).unwrap_or("-");
        match diag.severity {
            Severity::Warning => tracing::warn!(cluster, object = diag.object, "{}", diag.message),
            Severity::Info => tracing::info!(cluster, object = diag.object, "{}", diag.message),
        }
    }
    for (kind, count) in &rendered.ignored {
        tracing::debug!(
            kind,
            count,
            "objects of a kind federator does not use were ignored"
        );
    }
    match &args.out {
        Some(dir) => {
            write_dir(dir, &rendered.clusters)
                .with_context(|| format!("writing {}", dir.display()))?;
            for cluster in &rendered.clusters {
                tracing::info!(
                    cluster = cluster.cluster.as_str(),
                    hosts = cluster.hosts.len(),
                    folder = %dir.join(cluster.cluster.as_str()).display(),
                    "rendered"
                );
            }
        }
        None => {
            let yaml = to_yaml(&rendered.clusters).context("serialising rendered objects")?;
            std::io::stdout()
                .lock()
                .write_all(yaml.as_bytes())
                .context("writing to stdout")?;
        }
    }
    let warnings = rendered.load_problems.len()
        + rendered
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count();
    Ok(if args.strict && warnings > 0 {
        tracing::error!(warnings, "snapshot has problems (--strict)");
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
