//! One cluster's watch task: reads the merged watch streams, sends the deltas they mean to
//! the registry loop in order, says when every kind has been listed, and which kinds keep
//! failing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::Client;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info, info_span, warn};

use super::health::{KindHealth, WatchHealth};
use super::steps::handle;
use super::streams::{self, Kind, Opened, is_forbidden};
use super::tracker::{Step, Tracker};
use crate::connect::describe;
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

/// How often the watch task looks for kinds whose failures stopped without news.
const HEALTH_TICK: Duration = Duration::from_secs(5);

/// What a cluster's watchers have reported so far. It outlives a reconnect (rotated
/// credentials), so the new connection's first list removes exactly what vanished in
/// between instead of withdrawing the cluster, and a kind degraded before the reconnect
/// stays so until it is read again (rather than reported recovered, then degraded again).
#[derive(Debug)]
pub struct WatchState {
    cluster: ClusterName,
    trackers: BTreeMap<Kind, Tracker>,
    health: BTreeMap<Kind, KindHealth>,
}

impl WatchState {
    /// Nothing reported yet.
    pub fn new(cluster: ClusterName) -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self {
            cluster,
            trackers: BTreeMap::new(),
            health: BTreeMap::new(),
        }))
    }

    fn tracker(&mut self, kind: Kind) -> &mut Tracker {
        let cluster = self.cluster.clone();
        self.trackers
            .entry(kind)
            .or_insert_with(|| Tracker::new(cluster))
    }

    /// Records the outcome of an attempt to read `kind`; whether the report may have changed
    /// (on a failure it may, even without a transition: the reason of a degraded kind).
    fn observe(&mut self, kind: Kind, outcome: Result<(), String>, now: Instant) -> bool {
        let failed = outcome.is_err();
        let transition = self.health.entry(kind).or_default().observe(outcome, now);
        transition.is_some() || failed
    }

    /// Whether `kind`'s failures have already been reported.
    fn is_degraded(&self, kind: Kind) -> bool {
        self.health
            .get(&kind)
            .is_some_and(|h| h.degraded().is_some())
    }

    /// Time passes: kinds whose failures stopped long enough ago recover. Whether any did.
    fn tick(&mut self, kinds: &BTreeSet<Kind>, now: Instant) -> bool {
        kinds.iter().fold(false, |changed, kind| {
            let health = self.health.entry(*kind).or_default();
            health.tick(now).is_some() || changed
        })
    }

    /// The health of `kinds`, for the runtime.
    fn report(&self, kinds: &BTreeSet<Kind>) -> WatchHealth {
        let kinds = kinds
            .iter()
            .map(|kind| {
                let reason = self.health.get(kind).and_then(KindHealth::degraded);
                (kind.name(), reason.map(str::to_owned))
            })
            .collect();
        WatchHealth { kinds }
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
    /// Which kinds are degraded (their list or watch keeps failing) and why.
    pub health: watch::Receiver<WatchHealth>,
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
    let (health_tx, health) = watch::channel(WatchHealth::default());
    let cluster = lock(&state).cluster.clone();
    let span = info_span!("watch", cluster = %cluster);
    let task = tokio::spawn(
        run(cluster, state, client, config, tx, synced_tx, health_tx).instrument(span),
    );
    ClusterWatch {
        synced,
        health,
        task,
    }
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
    health: watch::Sender<WatchHealth>,
) {
    let Opened {
        events: mut streams,
        kinds,
    } = streams::open(&client, &config).await;
    let mut pending = kinds.clone();
    let publish = || {
        let report = lock(&state).report(&kinds);
        health.send_if_modified(|current| {
            let changed = *current != report;
            if changed {
                *current = report;
            }
            changed
        });
    };
    publish();
    let mut tick = tokio::time::interval(HEALTH_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let (kind, event) = tokio::select! {
            next = streams.next() => match next {
                Some(next) => next,
                None => return,
            },
            _ = tick.tick() => {
                if lock(&state).tick(&kinds, Instant::now()) {
                    publish();
                }
                continue;
            }
        };
        let received = Instant::now();
        let event = match event {
            Ok(event) => {
                // Anything but the announcement of a list shows the kind is read.
                if !event.is_init() && lock(&state).observe(kind, Ok(()), received) {
                    publish();
                }
                event
            }
            Err(err) => {
                let reason = describe::watch_error(&err, kind.resource());
                // Once degraded, the failure has been reported (Event, warning) and a failed
                // list is retried about once a second: no warning for each retry.
                if lock(&state).is_degraded(kind) {
                    debug!(kind = kind.name(), reason, "watch failed again");
                } else {
                    warn!(kind = kind.name(), reason, "watch failed; retrying");
                }
                if lock(&state).observe(kind, Err(reason), received) {
                    publish();
                }
                // Istio's namespace and Gateways refine what federator writes, and the MCS
                // API's objects add to it; without read access to them (an older RBAC) the
                // cluster still federates: with the network from its Secret or its name, and
                // without its exports.
                if matches!(
                    kind,
                    Kind::MeshNamespace
                        | Kind::IstioGateway
                        | Kind::ServiceExport
                        | Kind::ClusterProperty
                ) && is_forbidden(&err)
                    && pending.remove(&kind)
                {
                    warn!(
                        kind = kind.name(),
                        "no read access: not waiting for this kind; grant list and watch on it"
                    );
                    if pending.is_empty()
                        && tx.send(WatchMessage::Listed(synced.clone())).await.is_err()
                    {
                        return;
                    }
                }
                continue;
            }
        };
        let (step, done) = handle(&cluster, &config, lock(&state).tracker(kind), event);
        if send_step(&state, kind, step, &tx, received).await.is_err() {
            return;
        }
        if done && pending.remove(&kind) && pending.is_empty() {
            info!("initial list complete");
            if tx.send(WatchMessage::Listed(synced.clone())).await.is_err() {
                return;
            }
        }
    }
}

/// The registry loop is gone.
#[derive(Debug)]
struct Closed;

/// Sends a step's deltas, then commits it to the kind's tracker: an abort while waiting for
/// room in the channel then loses nothing (see [`Step`]).
async fn send_step(
    state: &Mutex<WatchState>,
    kind: Kind,
    step: Step,
    tx: &mpsc::Sender<WatchMessage>,
    received: Instant,
) -> Result<(), Closed> {
    let Step { deltas, commit } = step;
    for delta in deltas {
        tx.send(WatchMessage::Delta(Update { delta, received }))
            .await
            .map_err(|_| Closed)?;
    }
    lock(state).tracker(kind).commit(commit);
    Ok(())
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;
    use crate::fixtures::service;
    use crate::model::Object;

    fn key() -> crate::watch::ApiKey {
        ("Service", "ns".into(), "a".into())
    }

    /// A reconnect aborts the task while it waits for room to send a Remove: the next relist
    /// (same watch state) still sends that Remove.
    #[test]
    fn a_remove_survives_an_abort_while_the_channel_is_full() {
        let state = WatchState::new("east".into());
        let (tx, mut rx) = mpsc::channel(1);
        let object = Object::Service(service("ns", "a").port("http", 80));
        let step = lock(&state)
            .tracker(Kind::Service)
            .apply(key(), Some(object));
        let sent = send_step(&state, Kind::Service, step, &tx, Instant::now());
        assert!(sent.now_or_never().is_some_and(|r| r.is_ok()));
        assert!(rx.try_recv().is_ok(), "the Upsert went out");

        // The channel is full when the Service is deleted.
        tx.try_send(WatchMessage::Listed(watch::channel(false).0))
            .unwrap();
        let step = lock(&state).tracker(Kind::Service).delete(key());
        let blocked = send_step(&state, Kind::Service, step, &tx, Instant::now());
        assert!(
            blocked.now_or_never().is_none(),
            "waits for room, then is aborted"
        );

        // The new task relists; the Service is gone.
        let mut state = lock(&state);
        let tracker = state.tracker(Kind::Service);
        let init = tracker.init();
        tracker.commit(init.commit);
        let removed = tracker.init_done().deltas;
        assert!(
            matches!(removed.as_slice(), [Delta::Remove(_, r)] if r.to_string() == "Service ns/a"),
            "{removed:?}"
        );
    }

    #[test]
    fn the_report_names_every_kind_and_why_the_degraded_ones_are() {
        let state = WatchState::new("east".into());
        let mut state = lock(&state);
        let kinds = BTreeSet::from([Kind::Service, Kind::EndpointSlice]);
        let t0 = Instant::now();
        for s in [0, 10, 20, 40] {
            let at = t0 + Duration::from_secs(s);
            assert!(state.observe(Kind::EndpointSlice, Err("forbidden".into()), at));
            assert!(!state.observe(Kind::Service, Ok(()), at));
        }
        let report = state.report(&kinds);
        assert_eq!(
            report.kinds,
            BTreeMap::from([
                ("EndpointSlice", Some("forbidden".into())),
                ("Service", None)
            ])
        );
        // A new task (after a reconnect) starts from the same state: still degraded.
        assert_eq!(state.report(&kinds), report);
        assert!(state.tick(
            &kinds,
            t0 + Duration::from_secs(40) + crate::watch::health::QUIET * 2
        ));
        assert_eq!(state.report(&kinds).degraded().count(), 0);
    }
}
