//! The registry's only owner and mutator: folds every delta (and the manager's commands,
//! first) into the registry, records new VIPs in the shared store, publishes an immutable
//! view after each batch, and tells each writer which hosts changed.
//!
//! The view goes out on a `tokio::sync::watch` (readers want the latest one). The change set
//! goes through each writer's own queue instead: a watch keeps only the latest value, so a
//! writer busy with a long pass would miss the hosts of the batches in between; the queues
//! merge them.
//!
//! The loop is also the writers' gate to a new leader term: it reads the VIP store and adopts
//! what the previous leader recorded before it passes the term on to the writers.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::shared_registry::SharedRegistry;
use super::vip_store::VipStore;
use super::{Queues, RegistryCommand};
use crate::leader::{Fence, Term};
use crate::metrics::Metrics;
use crate::registry::{ChangeSet, Registry, RegistryView};
use crate::shard::follow::SharedUpdate;
use crate::sync::Work;
use crate::watch::WatchMessage;

/// Most messages folded into one batch (one view published per batch).
const BATCH: usize = 512;

/// How often a follower looks for the leader's new VIPs (and a leader retries a failed
/// store write).
const STORE_POLL: Duration = Duration::from_secs(2);

/// What the loop receives.
pub(super) struct Inputs {
    /// The manager's commands; served before deltas.
    pub(super) commands: mpsc::Receiver<RegistryCommand>,
    /// Deltas and list markers from every cluster's watchers and from the manager.
    pub(super) updates: mpsc::Receiver<WatchMessage>,
    /// This replica's terms, as the election publishes them.
    pub(super) terms: watch::Receiver<Option<Term>>,
    /// When clusters are sharded: the clusters shared with the other replicas.
    pub(super) shared: Option<SharedInputs>,
}

/// The registry loop's inputs when clusters are sharded.
pub(super) struct SharedInputs {
    /// What the loop keeps of the sharing.
    pub(super) registry: SharedRegistry,
    /// What following the others' clusters brings.
    pub(super) updates: mpsc::Receiver<SharedUpdate>,
}

/// Where the loop's results go.
pub(super) struct Outputs {
    /// The published views.
    pub(super) views: watch::Sender<RegistryView>,
    /// The terms passed on to the writers (once the VIP store is read).
    pub(super) writer_terms: watch::Sender<Option<Term>>,
    /// The writers' queues.
    pub(super) queues: Queues,
    pub(super) metrics: Arc<Metrics>,
}

/// Runs until every sender of deltas is gone.
pub(super) async fn registry_loop(
    mut inputs: Inputs,
    mut registry: Registry,
    mut store: VipStore,
    out: Outputs,
) {
    let mut batch = Vec::new();
    let mut shared_batch = Vec::new();
    let (mut shared, mut shared_updates) = match inputs.shared.take() {
        Some(inputs) => (Some(inputs.registry), Some(inputs.updates)),
        None => (None, None),
    };
    let writers = Fence::new(out.writer_terms.subscribe());
    // The elector's own view: store writes stop the moment the term ends.
    let elected = Fence::new(inputs.terms.clone());
    let mut terms_open = true;
    // No delta is applied before the VIPs given out before are back (the manager reads them
    // beside the clusters' first lists): a host must not get a new address first.
    let mut vips_restored = false;
    let mut poll = tokio::time::interval(STORE_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A term already held (the only writer) is passed on like any new one.
    inputs.terms.mark_changed();
    loop {
        enum Next {
            Command(RegistryCommand),
            Batch,
            Shared,
            Term(Option<Term>),
            Poll,
        }
        let next = tokio::select! {
            // Commands first: the VIP restore, before any delta.
            biased;
            Some(command) = inputs.commands.recv() => Next::Command(command),
            changed = inputs.terms.changed(), if terms_open => match changed {
                Ok(()) => Next::Term(*inputs.terms.borrow_and_update()),
                Err(_) => {
                    terms_open = false;
                    continue;
                }
            },
            received = inputs.updates.recv_many(&mut batch, BATCH), if vips_restored => {
                if received == 0 {
                    return;
                }
                Next::Batch
            }
            received = recv_shared(&mut shared_updates, &mut shared_batch), if vips_restored => {
                if received == 0 {
                    shared_updates = None;
                    continue;
                }
                Next::Shared
            }
            _ = poll.tick() => Next::Poll,
        };
        let changes = match next {
            Next::Command(RegistryCommand::Watching(cluster)) => {
                if let Some(shared) = shared.as_mut() {
                    shared.watching(&cluster);
                }
                continue;
            }
            Next::Command(RegistryCommand::ListedHere(cluster)) => {
                let Some(shared) = shared.as_mut() else {
                    continue;
                };
                shared.listed_here(&mut registry, &cluster)
            }
            Next::Command(RegistryCommand::Forget(cluster)) => {
                if let Some(shared) = shared.as_mut() {
                    shared.forget(&cluster);
                }
                continue;
            }
            Next::Shared => {
                let Some(shared) = shared.as_mut() else {
                    continue;
                };
                let mut changes = shared.fold(&mut registry, std::mem::take(&mut shared_batch));
                store
                    .record_changed(&mut registry, &mut changes, &writers, &elected)
                    .await;
                changes
            }
            Next::Command(command) => {
                vips_restored |= matches!(command, RegistryCommand::RestoreVips(_));
                match run_command(&mut registry, &mut store, command, &out.metrics).await {
                    Some(changes) => changes,
                    None => continue,
                }
            }
            Next::Term(term) => {
                let current = out.writer_terms.borrow().map(|t| t.number);
                let mut changes = ChangeSet::default();
                if let Some(new) = term
                    && current != Some(new.number)
                {
                    // A new term: its writers start only once the store is read. Until
                    // then each renewal (every retry period) tries again.
                    match store.take_over(&mut registry, &elected).await {
                        Some(adopted) => {
                            changes = adopted;
                            info!(term = new.number, "VIP store read; the writers may start");
                        }
                        None => {
                            warn!(
                                term = new.number,
                                "leading, but the VIP store does not answer: the writers wait for it"
                            );
                            continue;
                        }
                    }
                }
                // Published before the writers hear of the term: they render from it.
                out.views.send_replace(registry.publish());
                out.writer_terms.send_replace(term);
                fan_out(&out.queues, &changes, None);
                continue;
            }
            Next::Poll => {
                let changes = if writers.may_write() {
                    if !store.behind() {
                        continue;
                    }
                    store
                        .record(&mut registry, &Default::default(), &elected)
                        .await
                } else {
                    store.follow(&mut registry).await
                };
                if changes.is_empty() {
                    continue;
                }
                changes
            }
            Next::Batch => {
                let since = batch
                    .iter()
                    .filter_map(|m| match m {
                        WatchMessage::Delta(u) => Some(u.received),
                        WatchMessage::Listed(_) => None,
                    })
                    .min();
                let mut changes = ChangeSet::default();
                let mut listed = Vec::new();
                for message in batch.drain(..) {
                    match message {
                        WatchMessage::Delta(update) => {
                            out.metrics.deltas.inc();
                            let Some(shared) = shared.as_mut() else {
                                changes.extend(registry.apply(update.delta));
                                continue;
                            };
                            if shared.admits(&update.delta) {
                                shared.applied_local(&update.delta);
                                changes.extend(registry.apply(update.delta));
                            }
                        }
                        WatchMessage::Listed(synced) => listed.push(synced),
                    }
                }

                out.metrics
                    .registry_hosts
                    .set(i64::try_from(registry.len()).unwrap_or(i64::MAX));
                // Recorded before any writer can see them: no address is written that the
                // store does not hold.
                store
                    .record_changed(&mut registry, &mut changes, &writers, &elected)
                    .await;
                // Published before anyone hears of the batch: a writer told of a host, or a
                // cluster marked listed, always finds it in the view.
                out.views.send_replace(registry.publish());
                for synced in listed {
                    let _ = synced.send(true);
                }
                fan_out(&out.queues, &changes, since);
                continue;
            }
        };
        // A command or a poll that changed the registry is published whatever its change
        // set says (publishing what did not change costs microseconds).
        out.views.send_replace(registry.publish());
        fan_out(&out.queues, &changes, None);
    }
}

/// The next shared updates (0: following ended); never, when not sharded.
async fn recv_shared(
    updates: &mut Option<mpsc::Receiver<SharedUpdate>>,
    batch: &mut Vec<SharedUpdate>,
) -> usize {
    match updates {
        Some(updates) => updates.recv_many(batch, BATCH).await,
        None => std::future::pending().await,
    }
}

/// Carries out a manager's command on the registry; what it changed, unless it only read.
async fn run_command(
    registry: &mut Registry,
    store: &mut VipStore,
    command: RegistryCommand,
    metrics: &Metrics,
) -> Option<ChangeSet> {
    match command {
        RegistryCommand::RestoreVips(recovered) => {
            let (table, disagreements) = store.restore_table(recovered).await;
            metrics
                .vip_disagreements
                .set(i64::try_from(disagreements).unwrap_or(i64::MAX));
            let count = table.len();
            let errors = registry.restore_vips(table);
            for err in &errors {
                tracing::warn!(error = %err, "saved VIP not restored");
            }
            info!(
                restored = count - errors.len(),
                "VIPs restored from the store and the existing ServiceEntries"
            );
            Some(ChangeSet::default())
        }
        RegistryCommand::PruneVips => {
            store.pruned();
            Some(registry.prune_vips())
        }
        RegistryCommand::Warnings(reply) => {
            let _ = reply.send(registry.warnings());
            None
        }
        RegistryCommand::Statuses(reply) => {
            let _ = reply.send(registry.object_statuses());
            None
        }
        // Sharing clusters; carried out by the loop itself.
        RegistryCommand::Watching(_)
        | RegistryCommand::ListedHere(_)
        | RegistryCommand::Forget(_) => None,
    }
}

/// Tells each writer which hosts changed (and which clusters need a full pass).
fn fan_out(queues: &Queues, changes: &ChangeSet, since: Option<std::time::Instant>) {
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
}
