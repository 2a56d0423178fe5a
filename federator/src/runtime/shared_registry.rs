//! The registry loop's side of sharing clusters with other replicas: the objects of the
//! clusters this replica owns come from its own watchers and are published; the others'
//! come from following what their owners publish. A cluster changing hands is listed again
//! by its new source, and what that source does not give is removed then
//! ([`federator_core::planner::handoffs`]).

use std::collections::BTreeSet;

use federator_core::planner::handoffs::{Handoffs, Source};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::model::ClusterName;
use crate::registry::{ChangeSet, Delta, Registry};
use crate::shard::claims::Claimed;
use crate::shard::follow::SharedUpdate;
use crate::shard::objects::Publisher;

/// What the registry loop holds when clusters are sharded.
pub(super) struct SharedRegistry {
    publisher: Publisher,
    /// The clusters this replica's own watchers feed (the manager keeps it).
    local: watch::Receiver<BTreeSet<ClusterName>>,
    /// The clusters this replica may write to (and so publish).
    claimed: watch::Receiver<Claimed>,
    /// The clusters published whole by their owners (listed marks seen), for the manager:
    /// until then a followed cluster counts as not listed.
    listed: watch::Sender<BTreeSet<ClusterName>>,
    handoffs: Handoffs,
    /// Owned clusters whose own watchers have listed since they started: publishable.
    settled: BTreeSet<ClusterName>,
    /// The local clusters as last seen.
    was_local: BTreeSet<ClusterName>,
    /// The listed marks seen; sent to the manager once the first listing is done.
    marks: BTreeSet<ClusterName>,
    listing_done: bool,
}

impl SharedRegistry {
    pub(super) fn new(
        publisher: Publisher,
        local: watch::Receiver<BTreeSet<ClusterName>>,
        claimed: watch::Receiver<Claimed>,
        listed: watch::Sender<BTreeSet<ClusterName>>,
        handoffs: Handoffs,
    ) -> Self {
        Self {
            publisher,
            local,
            claimed,
            listed,
            handoffs,
            settled: BTreeSet::new(),
            was_local: BTreeSet::new(),
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
            Delta::UpsertCluster(_) => {}
        }
        self.publisher.record(delta);
    }

    /// This replica's watchers of `cluster` start: what they list replaces what the
    /// registry holds of it.
    pub(super) fn watching(&mut self, cluster: &ClusterName) {
        self.handoffs.begin(cluster.clone(), Source::Watchers);
        self.settled.remove(cluster);
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
        self.settled.insert(cluster.clone());
        let held = registry.references(cluster);
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
                SharedUpdate::Relisting(handed_back) => {
                    for cluster in handed_back {
                        self.handoffs.begin(cluster, Source::Shared);
                    }
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

    /// Publishes what is due: the changes of clusters published under their claims, and
    /// each owned cluster claimed and listed here but not published whole under its
    /// current claim yet. A cluster handed to another replica stops being published.
    pub(super) async fn publish(&mut self) {
        let local = self.local.borrow().clone();
        for gone in self.was_local.difference(&local) {
            self.publisher.unpublish(gone, true);
            self.settled.remove(gone);
        }
        self.was_local = local;
        let claimed = self.claimed.borrow().clone();
        for cluster in &self.settled {
            let Some(revision) = claimed.revisions.get(cluster).copied() else {
                continue;
            };
            if !claimed.writable.contains(cluster) {
                self.publisher.unpublish(cluster, false);
                continue;
            }
            if self.publisher.published(cluster) == Some(revision) {
                continue;
            }
            match self.publisher.publish(cluster, revision).await {
                Ok(()) => info!(%cluster, claim = revision, "cluster published whole"),
                Err(err) => warn!(error = %err, "cluster not published; retrying"),
            }
        }
        for err in self.publisher.flush().await {
            warn!(error = %err, "objects not published; retrying");
        }
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
