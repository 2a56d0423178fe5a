//! Cluster lifecycle: Secrets in, connected clusters out. Adds, reconnects (rotated
//! credentials, moved servers) and removes clusters live; probes each one and withdraws the
//! backends of a cluster unreachable for longer than `stale_after`, restoring them when it
//! answers again. Problems with a Secret become Events on it and log lines naming it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::{StreamExt, future::join_all};
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::runtime::WatchStreamExt;
use kube::runtime::events::{EventType, Recorder, Reporter};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{Instrument, error, info, info_span, warn};

use super::{Queues, RunError, RunOptions};
use crate::clusters::ClusterEntry;
use crate::metrics::Metrics;
use crate::model::ClusterName;
use crate::registry::{Delta, Registry};
use crate::sync::{Gates, WorkQueue, WriterContext, spawn_writer};
use crate::watch::{ClusterWatch, Update, WatchMessage, WatchState, watch_cluster};

const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The result of probing one cluster's API server.
struct Probe {
    cluster: ClusterName,
    generation: u64,
    result: Result<(), String>,
}

/// Everything running for one registered cluster.
pub(super) struct ClusterHandle {
    pub(super) secret: ObjectReference,
    pub(super) entry: ClusterEntry,
    client: Client,
    generation: u64,
    state: Arc<Mutex<WatchState>>,
    pub(super) watch: Option<ClusterWatch>,
    queue: Arc<WorkQueue>,
    writer: JoinHandle<()>,
    probe: JoinHandle<()>,
    reachable: Option<bool>,
    failing_since: Option<Instant>,
    withdrawn: bool,
}

impl Drop for ClusterHandle {
    fn drop(&mut self) {
        self.writer.abort();
        self.probe.abort();
    }
}

pub(super) struct Manager {
    pub(super) options: RunOptions,
    config: Client,
    pub(super) registry: Arc<RwLock<Registry>>,
    queues: Queues,
    pub(super) metrics: Arc<Metrics>,
    updates: mpsc::Sender<WatchMessage>,
    ready: watch::Sender<bool>,
    deletes: watch::Sender<bool>,
    recorder: Recorder,
    pub(super) clusters: BTreeMap<ClusterName, ClusterHandle>,
    /// The cluster Secrets, parsed.
    pub(super) store: super::cluster_set::SecretStore,
    probes_tx: mpsc::Sender<Probe>,
    probes_rx: mpsc::Receiver<Probe>,
    generation: u64,
    /// Hosts each cluster is held back from exporting by its quota, as last reported.
    pub(super) over_quota: BTreeMap<ClusterName, usize>,
    /// Each cluster's watch health as last reported, shared with `/readyz` (watch_report.rs).
    pub(super) watch_health: watch::Sender<super::watch_report::WatchHealths>,
}

impl Manager {
    pub(super) fn new(
        options: RunOptions,
        config: Client,
        registry: Arc<RwLock<Registry>>,
        queues: Queues,
        metrics: Arc<Metrics>,
        updates: mpsc::Sender<WatchMessage>,
        ready: watch::Sender<bool>,
    ) -> Self {
        let recorder = Recorder::new(
            config.clone(),
            Reporter {
                controller: "federator".into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        );
        let (probes_tx, probes_rx) = mpsc::channel(256);
        let (deletes, _) = watch::channel(false);
        Self {
            options,
            config,
            registry,
            queues,
            metrics,
            updates,
            ready,
            deletes,
            recorder,
            clusters: BTreeMap::new(),
            store: super::cluster_set::SecretStore::default(),
            probes_tx,
            probes_rx,
            generation: 0,
            over_quota: BTreeMap::new(),
            watch_health: watch::Sender::new(Default::default()),
        }
    }

    pub(super) async fn run(mut self) -> Result<(), RunError> {
        let api: Api<Secret> = Api::namespaced(self.config.clone(), &self.options.namespace);
        let config = watcher::Config::default().labels(&self.options.secret_selector);
        let mut secrets = watcher::watcher(api, config).default_backoff().boxed();

        // Start-up: the complete list of Secrets first, then VIPs from what the clusters
        // already hold, then watchers; writes wait for the initial sync.
        let mut initial = Vec::new();
        loop {
            match secrets.next().await {
                None => return Ok(()),
                Some(Ok(Event::Init)) => initial.clear(),
                Some(Ok(Event::InitApply(s))) => initial.push(s),
                Some(Ok(Event::InitDone)) => break,
                Some(Ok(_)) => {}
                Some(Err(err)) => {
                    error!(namespace = self.options.namespace, error = %err, "cannot list cluster Secrets; retrying")
                }
            }
        }
        self.store_all(&initial).await;
        let entries = self.initial_clusters().await;
        self.restore_vips(&entries).await;
        for (secret, entry, client) in entries {
            self.start_cluster(secret, entry, client, false).await;
        }
        self.spawn_startup_gates();

        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut relisted: Option<Vec<Secret>> = None;
        loop {
            tokio::select! {
                event = secrets.next() => match event {
                    None => return Ok(()),
                    Some(Err(err)) => warn!(namespace = self.options.namespace, error = %err, "watching cluster Secrets failed; retrying"),
                    Some(Ok(Event::Apply(secret))) => {
                        self.store_secret(&secret).await;
                        self.reconcile_clusters().await;
                    }
                    Some(Ok(Event::Delete(secret))) => {
                        self.forget_secret(secret.metadata.name.as_deref().unwrap_or_default());
                        self.reconcile_clusters().await;
                    }
                    Some(Ok(Event::Init)) => relisted = Some(Vec::new()),
                    Some(Ok(Event::InitApply(secret))) => relisted.get_or_insert_with(Vec::new).push(secret),
                    Some(Ok(Event::InitDone)) => {
                        let listed = relisted.take().unwrap_or_default();
                        self.store_all(&listed).await;
                        self.reconcile_clusters().await;
                    }
                },
                Some(probe) = self.probes_rx.recv() => self.probed(probe).await,
                _ = tick.tick() => {
                    self.withdraw_stale().await;
                    self.report_quotas().await;
                    self.report_watch_health().await;
                }
            }
        }
    }

    /// Marks the controller ready once every cluster has listed its objects (or the initial
    /// sync timeout passed), and allows deletes once every cluster has been seen (or
    /// `stale_after` passed: until then an absent host may just be in a cluster not yet read).
    fn spawn_startup_gates(&self) {
        let synced: Vec<(ClusterName, watch::Receiver<bool>)> = self
            .clusters
            .iter()
            .filter_map(|(name, h)| h.watch.as_ref().map(|w| (name.clone(), w.synced.clone())))
            .collect();
        let ready = self.ready.clone();
        let deletes = self.deletes.clone();
        let registry = self.registry.clone();
        let timeout = self.options.initial_sync_timeout;
        let stale_after = self.options.stale_after;
        tokio::spawn(async move {
            let all = join_all(synced.iter().map(|(_, rx)| {
                let mut rx = rx.clone();
                async move { rx.wait_for(|s| *s).await.is_ok() }
            }));
            // A watch that ended before its lists completed has not synced: it must keep
            // deletes closed like one that is still listing.
            let all_synced = tokio::time::timeout(timeout, all)
                .await
                .is_ok_and(|listed| listed.iter().all(|ok| *ok));
            if !all_synced {
                let late: Vec<String> = synced
                    .iter()
                    .filter(|(_, rx)| !*rx.borrow())
                    .map(|(n, _)| n.to_string())
                    .collect();
                warn!(clusters = ?late, timeout = ?timeout, "starting without clusters that have not listed their objects yet; their backends are kept as written until they answer or stale-after passes");
            }
            registry
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .prune_vips();
            let _ = ready.send(true);
            info!("initial sync done; writing");
            if all_synced {
                let _ = deletes.send(true);
            } else {
                tokio::time::sleep(stale_after.saturating_sub(timeout)).await;
                let _ = deletes.send(true);
            }
        });
    }

    /// Starts (or, for a known cluster, restarts with new settings) everything of a cluster.
    /// `live` clusters (added after start-up) get their writer going once they listed.
    pub(super) async fn start_cluster(
        &mut self,
        secret: ObjectReference,
        entry: ClusterEntry,
        client: Client,
        live: bool,
    ) {
        let name = entry.info.name.clone();
        self.generation += 1;
        let generation = self.generation;
        let previous = self.clusters.remove(&name);
        // A withdrawn cluster is gone from the registry: it must be registered again with its
        // Secret's settings even when they did not change, or it comes back with defaults.
        let info_changed = previous
            .as_ref()
            .is_none_or(|p| p.withdrawn || p.entry.info != entry.info);
        let state = previous
            .as_ref()
            .filter(|p| !p.withdrawn)
            .map(|p| p.state.clone())
            .unwrap_or_else(|| WatchState::new(name.clone()));
        let queue = previous
            .as_ref()
            .map(|p| p.queue.clone())
            .unwrap_or_default();
        drop(previous);
        if info_changed {
            self.send(Delta::UpsertCluster(entry.info.clone())).await;
        }
        let watch = watch_cluster(
            state.clone(),
            client.clone(),
            self.options.settings.ingest.clone(),
            self.updates.clone(),
        );
        let (writer_ready_tx, writer_ready) = watch::channel(false);
        let global_ready = self.ready.subscribe();
        let synced = watch.synced.clone();
        let timeout = self.options.initial_sync_timeout;
        let started_live = live && *self.ready.borrow();
        tokio::spawn(async move {
            let mut global_ready = global_ready;
            if global_ready.wait_for(|r| *r).await.is_err() {
                return;
            }
            if started_live {
                // A cluster added at run time writes once its own objects are in, so its
                // first pass does not delete what only it serves.
                let mut synced = synced;
                let _ = tokio::time::timeout(timeout, synced.wait_for(|s| *s)).await;
            }
            let _ = writer_ready_tx.send(true);
        });
        let ctx = WriterContext {
            registry: self.registry.clone(),
            render: self.options.settings.render.clone(),
            metrics: self.metrics.clone(),
            gates: Gates {
                ready: writer_ready,
                deletes: self.deletes.subscribe(),
            },
            resync_period: self.options.resync_period,
        };
        let writer = spawn_writer(name.clone(), client.clone(), queue.clone(), ctx);
        let probe = spawn_probe(
            name.clone(),
            generation,
            client.clone(),
            self.options.probe_interval,
            self.probes_tx.clone(),
        );
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.clone(), queue.clone());
        self.clusters.insert(
            name.clone(),
            ClusterHandle {
                secret,
                entry,
                client,
                generation,
                state,
                watch: Some(watch),
                queue,
                writer,
                probe,
                reachable: None,
                failing_since: None,
                withdrawn: false,
            },
        );
        info!(cluster = %name, "cluster registered");
        self.update_gauges();
    }

    pub(super) async fn remove_cluster(&mut self, name: &ClusterName) {
        if let Some(handle) = self.clusters.remove(name) {
            self.queues
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(name);
            info!(cluster = %name, secret = handle.secret.name.as_deref().unwrap_or_default(), "cluster unregistered; its backends are withdrawn everywhere");
            drop(handle);
            self.send(Delta::RemoveCluster(name.clone())).await;
        }
        self.update_gauges();
    }

    async fn probed(&mut self, probe: Probe) {
        let Some(handle) = self.clusters.get_mut(&probe.cluster) else {
            return;
        };
        if handle.generation != probe.generation {
            return;
        }
        let secret = handle.secret.clone();
        match probe.result {
            Ok(()) => {
                handle.failing_since = None;
                let was = handle.reachable.replace(true);
                let restore = handle.withdrawn;
                if was != Some(true) {
                    info!(cluster = %probe.cluster, "cluster reachable");
                    let note = format!("cluster {} is reachable", probe.cluster);
                    self.publish(&secret, EventType::Normal, "ClusterReachable", &note)
                        .await;
                }
                if restore {
                    self.restore_withdrawn(&probe.cluster).await;
                }
            }
            Err(reason) => {
                handle.failing_since.get_or_insert_with(Instant::now);
                let was = handle.reachable.replace(false);
                if was != Some(false) {
                    warn!(cluster = %probe.cluster, reason, stale_after = ?self.options.stale_after, "cluster unreachable; keeping its backends until stale-after");
                    let note = format!("cluster {} is unreachable: {reason}", probe.cluster);
                    self.publish(&secret, EventType::Warning, "ClusterUnreachable", &note)
                        .await;
                }
            }
        }
        self.update_gauges();
    }

    /// Withdraws the backends of clusters unreachable for longer than `stale_after`.
    async fn withdraw_stale(&mut self) {
        let stale_after = self.options.stale_after;
        let stale: Vec<ClusterName> = self
            .clusters
            .iter()
            .filter(|(_, h)| {
                !h.withdrawn && h.failing_since.is_some_and(|t| t.elapsed() >= stale_after)
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in stale {
            let Some(handle) = self.clusters.get_mut(&name) else {
                continue;
            };
            handle.withdrawn = true;
            handle.watch = None;
            handle.state = WatchState::new(name.clone());
            let secret = handle.secret.clone();
            warn!(cluster = %name, stale_after = ?stale_after, "cluster unreachable for longer than stale-after; withdrawing its backends");
            let note = format!(
                "cluster {name} unreachable for longer than {stale_after:?}; its backends are withdrawn until it answers again"
            );
            self.publish(&secret, EventType::Warning, "ClusterStale", &note)
                .await;
            self.send(Delta::RemoveCluster(name)).await;
        }
    }

    /// A withdrawn cluster answers again: register it and list everything afresh.
    async fn restore_withdrawn(&mut self, name: &ClusterName) {
        let Some(handle) = self.clusters.get(name) else {
            return;
        };
        let (secret, entry, client) = (
            handle.secret.clone(),
            handle.entry.clone(),
            handle.client.clone(),
        );
        // Started afresh, as a cluster added at run time: registered again with its
        // settings, listed anew, and its writer waits for those lists. Writing at once would
        // delete its own hosts from its own sync namespace, since the registry has none of
        // its workloads until they are listed again.
        info!(cluster = %name, "cluster back; listing it again before writing to it");
        self.start_cluster(secret, entry, client, true).await;
    }

    pub(super) async fn send(&self, delta: Delta) {
        let _ = self
            .updates
            .send(WatchMessage::Delta(Update {
                delta,
                received: Instant::now(),
            }))
            .await;
    }

    pub(super) async fn secret_problem(&self, secret: &ObjectReference, reason: &str, note: &str) {
        warn!(
            secret = secret.name.as_deref().unwrap_or_default(),
            namespace = secret.namespace.as_deref().unwrap_or_default(),
            reason,
            "{note}"
        );
        self.publish(secret, EventType::Warning, reason, note).await;
    }

    pub(super) async fn publish(
        &self,
        secret: &ObjectReference,
        type_: EventType,
        reason: &str,
        note: &str,
    ) {
        crate::events::publish(
            &self.recorder,
            secret,
            type_,
            reason,
            "RegisterCluster",
            note,
        )
        .await;
    }

    pub(super) fn update_gauges(&self) {
        self.metrics
            .clusters_registered
            .set(i64::try_from(self.clusters.len()).unwrap_or(i64::MAX));
        let connected = self
            .clusters
            .values()
            .filter(|h| h.reachable == Some(true))
            .count();
        self.metrics
            .clusters_connected
            .set(i64::try_from(connected).unwrap_or(i64::MAX));
    }
}

fn spawn_probe(
    cluster: ClusterName,
    generation: u64,
    client: Client,
    interval: Duration,
    tx: mpsc::Sender<Probe>,
) -> JoinHandle<()> {
    let span = info_span!("probe", cluster = %cluster);
    tokio::spawn(
        async move {
            loop {
                let result =
                    match tokio::time::timeout(PROBE_TIMEOUT, client.apiserver_version()).await {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err(err)) => Err(crate::connect::describe::kube_error(&err)),
                        Err(_) => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
                    };
                if tx
                    .send(Probe {
                        cluster: cluster.clone(),
                        generation,
                        result,
                    })
                    .await
                    .is_err()
                {
                    return;
                }
                tokio::time::sleep(interval).await;
            }
        }
        .instrument(span),
    )
}
