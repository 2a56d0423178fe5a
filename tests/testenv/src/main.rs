//! `testenv`: starts the test environment for a person (the demo and manual testing).
//!
//!     testenv up --dir DIR [--controllers] [CLUSTER...]   # runs until stopped (SIGINT/SIGTERM)
//!
//! `--controllers` also runs kube-controller-manager, kube-scheduler and kwok per cluster.
//!
//! Writes `DIR/<cluster>.kubeconfig` and, once every cluster is ready, `DIR/ready`.
//! `examples/multicluster/clusters.sh` wraps it.

use std::path::PathBuf;

use anyhow::Context;
use testenv::TestEnv;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: testenv up --dir DIR [--controllers] [CLUSTER...]";
    anyhow::ensure!(args.next().as_deref() == Some("up"), usage);
    anyhow::ensure!(args.next().as_deref() == Some("--dir"), usage);
    let dir = PathBuf::from(args.next().context(usage)?);
    let mut names: Vec<String> = args.collect();
    let controllers = names.first().is_some_and(|a| a == "--controllers");
    if controllers {
        names.remove(0);
    }
    if names.is_empty() {
        names = ["config", "east", "west"].map(String::from).to_vec();
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let ready = dir.join("ready");
    let _ = std::fs::remove_file(&ready);
    // Listening before the start: a signal while the clusters start drops the half-started
    // environment, which stops every process it already started.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let env = tokio::select! {
        env = TestEnv::start_in(&dir, &refs, controllers) => env?,
        _ = tokio::signal::ctrl_c() => return Ok(()),
        _ = term.recv() => return Ok(()),
    };
    let mut summary = String::new();
    for cluster in env.clusters() {
        summary.push_str(&format!(
            "{} {} https://127.0.0.1:{}\n",
            cluster.name(),
            cluster.kubeconfig().display(),
            cluster.port()
        ));
    }
    std::fs::write(&ready, &summary).with_context(|| format!("writing {}", ready.display()))?;
    print!("{summary}");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    let _ = std::fs::remove_file(&ready);
    drop(env);
    Ok(())
}
