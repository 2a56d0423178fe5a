//! The live controller: connects to every registered cluster, keeps the registry current and
//! every cluster's Istio config right.
//!
//! Tasks: one watcher set and one probe per cluster feed deltas and health to the manager and
//! the registry loop; the registry loop folds deltas and hands changed hosts to one writer
//! per cluster; an HTTP server answers health and metrics. Nothing is written until the
//! initial sync is done, and nothing is deleted until every cluster has been seen.

mod cluster_run;
mod cluster_set;
mod cluster_status;
mod cluster_tasks;
mod diagnostics_report;
mod dns_publisher;
mod health_driver;
mod http;
mod manager;
mod object_status;
mod options;
mod quota_report;
mod registry_loop;
mod shard_link;
mod shard_run;
mod shared_publish;
mod shared_registry;
mod vip_restore;
mod vip_store;
mod watch_report;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};

pub use cluster_status::{ClusterStatus, ClusterStatuses};
pub use options::RunOptions;

use crate::metrics::Metrics;
use crate::model::ClusterName;
use crate::registry::{Diagnostic, Registry};
use crate::sync::WorkQueue;
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
    /// The state store cannot be set up (a bad endpoint or TLS file).
    #[error("{0}")]
    Store(crate::state::StoreError),
    /// The leader election cannot be set up.
    #[error("{0}")]
    Lease(crate::leader::LeaseError),
    /// This replica cannot share clusters with the others (`--leader-election shard`).
    #[error("{0}")]
    Shard(shard_link::ShardError),
    /// This replica's membership among those sharing clusters expired (cut off from etcd
    /// for longer than its lease): it stops, to be restarted and join afresh.
    #[error("the membership lease expired: cut off from etcd too long; restart to join again")]
    MembershipLost,
}

/// How long stopping waits for the manager to stop its writers.
const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The sockets the controller serves on, bound by the caller (so tests can use port 0).
#[derive(Debug)]
pub struct Listeners {
    /// `/healthz`, `/readyz` and `/metrics`.
    pub http: TcpListener,
    /// The DNS server's UDP and TCP sockets; `None` runs without DNS.
    pub dns: Option<federator_dns::Sockets>,
    /// The gRPC registry API (`federator.v1.Registry`); `None` runs without it.
    pub grpc: Option<TcpListener>,
}

/// Changes to the registry that do not come from a cluster's watchers. The registry loop is
/// the registry's only mutator: the manager asks it, in order with the deltas.
#[derive(Debug)]
pub(crate) enum RegistryCommand {
    /// Reserve the VIPs federator gave out before (read back at start-up).
    RestoreVips(std::collections::BTreeMap<crate::model::Host, std::net::IpAddr>),
    /// Free the restored VIPs no cluster claimed (once every cluster listed).
    PruneVips,
    /// Work out the registry's warnings (they read more than a view holds) and send them back.
    Warnings(oneshot::Sender<Vec<Diagnostic>>),
    /// Work out the status of every GlobalTrafficPolicy and Dependency and send it back.
    Statuses(oneshot::Sender<Vec<crate::registry::ObjectStatus>>),
    /// Sharded: this replica's watchers of the cluster start (what they list replaces
    /// what the registry holds of it).
    Watching(ClusterName),
    /// Sharded: this replica's watchers of the cluster have listed (what they did not give
    /// goes; the cluster may be published).
    ListedHere(ClusterName),
    /// Sharded: the cluster this replica owned is unregistered (what is published of it
    /// goes).
    Forget(ClusterName),
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
    let store = crate::state::open(&options.store, &options, &config, &metrics.etcd)
        .map_err(RunError::Store)?;
    // The registry loop owns the registry; everyone else reads the views it publishes.
    let mut registry = Registry::new(options.settings.registry.clone());
    let (views_tx, views) = watch::channel(registry.publish());
    let (ready_tx, ready_rx) = watch::channel(false);
    let (updates_tx, updates_rx) = mpsc::channel::<WatchMessage>(4096);
    let (commands_tx, commands_rx) = mpsc::channel::<RegistryCommand>(16);
    let queues: Queues = Arc::default();
    let (stop_election, election_stop) = watch::channel(false);
    // The elector's terms go to the registry loop, which passes each on to the writers once
    // it has read the VIP store (`writer_terms`).
    let (writer_terms, writer_terms_rx) = watch::channel(None);
    let fence = crate::leader::Fence::new(writer_terms_rx.clone());
    let sharding = match &options.shard {
        None => None,
        Some(shard) => Some(
            shard_link::Sharding::start(shard, &options, writer_terms_rx, metrics.clone())
                .await
                .map_err(RunError::Shard)?,
        ),
    };
    let (_sole_writer, terms, election) = match (&options.election, &sharding) {
        // Each replica writes the clusters it holds the claims of, while it is a member.
        (_, Some(sharding)) => (None, sharding.terms.clone(), None),
        (None, None) => {
            // The only writer leads, and says so.
            metrics.leader.set(1);
            let (sender, terms) = watch::channel(Some(crate::leader::sole_writer_term()));
            (Some(sender), terms, None)
        }
        (Some(election), None) => {
            let (sender, terms) = watch::channel(None);
            let task = crate::leader::spawn(
                election,
                &options,
                &config,
                sender,
                metrics.clone(),
                election_stop,
            )
            .map_err(RunError::Lease)?;
            (None, terms, Some(task))
        }
    };

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
    let publisher = dns.as_ref().map(|(handle, _)| {
        tokio::spawn(dns_publisher::publish_dns(
            views.clone(),
            ready_rx.clone(),
            handle.clone(),
            options.dns.clone(),
        ))
    });
    let (statuses_tx, statuses) = watch::channel(ClusterStatuses::new());
    let grpc_task = listeners.grpc.map(|listener| {
        let sources = crate::api::Sources {
            views: views.clone(),
            ready: ready_rx.clone(),
            clusters: statuses,
        };
        let tls = options.api_tls.clone();
        tokio::spawn(async move {
            // Not fatal: the controller's work does not depend on its readers.
            if let Err(err) = crate::api::serve(listener, sources, tls).await {
                error!(error = %err, "the gRPC registry API stopped");
            }
        })
    });
    let (sharing, shared, membership) = match sharding {
        None => (None, None, None),
        Some(sharding) => {
            let shared = registry_loop::SharedInputs {
                registry: sharding.registry,
                updates: sharding.updates,
            };
            (
                Some(sharding.manager),
                Some(shared),
                Some(sharding.departure),
            )
        }
    };
    let registry_task = tokio::spawn(registry_loop::registry_loop(
        registry_loop::Inputs {
            commands: commands_rx,
            updates: updates_rx,
            terms,
            shared,
        },
        registry,
        vip_store::VipStore::new(store),
        registry_loop::Outputs {
            views: views_tx,
            writer_terms,
            queues: queues.clone(),
            metrics: metrics.clone(),
        },
    ));
    let (stop_manager, manager_stop) = watch::channel(false);
    let manager = manager::Manager::new(
        options,
        config,
        views,
        queues,
        metrics,
        manager::Channels {
            updates: updates_tx,
            commands: commands_tx,
            ready: ready_tx,
            fence,
            stop: manager_stop,
        },
    )
    .reporting_watch_health(watch_health_tx)
    .reporting_cluster_status(statuses_tx)
    .sharing(sharing);
    let mut managing = std::pin::pin!(manager.run());
    let mut managed = false;
    let result = tokio::select! {
        result = &mut managing => {
            managed = true;
            result
        }
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
    if !managed {
        // The writers stop first: nothing is written after the lease or the claims go. A
        // manager still starting (listing Secrets, connecting) is not waited for long.
        let _ = stop_manager.send(true);
        if tokio::time::timeout(STOP_WAIT, managing).await.is_err() {
            warn!(waited = ?STOP_WAIT, "the manager did not stop in time; stopping anyway");
        }
    }
    // The writers stopped with the manager; now the lease can go to the next replica.
    let _ = stop_election.send(true);
    if let Some(departure) = membership {
        departure.leave().await;
    }
    if let Some(task) = election {
        let _ = task.await;
    }
    registry_task.abort();
    http_task.abort();
    if let Some(task) = grpc_task {
        task.abort();
    }
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
