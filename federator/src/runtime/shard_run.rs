//! The manager's side of sharing clusters with other replicas: it watches the clusters
//! this replica owns (rendezvous over the live members), starts a cluster's writer only
//! while this replica holds its claim, and reports which claims its writers reflect so a
//! claim is released only once the writer stopped. A cluster it does not own is followed:
//! no client, no probe; it counts as listed once its owner published it whole.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use federator_core::planner::shards;
use tokio::sync::watch;
use tracing::info;

use super::cluster_tasks::stop_writer;
use super::manager::Manager;
use crate::leader::Fence;
use crate::model::ClusterName;
use crate::shard::claims::{Claimed, Writing};
use crate::shard::fences::ClusterFences;
use crate::shard::membership::Members;
use crate::sync::spawn_writer;
use crate::watch::WatchState;

/// The manager's end of the sharing.
pub(super) struct ShardLink {
    /// This replica's name among the members.
    pub(super) replica: String,
    /// Until when it may act as a member; `None` once its lease is gone.
    pub(super) term: watch::Receiver<Option<std::time::Instant>>,
    /// The live members.
    pub(super) members: watch::Receiver<Members>,
    /// The claims as last read.
    pub(super) claimed: watch::Receiver<Claimed>,
    /// Every registered cluster, for the claims.
    pub(super) clusters: watch::Sender<BTreeSet<ClusterName>>,
    /// What this replica's writers reflect, for the claims.
    pub(super) writing: watch::Sender<Writing>,
    /// The clusters this replica's own watchers feed.
    pub(super) local: watch::Sender<BTreeSet<ClusterName>>,
    /// The clusters their owners published whole.
    pub(super) listed: watch::Receiver<BTreeSet<ClusterName>>,
    /// Each cluster's writer fence.
    pub(super) fences: Arc<Mutex<ClusterFences>>,
}

impl Manager {
    /// Whether this replica watches `name`: every cluster when not sharded; when sharded,
    /// those it owns by rendezvous over the live members.
    pub(super) fn owns(&self, name: &ClusterName) -> bool {
        let Some(link) = &self.shard else {
            return true;
        };
        let members = link.members.borrow();
        shards::owner(name.as_str(), members.replicas.iter().map(String::as_str))
            == Some(link.replica.as_str())
    }

    /// Whether this replica's writer of `name` runs: always when not sharded; when
    /// sharded, while it holds the cluster's claim.
    pub(super) fn writes_to(&self, name: &ClusterName) -> bool {
        self.shard
            .as_ref()
            .is_none_or(|link| link.claimed.borrow().writable.contains(name))
    }

    /// The fence the writer of `name` reads: the leader's, or the cluster's claim's.
    pub(super) fn writer_fence(&self, name: &ClusterName) -> Fence {
        match &self.shard {
            None => self.fence.clone(),
            Some(link) => link
                .fences
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .fence(name),
        }
    }

    /// Before this replica's watchers of `name` start: their deltas are this replica's
    /// (and published), and what they list replaces what the registry held of it.
    pub(super) async fn before_watching(&mut self, name: &ClusterName) {
        let Some(link) = &self.shard else {
            return;
        };
        link.local
            .send_if_modified(|local| local.insert(name.clone()));
        let _ = self
            .commands
            .send(super::RegistryCommand::Watching(name.clone()))
            .await;
    }

    /// This replica's watchers of `name` listed: the registry loop settles the handoff.
    pub(super) async fn listed_here(&self, name: &ClusterName) {
        if self.shard.is_some() {
            let command = super::RegistryCommand::ListedHere(name.clone());
            let _ = self.commands.send(command).await;
        }
    }

    /// Whether a followed cluster's owner has not published it whole yet.
    pub(super) fn followed_unlisted(&self, name: &ClusterName) -> bool {
        self.shard
            .as_ref()
            .is_some_and(|link| !link.listed.borrow().contains(name))
    }

    /// The members or the clusters changed: takes up the clusters this replica owns now,
    /// hands the others back.
    pub(super) async fn rebalance(&mut self) {
        if self.shard.is_none() {
            return;
        }
        let names: Vec<ClusterName> = self.clusters.keys().cloned().collect();
        for name in names {
            let owned = self.owns(&name);
            let followed = self.clusters.get(&name).is_some_and(|h| h.followed);
            if owned && followed {
                info!(cluster = %name, "cluster now owned here; watching it");
                if let Some(handle) = self.clusters.get_mut(&name) {
                    handle.followed = false;
                    handle.health.hand_off();
                }
                let live = *self.ready.borrow();
                self.connect(&name, live).await;
            } else if !owned && !followed {
                self.hand_back(&name).await;
            }
        }
    }

    /// Another replica owns `name`: registered from its Secret all the same, its objects
    /// come from what that replica publishes.
    pub(super) async fn follow(&mut self, name: &ClusterName) {
        if let Some(handle) = self.clusters.get_mut(name) {
            handle.followed = true;
        }
        self.register_in_registry(name).await;
    }

    /// `name` is unregistered: this replica feeds it no more, and, if it owned it, what is
    /// published of it goes.
    pub(super) async fn forget_shared(&mut self, name: &ClusterName, followed: bool) {
        let Some(link) = &self.shard else {
            return;
        };
        link.local.send_if_modified(|local| local.remove(name));
        if !followed {
            let command = super::RegistryCommand::Forget(name.clone());
            let _ = self.commands.send(command).await;
        }
    }

    /// Shutting down: every writer stopped and waited for, so none writes after the
    /// claims go.
    pub(super) async fn stop_writers(&mut self) {
        let writers: Vec<_> = self
            .clusters
            .values_mut()
            .filter_map(|h| h.running.as_mut()?.writer.take())
            .collect();
        for writer in writers {
            stop_writer(Some(writer)).await;
        }
    }

    /// Stops watching and writing `name`: another replica owns it now.
    async fn hand_back(&mut self, name: &ClusterName) {
        let Some(handle) = self.clusters.get_mut(name) else {
            return;
        };
        info!(cluster = %name, "cluster owned by another replica now; following it");
        handle.followed = true;
        handle.health.hand_off();
        handle.watch_state = WatchState::new(name.clone());
        let (_, writer) = handle.stop_tasks();
        stop_writer(writer).await;
        self.queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        if let Some(link) = &self.shard {
            link.local.send_if_modified(|local| local.remove(name));
        }
    }

    /// The claims changed: a writer runs for each watched cluster this replica holds the
    /// claim of, and none for the others; then says which claims the writers reflect.
    pub(super) async fn sync_writers(&mut self) {
        let Some(link) = &self.shard else {
            return;
        };
        let claimed = link.claimed.borrow().clone();
        let names: Vec<ClusterName> = self.clusters.keys().cloned().collect();
        for name in names {
            let fence = claimed
                .writable
                .contains(&name)
                .then(|| self.writer_fence(&name));
            let Some(handle) = self.clusters.get_mut(&name) else {
                continue;
            };
            let Some(running) = handle.running.as_mut() else {
                continue;
            };
            match (fence, running.writer.take()) {
                // Withdrawn clusters have no watchers, and no writer.
                (Some(fence), None) if running.watch.is_some() => {
                    let mut ctx = running.writer_ctx.clone();
                    ctx.gates.leader = fence;
                    let queue = handle.queue.clone();
                    running.writer = Some(spawn_writer(
                        name.clone(),
                        running.client.clone(),
                        queue,
                        ctx,
                    ));
                }
                (None, Some(writer)) => stop_writer(Some(writer)).await,
                (_, writer) => running.writer = writer,
            }
        }
        if let Some(link) = &self.shard {
            let clusters = self
                .clusters
                .iter()
                .filter(|(_, h)| h.running.as_ref().is_some_and(|r| r.writer.is_some()))
                .map(|(name, _)| name.clone())
                .collect();
            link.writing.send_replace(Writing {
                generation: claimed.generation,
                clusters,
            });
        }
    }

    /// Tells the claims which clusters are registered, and the metrics what is owned.
    pub(super) fn report_sharding(&self) {
        let Some(link) = &self.shard else {
            return;
        };
        let registered: BTreeSet<ClusterName> = self.clusters.keys().cloned().collect();
        link.clusters.send_if_modified(|now| {
            let changed = *now != registered;
            *now = registered;
            changed
        });
        let claimed = link.claimed.borrow();
        self.status_owners(self.clusters.iter().map(|(name, handle)| {
            let owner = claimed.holders.get(name).map(String::as_str);
            (name, handle.followed, owner)
        }));
        drop(claimed);
        let owned = self.clusters.values().filter(|h| !h.followed).count();
        self.metrics
            .clusters_owned
            .set(i64::try_from(owned).unwrap_or(i64::MAX));
    }
}
