//! The registry's only owner and mutator: folds every delta (and the manager's commands,
//! first) into the registry, publishes an immutable view after each batch, and tells each
//! writer which hosts changed.
//!
//! The view goes out on a `tokio::sync::watch` (readers want the latest one). The change set
//! goes through each writer's own queue instead: a watch keeps only the latest value, so a
//! writer busy with a long pass would miss the hosts of the batches in between; the queues
//! merge them.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tracing::info;

use super::{Queues, RegistryCommand};
use crate::metrics::Metrics;
use crate::registry::{ChangeSet, Registry, RegistryView};
use crate::sync::Work;
use crate::watch::WatchMessage;

/// Most messages folded into one batch (one view published per batch).
const BATCH: usize = 512;

/// What the loop receives.
pub(super) struct Inputs {
    /// The manager's commands; served before deltas.
    pub(super) commands: mpsc::Receiver<RegistryCommand>,
    /// Deltas and list markers from every cluster's watchers and from the manager.
    pub(super) updates: mpsc::Receiver<WatchMessage>,
}

/// Runs until every sender of deltas is gone.
pub(super) async fn registry_loop(
    mut inputs: Inputs,
    mut registry: Registry,
    views: watch::Sender<RegistryView>,
    queues: Queues,
    metrics: Arc<Metrics>,
) {
    let mut batch = Vec::new();
    loop {
        let command = tokio::select! {
            // Commands first: a VIP restore sent before a cluster's watchers start is applied
            // before any of their deltas.
            biased;
            Some(command) = inputs.commands.recv() => Some(command),
            received = inputs.updates.recv_many(&mut batch, BATCH) => {
                if received == 0 {
                    return;
                }
                None
            }
        };
        if let Some(command) = command {
            // A command that changed the registry is published whatever its change set says
            // (publishing what did not change costs microseconds).
            if let Some(changes) = run_command(&mut registry, command) {
                views.send_replace(registry.publish());
                fan_out(&queues, &changes, None);
            }
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
        // Published before anyone hears of the batch: a writer told of a host, or a cluster
        // marked listed, always finds it in the view.
        views.send_replace(registry.publish());
        for synced in listed {
            let _ = synced.send(true);
        }
        fan_out(&queues, &changes, since);
    }
}

/// Carries out a manager's command on the registry; what it changed, unless it only read.
fn run_command(registry: &mut Registry, command: RegistryCommand) -> Option<ChangeSet> {
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
            Some(ChangeSet::default())
        }
        RegistryCommand::PruneVips => Some(registry.prune_vips()),
        RegistryCommand::Warnings(reply) => {
            let _ = reply.send(registry.warnings());
            None
        }
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
