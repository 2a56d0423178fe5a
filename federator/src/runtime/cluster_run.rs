//! What runs for one registered cluster, and how it is started, stopped and restarted: a
//! client, its watchers, its writer, its probe, and a task that reports when its lists are
//! in. A cluster without a client (connecting failed) is registered all the same: its health
//! counts it, so its hosts are held rather than forgotten.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{Instrument, info, info_span};

use super::cluster_tasks::{spawn_listed, spawn_probe, stop_writer};
use super::manager::Manager;
use crate::clusters::ClusterEntry;
use crate::clusters::health::{ClusterHealth, Observation};
use crate::model::{ClusterInfo, ClusterName};
use crate::registry::Delta;
use crate::sync::{Gates, WorkQueue, WriterContext, spawn_writer};
use crate::watch::{ClusterWatch, WatchState, watch_cluster};

/// First and longest wait between connection attempts of a cluster.
const FIRST_CONNECT_WAIT: Duration = Duration::from_secs(1);
const LONGEST_CONNECT_WAIT: Duration = Duration::from_secs(60);

fn connect_backoff() -> ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(FIRST_CONNECT_WAIT)
        .with_max_delay(LONGEST_CONNECT_WAIT)
        .with_jitter()
        .without_max_times()
        .build()
}

/// A registered cluster.
pub(super) struct ClusterHandle {
    /// The Secret that registers it (Events about it go there).
    pub(super) secret: ObjectReference,
    /// What its Secret says.
    pub(super) entry: ClusterEntry,
    /// Its health machine.
    pub(super) health: ClusterHealth,
    /// Its writer's queue: kept across restarts, so no change is lost.
    pub(super) queue: Arc<WorkQueue>,
    /// What its watchers reported: kept across reconnects, reset on withdrawal.
    pub(super) watch_state: Arc<Mutex<WatchState>>,
    /// Sharded: another replica owns it; this one follows what that one publishes.
    pub(super) followed: bool,
    /// What the registry holds of it (the last UpsertCluster sent), unless withdrawn.
    registered: Option<ClusterInfo>,
    /// The tasks, once connected.
    pub(super) running: Option<Running>,
    /// Waits between connection attempts.
    connect_retry: ExponentialBackoff,
}

impl ClusterHandle {
    /// A cluster just registered by `secret`, not connected yet.
    pub(super) fn new(secret: ObjectReference, entry: ClusterEntry, health: ClusterHealth) -> Self {
        let watch_state = WatchState::new(entry.info.name.clone());
        Self {
            secret,
            entry,
            health,
            queue: Arc::default(),
            watch_state,
            followed: false,
            registered: None,
            running: None,
            connect_retry: connect_backoff(),
        }
    }

    /// The observation of a failed connection attempt, with the wait before the next one.
    pub(super) fn connect_failed(&mut self, reason: String) -> Observation {
        let wait = self.connect_retry.next().unwrap_or(LONGEST_CONNECT_WAIT);
        Observation::ConnectFailed(reason, wait)
    }

    /// Stops its tasks: its client, if it had one, and its writer, to wait for with
    /// [`stop_writer`] (no write of it may land after what comes next).
    pub(super) fn stop_tasks(&mut self) -> (Option<Client>, Option<JoinHandle<()>>) {
        match self.running.take() {
            Some(mut running) => (Some(running.client.clone()), running.writer.take()),
            None => (None, None),
        }
    }

    /// What its watchers report of their health, while they run.
    pub(super) fn watch_health(&self) -> Option<crate::watch::WatchHealth> {
        let watch = self.running.as_ref()?.watch.as_ref()?;
        Some(watch.health.borrow().clone())
    }

    /// Which start its tasks belong to.
    pub(super) fn generation(&self) -> Option<u64> {
        self.running.as_ref().map(|r| r.generation)
    }
}

/// The tasks of a connected cluster; they stop when dropped.
pub(super) struct Running {
    pub(super) client: Client,
    generation: u64,
    pub(super) watch: Option<ClusterWatch>,
    pub(super) writer: Option<JoinHandle<()>>,
    /// What its writer is started with (again, when sharded and claimed anew).
    pub(super) writer_ctx: WriterContext,
    probe: JoinHandle<()>,
    listed: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(writer) = &self.writer {
            writer.abort();
        }
        self.probe.abort();
        self.listed.abort();
    }
}

impl Manager {
    /// Builds a client for `name` and starts it; a failure is an observation (retried).
    pub(super) async fn connect(&mut self, name: &ClusterName, live: bool) {
        let Some(entry) = self.clusters.get(name).map(|h| h.entry.clone()) else {
            return;
        };
        if !self.owns(name) {
            self.follow(name).await;
            return;
        }
        match crate::connect::connect(&entry, &self.options.connect).await {
            Ok(client) => {
                if let Some(handle) = self.clusters.get_mut(name) {
                    handle.connect_retry = connect_backoff();
                }
                self.start(name, client, live).await;
                self.observe(name, Observation::Connected).await;
            }
            Err(err) => {
                if let Some(handle) = self.clusters.get_mut(name) {
                    let failed = handle.connect_failed(err.to_string());
                    self.observe(name, failed).await;
                }
            }
        }
    }

    /// Starts (or restarts, with a new client or after a withdrawal) everything of a
    /// cluster. A `live` start (after start-up) writes only once its own objects are listed,
    /// so its first pass cannot delete what only it serves.
    pub(super) async fn start(&mut self, name: &ClusterName, client: Client, live: bool) {
        self.generation += 1;
        let generation = self.generation;
        let Some(handle) = self.clusters.get_mut(name) else {
            return;
        };
        // Stop the old tasks first: one writer per cluster at a time.
        let (_, writer) = handle.stop_tasks();
        let (state, queue) = (handle.watch_state.clone(), handle.queue.clone());
        stop_writer(writer).await;
        self.register_in_registry(name).await;
        self.before_watching(name).await;
        let watch = watch_cluster(
            state,
            client.clone(),
            self.options.settings.ingest.clone(),
            self.updates.clone(),
        );
        let synced = watch.synced.clone();
        let listed = spawn_listed(
            name.clone(),
            generation,
            synced.clone(),
            self.events_tx.clone(),
        );
        let writer_ready = self.writer_ready(synced, live);
        let ctx = WriterContext {
            views: self.views.clone(),
            render: self.options.settings.render.clone(),
            installation: self.options.installation(),
            metrics: self.metrics.clone(),
            gates: Gates {
                ready: writer_ready,
                deletes: self.ready.subscribe(),
                unlisted: self.unlisted.subscribe(),
                leader: self.writer_fence(name),
            },
            resync_period: self.options.resync_period,
            // A cluster started at run time may still be cleaned up after, or written by the
            // writer it replaces: its first pass reads what is there then.
            read_ahead: !live,
        };
        let writer = self
            .writes_to(name)
            .then(|| spawn_writer(name.clone(), client.clone(), queue.clone(), ctx.clone()));
        let probe = spawn_probe(
            name.clone(),
            generation,
            client.clone(),
            self.options.probe_interval,
            self.events_tx.clone(),
        );
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.clone(), queue);
        if let Some(handle) = self.clusters.get_mut(name) {
            handle.running = Some(Running {
                client,
                generation,
                watch: Some(watch),
                writer,
                writer_ctx: ctx,
                probe,
                listed,
            });
        }
        info!(cluster = %name, live, "cluster started");
    }

    /// Registers `name` in the registry whenever the registry lacks it or its Secret's
    /// settings changed: a withdrawn cluster must come back with its network, region and
    /// zone, and a followed one (sharded) is registered from its Secret like any other.
    pub(super) async fn register_in_registry(&mut self, name: &ClusterName) {
        let Some(handle) = self.clusters.get_mut(name) else {
            return;
        };
        if handle.registered.as_ref() == Some(&handle.entry.info) {
            return;
        }
        let info = handle.entry.info.clone();
        handle.registered = Some(info.clone());
        self.send(Delta::UpsertCluster(info)).await;
    }

    /// When a writer may begin: after the initial sync, and for a live start once its own
    /// lists are in.
    fn writer_ready(&self, synced: watch::Receiver<bool>, live: bool) -> watch::Receiver<bool> {
        let (tx, rx) = watch::channel(false);
        let mut global = self.ready.subscribe();
        let live = live && *self.ready.borrow();
        tokio::spawn(async move {
            if global.wait_for(|r| *r).await.is_err() {
                return;
            }
            if live {
                let mut synced = synced;
                if synced.wait_for(|s| *s).await.is_err() {
                    return;
                }
            }
            let _ = tx.send(true);
        });
        rx
    }

    /// Withdraws a cluster's backends: its watchers and writer stop (its probe goes on, to
    /// notice when it answers again) and the registry forgets it.
    pub(super) async fn withdraw(&mut self, name: &ClusterName) {
        let Some(handle) = self.clusters.get_mut(name) else {
            return;
        };
        let mut writer = None;
        if let Some(running) = handle.running.as_mut() {
            running.watch = None;
            writer = running.writer.take();
        }
        handle.watch_state = WatchState::new(name.clone());
        stop_writer(writer).await;
        let Some(handle) = self.clusters.get_mut(name) else {
            return;
        };
        if handle.registered.take().is_some() {
            self.send(Delta::RemoveCluster(name.clone())).await;
        }
    }

    /// A withdrawn cluster answers again: registered again with its Secret's settings,
    /// listed anew, written to once those lists are in.
    pub(super) async fn restart(&mut self, name: &ClusterName) {
        let client = self
            .clusters
            .get(name)
            .and_then(|h| h.running.as_ref())
            .map(|r| r.client.clone());
        if let Some(client) = client {
            info!(cluster = %name, "cluster back; listing it again before writing to it");
            self.start(name, client, true).await;
        }
    }

    /// Unregisters a cluster whose Secret stayed gone: stops it, withdraws its backends,
    /// and with `--cleanup-on-remove` deletes what this installation wrote in it.
    pub(super) async fn remove(&mut self, name: &ClusterName) {
        let Some(mut handle) = self.clusters.remove(name) else {
            return;
        };
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name);
        let (client, writer) = handle.stop_tasks();
        // Stopped before anything else: no write lands after the claim or the cleanup.
        stop_writer(writer).await;
        // Sharded: only the claim's holder cleans up, fenced by its membership (the claim
        // goes with the cluster).
        let cleanup = self.options.cleanup_on_remove && self.writes_to(name);
        self.forget_shared(name, handle.followed).await;
        let labels = crate::metrics::ClusterLabels {
            cluster: name.to_string(),
        };
        self.metrics.conflicts.remove(&labels);
        self.metrics.writes_held.remove(&labels);
        info!(cluster = %name, secret = handle.secret.name.as_deref().unwrap_or_default(), "cluster unregistered; its backends are withdrawn everywhere");
        let note = format!("cluster {name} is unregistered: no Secret registers it any more");
        self.publish(
            &handle.secret,
            kube::runtime::events::EventType::Normal,
            "ClusterRemoved",
            &note,
        )
        .await;
        if handle.registered.is_some() {
            self.send(Delta::RemoveCluster(name.clone())).await;
        }
        if let (true, Some(client)) = (cleanup, client) {
            let namespace = self.options.settings.render.namespace.clone();
            let instance = self.options.instance.clone();
            let fence = self.fence.clone();
            let span = info_span!("cleanup", cluster = %name);
            tokio::spawn(
                async move { crate::sync::cleanup(client, &namespace, &instance, &fence).await }
                    .instrument(span),
            );
        }
    }
}
