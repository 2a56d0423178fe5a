//! The registry loop's side of sharing clusters with other replicas: the objects of the
//! clusters this replica owns come from its own watchers and are published; the others'
//! come from following what their owners publish. A cluster changing hands is listed again
//! by its new source, and what that source does not give is removed then
//! ([`federator_core::planner::handoffs`]).

use std::collections::BTreeSet;

use federator_core::planner::handoffs::{Handoffs, Source};
use tokio::sync::{mpsc, watch};
use tracing::info;

use super::shared_publish::PublishOp;

use crate::model::ClusterName;
use crate::registry::{ChangeSet, Delta, Registry};
use crate::shard::follow::SharedUpdate;

/// What the registry loop holds when clusters are sharded.
pub(super) struct SharedRegistry {
    /// The publishing task's inbox (it never makes the loop wait).
    publish: mpsc::UnboundedSender<PublishOp>,
    /// The clusters this replica's own watchers feed (the manager keeps it).
    local: watch::Receiver<BTreeSet<ClusterName>>,
    /// The clusters published whole by their owners (listed marks seen), for the manager:
    /// until then a followed cluster counts as not listed.
    listed: watch::Sender<BTreeSet<ClusterName>>,
    handoffs: Handoffs,
    /// The listed marks seen in the current listing and since.
    marks: BTreeSet<ClusterName>,
    /// Whether the current listing is all in (the marks are sent to the manager then).
    listing_done: bool,
}

impl SharedRegistry {
    /// The loop's end of the sharing: changes to publish go to `publish`, the clusters
    /// published whole by their owners to `listed`.
    pub(super) fn new(
        publish: mpsc::UnboundedSender<PublishOp>,
        local: watch::Receiver<BTreeSet<ClusterName>>,
        listed: watch::Sender<BTreeSet<ClusterName>>,
    ) -> Self {
        Self {
            publish,
            local,
            listed,
            handoffs: Handoffs::default(),
            marks: BTreeSet::new(),
            listing_done: false,
        }
    }

    /// Whether a delta from this replica's watchers or manager is applied: an object of a
    /// cluster no longer (or not yet) this replica's is not (its watchers stop; what they
    /// still had in flight is older than what the owner publishes).
    pub(super) fn admits(&self, delta: &Delta) -> bool {
        match delta {
            Delta::Upsert(cluster, _) | Delta::Remove(cluster, _) => {
                self.local.borrow().contains(cluster)
            }
            Delta::UpsertCluster(_) | Delta::RemoveCluster(_) => true,
        }
    }

    /// Notes a delta of this replica's applied to the registry: seen by a pending handoff,
    /// and published.
    pub(super) fn applied_local(&mut self, delta: &Delta) {
        match delta {
            Delta::Upsert(cluster, object) => {
                self.handoffs
                    .saw(cluster, Source::Watchers, &object.reference());
            }
            Delta::Remove(cluster, reference) => {
                self.handoffs.saw(cluster, Source::Watchers, reference);
            }
            Delta::RemoveCluster(cluster) => self.handoffs.forget(cluster),
            Delta::UpsertCluster(_) => return,
        }
        let _ = self.publish.send(PublishOp::Delta(Box::new(delta.clone())));
    }

    /// This replica's watchers of `cluster` start: what they list replaces what the
    /// registry holds of it.
    pub(super) fn watching(&mut self, cluster: &ClusterName) {
        self.handoffs.begin(cluster.clone(), Source::Watchers);
        let _ = self.publish.send(PublishOp::Watching(cluster.clone()));
    }

    /// `cluster` is unregistered, and this replica owned it: nothing of it is pending, and
    /// what is published of it goes.
    pub(super) fn forget(&mut self, cluster: &ClusterName) {
        self.handoffs.forget(cluster);
        let _ = self.publish.send(PublishOp::Forget(cluster.clone()));
    }

    /// This replica's watchers of `cluster` have listed: what they did not give goes, and
    /// the cluster may be published.
    pub(super) fn listed_here(
        &mut self,
        registry: &mut Registry,
        cluster: &ClusterName,
    ) -> ChangeSet {
        if !self.local.borrow().contains(cluster) {
            return ChangeSet::default();
        }
        let _ = self.publish.send(PublishOp::Settled(cluster.clone()));
        let held = registry.references(cluster);
        // What it publishes needs no removal: the cluster is published whole again, from
        // what the watchers listed (`PublishOp::Watching`).
        let left = self.handoffs.finish(cluster, Source::Watchers, held);
        remove_left(
            registry,
            cluster,
            left,
            "not listed by this replica's watchers",
        )
    }

    /// Folds what following brought into the registry.
    pub(super) fn fold(
        &mut self,
        registry: &mut Registry,
        updates: Vec<SharedUpdate>,
    ) -> ChangeSet {
        let mut changes = ChangeSet::default();
        for update in updates {
            match update {
                SharedUpdate::Delta(delta) => {
                    let delta = *delta;
                    let (cluster, reference) = match &delta {
                        Delta::Upsert(c, object) => (c, object.reference()),
                        Delta::Remove(c, reference) => (c, reference.clone()),
                        Delta::UpsertCluster(_) | Delta::RemoveCluster(_) => continue,
                    };
                    if self.local.borrow().contains(cluster) {
                        continue;
                    }
                    self.handoffs.saw(cluster, Source::Shared, &reference);
                    changes.extend(registry.apply(delta));
                }
                SharedUpdate::Listed(cluster) => {
                    self.marks.insert(cluster);
                }
                SharedUpdate::Unlisted(cluster) => {
                    self.marks.remove(&cluster);
                }
                // A new listing: of every cluster followed (the handed back ones, and all
                // those followed before, as a broken watch may have missed deletions), what
                // it does not bring goes once it is in.
                SharedUpdate::Relisting(handed_back) => {
                    let local = self.local.borrow().clone();
                    let followed: BTreeSet<ClusterName> = registry
                        .clusters()
                        .into_iter()
                        .map(|c| c.name.clone())
                        .chain(handed_back)
                        .filter(|c| !local.contains(c))
                        .collect();
                    for cluster in followed {
                        self.handoffs.begin(cluster, Source::Shared);
                    }
                    self.marks.clear();
                    self.listing_done = false;
                }
                SharedUpdate::ListDone => {
                    self.listing_done = true;
                    let local = self.local.borrow().clone();
                    for cluster in self.handoffs.pending(Source::Shared) {
                        if local.contains(&cluster) {
                            // Back here before the listing was done: its watchers decide.
                            continue;
                        }
                        let held = registry.references(&cluster);
                        let left = self.handoffs.finish(&cluster, Source::Shared, held);
                        changes.extend(remove_left(
                            registry,
                            &cluster,
                            left,
                            "not published by its owner",
                        ));
                    }
                }
            }
        }
        if self.listing_done {
            self.listed.send_if_modified(|now| {
                let changed = *now != self.marks;
                now.clone_from(&self.marks);
                changed
            });
        }
        changes
    }
}

/// Removes `left` of `cluster` from the registry (a handoff's leftovers).
fn remove_left(
    registry: &mut Registry,
    cluster: &ClusterName,
    left: Vec<crate::model::ObjectRef>,
    why: &'static str,
) -> ChangeSet {
    let mut changes = ChangeSet::default();
    if !left.is_empty() {
        info!(%cluster, objects = left.len(), why, "objects left from the cluster's previous source removed");
    }
    for reference in left {
        changes.extend(registry.apply(Delta::Remove(cluster.clone(), reference)));
    }
    changes
}
