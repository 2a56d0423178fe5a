//! Cluster lifecycle: Secrets in, running clusters out. The decisions are pure
//! ([`crate::clusters::plan`] decides which clusters exist, [`crate::clusters::health`] what
//! happens to each one's backends); this loop feeds them Secret events, probe results, list
//! completions and the clock, and carries out what they decide.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::runtime::WatchStreamExt;
use kube::runtime::events::{EventType, Recorder, Reporter};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use super::cluster_run::ClusterHandle;
use super::{Queues, RunError, RunOptions};
use crate::clusters::health::Observation;
use crate::metrics::Metrics;
use crate::model::ClusterName;
use crate::registry::{Delta, RegistryView};
use crate::watch::{Update, WatchMessage};

/// Something observed of one cluster by one of its tasks (probe, list watcher).
pub(super) struct ClusterEvent {
    pub(super) cluster: ClusterName,
    /// Which start of the cluster it concerns: older ones are ignored.
    pub(super) generation: u64,
    pub(super) observation: Observation,
}

/// How the manager talks to the rest of the runtime.
pub(super) struct Channels {
    /// Deltas to the registry loop (cluster registrations and withdrawals).
    pub(super) updates: mpsc::Sender<WatchMessage>,
    /// Commands to the registry loop (VIP restore and prune).
    pub(super) commands: mpsc::Sender<super::RegistryCommand>,
    /// The start-up gate.
    pub(super) ready: watch::Sender<bool>,
    /// Whether this replica leads.
    pub(super) fence: crate::leader::Fence,
    /// Shutting down.
    pub(super) stop: watch::Receiver<bool>,
}

pub(super) struct Manager {
    pub(super) options: RunOptions,
    config: Client,
    /// The registry as its loop last published it.
    pub(super) views: watch::Receiver<RegistryView>,
    pub(super) queues: Queues,
    pub(super) metrics: Arc<Metrics>,
    pub(super) updates: mpsc::Sender<WatchMessage>,
    pub(super) commands: mpsc::Sender<super::RegistryCommand>,
    pub(super) ready: watch::Sender<bool>,
    pub(super) unlisted: watch::Sender<BTreeSet<ClusterName>>,
    pub(super) recorder: Recorder,
    pub(super) clusters: BTreeMap<ClusterName, ClusterHandle>,
    /// The cluster Secrets, parsed.
    pub(super) store: super::cluster_set::SecretStore,
    pub(super) events_tx: mpsc::Sender<ClusterEvent>,
    events_rx: mpsc::Receiver<ClusterEvent>,
    pub(super) generation: u64,
    /// Clusters the start-up gate waits for.
    startup: Option<BTreeSet<ClusterName>>,
    /// When the VIPs read back at start-up went to the registry loop (vip_restore.rs): the
    /// clusters' deltas wait for them, so the start-up wait counts from then.
    pub(super) vips_restored: watch::Sender<Option<Instant>>,
    /// The VIPs restored at start-up are not pruned yet: that waits until no cluster is
    /// unlisted, or a host only such a cluster serves would lose its address while its
    /// objects are held.
    prune_pending: bool,
    /// Hosts each cluster is held back from exporting by its quota, as last reported.
    pub(super) over_quota: BTreeMap<ClusterName, usize>,
    /// Registry diagnostics as last reported.
    pub(super) diagnostics: super::diagnostics_report::DiagnosticsState,
    /// Each cluster's watch health as last reported, shared with `/readyz` (watch_report.rs).
    pub(super) watch_health: watch::Sender<super::watch_report::WatchHealths>,
    /// Every cluster's status, for the gRPC API (cluster_status.rs).
    pub(super) statuses: watch::Sender<super::ClusterStatuses>,
    /// Whether this replica leads (and its writers write).
    pub(super) fence: crate::leader::Fence,
    /// Writes the status of policies and Dependencies (object_status.rs).
    pub(super) object_status: super::object_status::StatusReporter,
    /// When clusters are sharded across replicas (shard_run.rs).
    pub(super) shard: Option<super::shard_run::ShardLink>,
    /// Shutting down: every writer is stopped and waited for before `run` returns.
    stop: watch::Receiver<bool>,
}

impl Manager {
    pub(super) fn new(
        options: RunOptions,
        config: Client,
        views: watch::Receiver<RegistryView>,
        queues: Queues,
        metrics: Arc<Metrics>,
        channels: Channels,
    ) -> Self {
        let recorder = Recorder::new(
            config.clone(),
            Reporter {
                controller: "federator".into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        );
        let (events_tx, events_rx) = mpsc::channel(256);
        Self {
            options,
            config,
            views,
            queues,
            metrics,
            updates: channels.updates,
            commands: channels.commands,
            ready: channels.ready,
            unlisted: watch::channel(BTreeSet::new()).0,
            recorder,
            clusters: BTreeMap::new(),
            store: super::cluster_set::SecretStore::default(),
            events_tx,
            events_rx,
            generation: 0,
            startup: None,
            vips_restored: watch::Sender::new(None),
            prune_pending: true,
            over_quota: BTreeMap::new(),
            diagnostics: Default::default(),
            watch_health: watch::Sender::new(Default::default()),
            statuses: watch::Sender::new(Default::default()),
            object_status: super::object_status::StatusReporter::start(channels.fence.clone()),
            fence: channels.fence,
            shard: None,
            stop: channels.stop,
        }
    }

    /// Shares the clusters with other replicas through `link`.
    pub(super) fn sharing(mut self, link: Option<super::shard_run::ShardLink>) -> Self {
        self.shard = link;
        self
    }

    /// Runs until the Secrets can no longer be watched, the membership is lost or `stop`;
    /// every writer is stopped and waited for before it returns.
    pub(super) async fn run(mut self) -> Result<(), RunError> {
        let result = self.manage().await;
        self.stop_writers().await;
        result
    }

    async fn manage(&mut self) -> Result<(), RunError> {
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
        self.start_initial_clusters().await;
        self.startup = Some(self.clusters.keys().cloned().collect());
        self.after_change().await;
        let mut restored = self.vips_restored.subscribe();

        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut relisted: Option<Vec<Secret>> = None;
        let (mut members, mut claims, mut marks, mut term) = match &self.shard {
            Some(link) => (
                Some(link.members.clone()),
                Some(link.claimed.clone()),
                Some(link.listed.clone()),
                Some(link.term.clone()),
            ),
            None => (None, None, None, None),
        };
        self.rebalance().await;
        self.sync_writers().await;
        let mut stop = self.stop.clone();
        loop {
            tokio::select! {
                Ok(()) = stop.changed() => return Ok(()),
                true = changed(&mut members) => self.rebalance().await,
                true = changed(&mut claims) => self.sync_writers().await,
                true = changed(&mut marks) => {}
                true = changed(&mut term) => {
                    if term.as_ref().is_some_and(|t| t.borrow().is_none()) {
                        error!("membership lease expired; stopping every writer and exiting so the replica joins afresh");
                        return Err(RunError::MembershipLost);
                    }
                }
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
                Some(event) = self.events_rx.recv() => {
                    let current = self
                        .clusters
                        .get(&event.cluster)
                        .is_some_and(|h| h.generation() == Some(event.generation));
                    if current {
                        if matches!(event.observation, Observation::Listed) {
                            self.listed_here(&event.cluster).await;
                        }
                        self.observe(&event.cluster, event.observation).await;
                    }
                }
                Ok(()) = restored.changed(), if self.startup.is_some() => {}
                _ = tick.tick() => {
                    self.tick_all().await;
                    self.report_quotas().await;
                    // Diagnostics of a registry still filling up would be noise.
                    if *self.ready.borrow() {
                        self.report_diagnostics().await;
                        self.report_object_statuses().await;
                    }
                    self.report_watch_health().await;
                }
            }
            self.after_change().await;
        }
    }

    /// Publishes what writers need after any change: the clusters not listed yet, and the
    /// start-up gate once every cluster present at start-up listed (or the timeout passed).
    async fn after_change(&mut self) {
        let unlisted: BTreeSet<ClusterName> = self
            .clusters
            .iter()
            .filter(|(n, h)| match h.followed {
                true => self.followed_unlisted(n),
                false => h.health.unlisted(),
            })
            .map(|(n, _)| n.clone())
            .collect();
        self.report_sharding();
        self.unlisted.send_if_modified(|now| {
            let changed = *now != unlisted;
            *now = unlisted.clone();
            changed
        });
        // Nothing opens before the VIPs are back (and so no prune can overtake them).
        let restored = *self.vips_restored.borrow();
        if let (Some(waited), Some(restored)) = (&self.startup, restored) {
            let pending: Vec<&ClusterName> =
                waited.iter().filter(|n| unlisted.contains(*n)).collect();
            let timed_out = Instant::now() >= restored + self.options.initial_sync_timeout;
            if pending.is_empty() || timed_out {
                if !pending.is_empty() {
                    warn!(clusters = ?pending, timeout = ?self.options.initial_sync_timeout, "starting without clusters that have not listed their objects yet; nothing drops their backends until they do");
                }
                // Deletes open with it (the writers' `deletes` gate is this same channel).
                let _ = self.ready.send(true);
                info!("initial sync done; writing");
                self.startup = None;
            }
        }
        if self.startup.is_none() && self.prune_pending && unlisted.is_empty() {
            self.prune_pending = false;
            let _ = self.commands.send(super::RegistryCommand::PruneVips).await;
        }
        self.update_gauges();
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

    /// An Event on a cluster Secret. Every replica reports what it finds in the Secrets (a
    /// follower's Events say the same as the leader's, under its own instance): they are
    /// diagnostics of the config cluster, and a leader elected later would not see them
    /// again.
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

    fn update_gauges(&self) {
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.metrics
            .clusters_registered
            .set(count(self.clusters.len()));
        let connected = self
            .clusters
            .values()
            .filter(|h| h.health.answering())
            .count();
        self.metrics.clusters_connected.set(count(connected));
    }
}

/// Whether a watched value changed (false once it ends); never, when there is none.
async fn changed<T>(receiver: &mut Option<watch::Receiver<T>>) -> bool {
    match receiver {
        Some(receiver) => receiver.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}
