//! One cluster's watch task: reads the merged watch streams, sends the deltas they mean to
//! the registry loop in order, and says when every kind has been listed.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use kube::Client;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{Instrument, info, info_span, warn};

use super::steps::handle;
use super::streams::{self, Kind, Opened, is_forbidden};
use super::tracker::Tracker;
use crate::ingest::IngestConfig;
use crate::model::ClusterName;
use crate::registry::Delta;

/// A delta and when its watch event arrived (for propagation latency).
#[derive(Debug, Clone)]
pub struct Update {
    /// The change.
    pub delta: Delta,
    /// When the watch event that caused it was received.
    pub received: Instant,
}

/// What a cluster's watchers have reported so far. It outlives a reconnect (rotated
/// credentials), so the new connection's first list removes exactly what vanished in
/// between instead of withdrawing the cluster.
#[derive(Debug)]
pub struct WatchState {
    cluster: ClusterName,
    trackers: std::collections::BTreeMap<Kind, Tracker>,
}

impl WatchState {
    /// Nothing reported yet.
    pub fn new(cluster: ClusterName) -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self {
            cluster,
            trackers: std::collections::BTreeMap::new(),
        }))
    }

    fn tracker(&mut self, kind: Kind) -> &mut Tracker {
        let cluster = self.cluster.clone();
        self.trackers
            .entry(kind)
            .or_insert_with(|| Tracker::new(cluster))
    }
}

/// What the watchers send to the registry loop, in order.
// Deltas are the common case and the marker is rare: boxing every delta to shrink the marker
// would cost an allocation per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum WatchMessage {
    /// A change to fold into the registry.
    Delta(Update),
    /// Every kind of the cluster has been listed completely: once the registry loop has
    /// applied everything sent before this, it marks the cluster synced (so nothing is
    /// written from a registry that has not yet absorbed the cluster's lists).
    Listed(watch::Sender<bool>),
}

/// A running set of watchers for one cluster; stops when dropped.
#[derive(Debug)]
pub struct ClusterWatch {
    /// Turns true once every kind has been listed completely at least once and the registry
    /// has applied those lists.
    pub synced: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl Drop for ClusterWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts watching `cluster`, sending deltas to `tx`.
pub fn watch_cluster(
    state: Arc<Mutex<WatchState>>,
    client: Client,
    config: IngestConfig,
    tx: mpsc::Sender<WatchMessage>,
) -> ClusterWatch {
    let (synced_tx, synced) = watch::channel(false);
    let cluster = lock(&state).cluster.clone();
    let span = info_span!("watch", cluster = %cluster);
    let task = tokio::spawn(run(cluster, state, client, config, tx, synced_tx).instrument(span));
    ClusterWatch { synced, task }
}

fn lock(state: &Mutex<WatchState>) -> std::sync::MutexGuard<'_, WatchState> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn run(
    cluster: ClusterName,
    state: Arc<Mutex<WatchState>>,
    client: Client,
    config: IngestConfig,
    tx: mpsc::Sender<WatchMessage>,
    synced: watch::Sender<bool>,
) {
    let Opened {
        events: mut streams,
        kinds: mut pending,
    } = streams::open(&client, &config).await;
    while let Some((kind, event)) = streams.next().await {
        let received = Instant::now();
        let event = match event {
            Ok(event) => event,
            Err(err) => {
                warn!(kind = ?kind, error = %err, "watch failed; retrying with backoff");
                // Istio's namespace and Gateways refine what federator writes; without read
                // access to them (an older RBAC) the cluster still federates, with the
                // network from its Secret or its name.
                if matches!(kind, Kind::MeshNamespace | Kind::IstioGateway)
                    && is_forbidden(&err)
                    && pending.remove(&kind)
                {
                    warn!(kind = ?kind, "no read access: not waiting for this kind; grant list and watch on it");
                    if pending.is_empty()
                        && tx.send(WatchMessage::Listed(synced.clone())).await.is_err()
                    {
                        return;
                    }
                }
                continue;
            }
        };
        let (deltas, done) = {
            let mut state = lock(&state);
            handle(&cluster, &config, state.tracker(kind), event)
        };
        for delta in deltas {
            if tx
                .send(WatchMessage::Delta(Update { delta, received }))
                .await
                .is_err()
            {
                return;
            }
        }
        if done && pending.remove(&kind) && pending.is_empty() {
            info!("initial list complete");
            if tx.send(WatchMessage::Listed(synced.clone())).await.is_err() {
                return;
            }
        }
    }
}
