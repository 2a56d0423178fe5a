//! The live controller: connects to every registered cluster, keeps the registry current and
//! every cluster's Istio config right.
//!
//! Tasks: one watcher set and one probe per cluster feed deltas and health to the manager and
//! the registry loop; the registry loop folds deltas and hands changed hosts to one writer
//! per cluster; an HTTP server answers health and metrics. Nothing is written until the
//! initial sync is done, and nothing is deleted until every cluster has been seen.

mod http;
mod manager;
mod options;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tracing::{error, info};

pub use options::RunOptions;

use crate::metrics::Metrics;
use crate::model::ClusterName;
use crate::registry::Registry;
use crate::sync::{Work, WorkQueue};
use crate::watch::Update;

/// Why the controller stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The config cluster's Secrets cannot be watched.
    #[error(
        "cannot watch cluster Secrets in namespace {namespace} of the config cluster: {source}"
    )]
    Secrets {
        /// The namespace.
        namespace: String,
        /// Why.
        source: kube::runtime::watcher::Error,
    },
    /// The health/metrics server failed.
    #[error("health and metrics server: {0}")]
    Http(std::io::Error),
}

/// The writers' queues, by cluster; the registry loop fans changes out to them.
pub(crate) type Queues = Arc<Mutex<HashMap<ClusterName, Arc<WorkQueue>>>>;

/// Runs the controller until `shutdown` completes. `config` talks to the config cluster (the
/// one holding the cluster Secrets); `http` serves `/healthz`, `/readyz` and `/metrics`.
pub async fn run(
    options: RunOptions,
    config: kube::Client,
    http: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let metrics = Arc::new(Metrics::default());
    let registry = Arc::new(RwLock::new(Registry::new(
        options.settings.registry.clone(),
    )));
    let (ready_tx, ready_rx) = watch::channel(false);
    let (updates_tx, updates_rx) = mpsc::channel::<Update>(4096);
    let queues: Queues = Arc::default();

    let mut http_task = tokio::spawn(http::serve(http, ready_rx.clone(), metrics.clone()));
    let registry_task = tokio::spawn(registry_loop(
        updates_rx,
        registry.clone(),
        queues.clone(),
        metrics.clone(),
    ));
    let manager = manager::Manager::new(
        options, config, registry, queues, metrics, updates_tx, ready_tx,
    );
    let result = tokio::select! {
        result = manager.run() => result,
        result = &mut http_task => Err(RunError::Http(match result {
            Ok(Ok(())) => std::io::Error::other("stopped"),
            Ok(Err(err)) => err,
            Err(err) => std::io::Error::other(err),
        })),
        () = shutdown => {
            info!("shutting down");
            Ok(())
        }
    };
    registry_task.abort();
    http_task.abort();
    if let Err(err) = &result {
        error!(error = %err, "federator stopped");
    }
    result
}

/// Folds every delta into the registry and tells each writer which hosts changed.
async fn registry_loop(
    mut updates: mpsc::Receiver<Update>,
    registry: Arc<RwLock<Registry>>,
    queues: Queues,
    metrics: Arc<Metrics>,
) {
    let mut batch = Vec::new();
    while updates.recv_many(&mut batch, 512).await > 0 {
        let since = batch.iter().map(|u| u.received).min();
        let mut changes = crate::registry::ChangeSet::default();
        {
            let mut registry = registry
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for update in batch.drain(..) {
                changes.extend(registry.apply(update.delta));
                metrics.deltas.inc();
            }
            metrics
                .registry_hosts
                .set(i64::try_from(registry.len()).unwrap_or(i64::MAX));
        }
        if changes.is_empty() {
            continue;
        }
        let queues = queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (cluster, queue) in queues.iter() {
            queue.push(Work {
                hosts: changes.hosts.clone(),
                full: changes.clusters.contains(cluster),
                since,
            });
        }
    }
}
