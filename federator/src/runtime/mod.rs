//! The live controller: connects to every registered cluster, keeps the registry current and
//! every cluster's Istio config right.
//!
//! Tasks: one watcher set and one probe per cluster feed deltas and health to the manager and
//! the registry loop; the registry loop folds deltas and hands changed hosts to one writer
//! per cluster; an HTTP server answers health and metrics. Nothing is written until the
//! initial sync is done, and nothing is deleted until every cluster has been seen.

mod cluster_run;
mod cluster_set;
mod diagnostics_report;
mod health_driver;
mod http;
mod manager;
mod options;
mod quota_report;
mod vip_restore;
mod watch_report;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tracing::{error, info};

pub use options::RunOptions;

use crate::dns::DnsSettings;
use crate::metrics::Metrics;
use crate::model::ClusterName;
use crate::registry::{ChangeSet, Registry};
use crate::sync::{Work, WorkQueue};
use crate::watch::WatchMessage;

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

/// The sockets the controller serves on, bound by the caller (so tests can use port 0).
#[derive(Debug)]
pub struct Listeners {
    /// `/healthz`, `/readyz` and `/metrics`.
    pub http: TcpListener,
    /// The DNS server's UDP and TCP sockets; `None` runs without DNS.
    pub dns: Option<federator_dns::Sockets>,
}

/// Changes to the registry that do not come from a cluster's watchers. The registry loop is
/// the registry's only mutator: the manager asks it, in order with the deltas.
#[derive(Debug)]
pub(crate) enum RegistryCommand {
    /// Reserve the VIPs federator gave out before (read back at start-up).
    RestoreVips(std::collections::BTreeMap<crate::model::Host, std::net::IpAddr>),
    /// Free the restored VIPs no cluster claimed (once every cluster listed).
    PruneVips,
}

/// The writers' queues, by cluster; the registry loop fans changes out to them.
pub(crate) type Queues = Arc<Mutex<HashMap<ClusterName, Arc<WorkQueue>>>>;

/// Runs the controller until `shutdown` completes. `config` talks to the config cluster (the
/// one holding the cluster Secrets).
pub async fn run(
    options: RunOptions,
    config: kube::Client,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let metrics = Arc::new(Metrics::default());
    let registry = Arc::new(RwLock::new(Registry::new(
        options.settings.registry.clone(),
    )));
    let (ready_tx, ready_rx) = watch::channel(false);
    let (updates_tx, updates_rx) = mpsc::channel::<WatchMessage>(4096);
    let (commands_tx, commands_rx) = mpsc::channel::<RegistryCommand>(16);
    let queues: Queues = Arc::default();

    // Whether the DNS server is still serving (true when there is none to watch).
    let (dns_alive_tx, dns_alive) = watch::channel(true);
    let (watch_health_tx, watch_health) = watch::channel(watch_report::WatchHealths::new());
    let mut http_task = tokio::spawn(http::serve(
        listeners.http,
        http::Health {
            ready: ready_rx.clone(),
            dns_alive,
            watch_health,
        },
        metrics.clone(),
    ));
    let dns_config = federator_dns::SnapshotConfig {
        zones: options.dns.zones.clone(),
        ttl: options.dns.ttl,
        serial: 0,
    };
    let dns = listeners.dns.map(|sockets| {
        // SERVFAIL until the registry is read: a negative answer now would be cached.
        let handle =
            federator_dns::SnapshotHandle::new(federator_dns::Snapshot::starting(&dns_config));
        let handler = federator_dns::DnsHandler::new(handle.clone(), Some(metrics.dns.clone()));
        let server = options.dns_server.clone();
        let task = tokio::spawn(async move {
            let err = federator_dns::serve(handler, sockets, server).await;
            error!(error = %err, "the DNS server stopped; /readyz now fails");
            let _ = dns_alive_tx.send(false);
        });
        (handle, task)
    });
    let (dns_dirty, dns_changes) = watch::channel(());
    let publisher = dns.as_ref().map(|(handle, _)| {
        tokio::spawn(publish_dns(
            dns_changes,
            ready_rx.clone(),
            registry.clone(),
            handle.clone(),
            options.dns.clone(),
        ))
    });
    let registry_task = tokio::spawn(registry_loop(
        commands_rx,
        updates_rx,
        registry.clone(),
        queues.clone(),
        metrics.clone(),
        dns_dirty,
    ));
    let manager = manager::Manager::new(
        options,
        config,
        registry,
        queues,
        metrics,
        manager::Channels {
            updates: updates_tx,
            commands: commands_tx,
            ready: ready_tx,
        },
    )
    .reporting_watch_health(watch_health_tx);
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
    if let Some((_, task)) = dns {
        task.abort();
    }
    if let Some(task) = publisher {
        task.abort();
    }
    if let Err(err) = &result {
        error!(error = %err, "federator stopped");
    }
    result
}

/// The registry's only mutator: folds every delta (and the manager's commands, first) into
/// the registry, tells each writer which hosts changed, and marks the DNS snapshot stale.
async fn registry_loop(
    mut commands: mpsc::Receiver<RegistryCommand>,
    mut updates: mpsc::Receiver<WatchMessage>,
    registry: Arc<RwLock<Registry>>,
    queues: Queues,
    metrics: Arc<Metrics>,
    dns_dirty: watch::Sender<()>,
) {
    let mut batch = Vec::new();
    loop {
        let command = tokio::select! {
            // Commands first: a VIP restore sent before a cluster's watchers start is applied
            // before any of their deltas.
            biased;
            Some(command) = commands.recv() => Some(command),
            received = updates.recv_many(&mut batch, 512) => {
                if received == 0 {
                    return;
                }
                None
            }
        };
        if let Some(command) = command {
            let changes = run_command(&registry, command);
            fan_out(&queues, &changes, None, &dns_dirty);
            continue;
        }
        let since = batch
            .iter()
            .filter_map(|m| match m {
                WatchMessage::Delta(u) => Some(u.received),
                WatchMessage::Listed(_) => None,
            })
            .min();
        let mut changes = ChangeSet::default();
        let mut listed = Vec::new();
        {
            let mut registry = registry
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for message in batch.drain(..) {
                match message {
                    WatchMessage::Delta(update) => {
                        changes.extend(registry.apply(update.delta));
                        metrics.deltas.inc();
                    }
                    WatchMessage::Listed(synced) => listed.push(synced),
                }
            }
            metrics
                .registry_hosts
                .set(i64::try_from(registry.len()).unwrap_or(i64::MAX));
        }
        // Everything sent before the markers is in the registry now.
        for synced in listed {
            let _ = synced.send(true);
        }
        fan_out(&queues, &changes, since, &dns_dirty);
    }
}

/// Carries out a manager's command on the registry.
fn run_command(registry: &RwLock<Registry>, command: RegistryCommand) -> ChangeSet {
    let mut registry = registry
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match command {
        RegistryCommand::RestoreVips(table) => {
            let count = table.len();
            let errors = registry.restore_vips(table);
            for err in &errors {
                tracing::warn!(error = %err, "saved VIP not restored");
            }
            info!(
                restored = count - errors.len(),
                "VIPs restored from existing ServiceEntries"
            );
            ChangeSet::default()
        }
        RegistryCommand::PruneVips => registry.prune_vips(),
    }
}

/// Tells each writer which hosts changed (and which clusters need a full pass), and marks the
/// DNS snapshot stale.
fn fan_out(
    queues: &Queues,
    changes: &ChangeSet,
    since: Option<std::time::Instant>,
    dns_dirty: &watch::Sender<()>,
) {
    if changes.is_empty() {
        return;
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
    if !changes.hosts.is_empty() {
        dns_dirty.send_replace(());
    }
}

/// Rebuilds the DNS snapshot once the initial sync is done and then whenever hosts changed:
/// records taken under the registry's read lock, the snapshot built with no lock held,
/// bursts coalesced into one rebuild. Off the path of the writers, so DNS never delays the
/// Istio config.
async fn publish_dns(
    mut changes: watch::Receiver<()>,
    mut ready: watch::Receiver<bool>,
    registry: Arc<RwLock<Registry>>,
    handle: federator_dns::SnapshotHandle,
    settings: DnsSettings,
) {
    if ready.wait_for(|r| *r).await.is_err() {
        return;
    }
    changes.mark_changed();
    let mut serial: u32 = 0;
    while changes.changed().await.is_ok() {
        let records = {
            let registry = registry
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            crate::dns::records(&registry)
        };
        serial = serial.wrapping_add(1);
        let (snapshot, errors) = crate::dns::build(records, &settings, serial);
        for err in errors {
            tracing::warn!(error = %err, "not answered in DNS");
        }
        handle.store(snapshot);
    }
}
