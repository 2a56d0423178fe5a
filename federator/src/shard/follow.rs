//! Following what the other replicas publish of their clusters, into this replica's
//! registry loop: a listing of the whole prefix at one revision, then a watch from the next
//! revision on. Changes of clusters this replica's own watchers feed (`local`) are skipped.
//! When a cluster leaves `local` (handed to another replica), following starts over, so the
//! registry loop gets that cluster's objects as published, from the top.

use std::collections::BTreeSet;
use std::time::Duration;

use federator_core::model::{ClusterName, Object};
use federator_core::planner::shared_objects::{self, CorruptObject};
use federator_core::registry::Delta;
use tokio::sync::{mpsc, watch};
use tracing::warn;

use crate::state::etcd::{Change, EtcdClient, EtcdError};

/// What following the published objects yields, for the registry loop.
#[derive(Clone, Debug, PartialEq)]
pub enum SharedUpdate {
    /// A change of another replica's cluster (boxed: a delta is a few hundred bytes).
    Delta(Box<Delta>),
    /// The cluster's owner published it whole, and all of it that is published has been
    /// sent (sent for every cluster, this replica's own included).
    Listed(ClusterName),
    /// The cluster's listed mark is gone (the cluster was unregistered).
    Unlisted(ClusterName),
    /// Following starts over, for these clusters handed to another replica: what follows,
    /// up to [`SharedUpdate::ListDone`], is all that is published.
    Relisting(BTreeSet<ClusterName>),
    /// The listing that began following is all sent; changes follow.
    ListDone,
}

/// Follows the published objects for as long as `out` has a receiver: starts over when a
/// cluster leaves `local` or the watch breaks (after a backoff).
pub async fn follow_shared(
    client: EtcdClient,
    prefix: String,
    mut local: watch::Receiver<BTreeSet<ClusterName>>,
    out: mpsc::Sender<SharedUpdate>,
) {
    let mut retry = super::retry_backoff();
    let mut handed_back = BTreeSet::new();
    let mut before = local.borrow_and_update().clone();
    loop {
        if out
            .send(SharedUpdate::Relisting(std::mem::take(&mut handed_back)))
            .await
            .is_err()
        {
            return;
        }
        let filter = local.clone();
        let following = follow(&client, &prefix, &filter, &out);
        tokio::select! {
            result = following => match result {
                Ok(()) => return,
                Err(err) => {
                    let wait = retry.next().unwrap_or(Duration::from_secs(10));
                    warn!(error = %err, retry_in = ?wait, "following the other replicas' clusters failed; listing again");
                    tokio::time::sleep(wait).await;
                }
            },
            () = shrunk(&mut local, &mut before, &mut handed_back) => {
                retry = super::retry_backoff();
            }
        }
    }
}

/// Waits until a cluster leaves `local`; adds those that left to `handed_back`.
async fn shrunk(
    local: &mut watch::Receiver<BTreeSet<ClusterName>>,
    before: &mut BTreeSet<ClusterName>,
    handed_back: &mut BTreeSet<ClusterName>,
) {
    loop {
        if local.changed().await.is_err() {
            return std::future::pending().await;
        }
        let now = local.borrow_and_update().clone();
        let left: Vec<ClusterName> = before.difference(&now).cloned().collect();
        *before = now;
        if !left.is_empty() {
            handed_back.extend(left);
            return;
        }
    }
}

/// Follows what the other replicas publish, sending each change of a cluster not in
/// `local` (the clusters this replica's own watchers feed) to `out`. Returns when `out`
/// closes, or with the error that broke the watch (follow again: the listing is resent).
pub async fn follow(
    client: &EtcdClient,
    prefix: &str,
    local: &watch::Receiver<BTreeSet<ClusterName>>,
    out: &mpsc::Sender<SharedUpdate>,
) -> Result<(), EtcdError> {
    let dir = format!("{prefix}objects/");
    let (kvs, revision) = client.list_prefix(&dir).await?;
    let mut marked = Vec::new();
    // The keys published now (below `dir`): a deleted version of an object whose other
    // version is still published leaves the object to that version.
    let mut present: BTreeSet<String> = BTreeSet::new();
    for kv in kvs {
        let key = String::from_utf8_lossy(&kv.key).into_owned();
        let below = key.strip_prefix(&dir).unwrap_or(&key);
        if let Some(cluster) = shared_objects::listed_cluster(below) {
            marked.push(cluster);
            continue;
        }
        if let Some((cluster, object)) = decoded(below, &kv.value) {
            present.insert(below.to_owned());
            let update = SharedUpdate::Delta(Box::new(Delta::Upsert(cluster, object)));
            if !send(out, local, update).await {
                return Ok(());
            }
        }
    }
    // Marks last: a cluster is listed once everything published of it has been sent.
    for update in marked
        .into_iter()
        .map(SharedUpdate::Listed)
        .chain([SharedUpdate::ListDone])
    {
        if !send(out, local, update).await {
            return Ok(());
        }
    }
    let mut watch = client.watch_prefix(&dir, revision + 1).await?;
    loop {
        for change in watch.next().await? {
            let update = match change {
                Change::Put { key, value, .. } => {
                    let key = String::from_utf8_lossy(&key).into_owned();
                    let below = key.strip_prefix(&dir).unwrap_or(&key);
                    if let Some(cluster) = shared_objects::listed_cluster(below) {
                        Some(SharedUpdate::Listed(cluster))
                    } else {
                        let decoded = decoded(below, &value);
                        if decoded.is_some() {
                            present.insert(below.to_owned());
                        }
                        decoded.map(|(cluster, object)| {
                            SharedUpdate::Delta(Box::new(Delta::Upsert(cluster, object)))
                        })
                    }
                }
                Change::Delete { key, .. } => {
                    let key = String::from_utf8_lossy(&key).into_owned();
                    let below = key.strip_prefix(&dir).unwrap_or(&key);
                    if let Some(cluster) = shared_objects::listed_cluster(below) {
                        Some(SharedUpdate::Unlisted(cluster))
                    } else {
                        present.remove(below);
                        shared_objects::parse_key(below)
                            .map_err(|err| report(&err))
                            .ok()
                            .filter(|named| !present.contains(&named.sibling()))
                            .map(|named| {
                                SharedUpdate::Delta(Box::new(Delta::Remove(
                                    named.cluster,
                                    named.reference,
                                )))
                            })
                    }
                }
            };
            if let Some(update) = update
                && !send(out, local, update).await
            {
                return Ok(());
            }
        }
    }
}

/// The cluster and object published under `below` (the key below the objects' prefix); a
/// corrupt one is reported and skipped.
fn decoded(below: &str, value: &[u8]) -> Option<(ClusterName, Object)> {
    shared_objects::decode(below, value)
        .map_err(|err| report(&err))
        .ok()
}

fn report(err: &CorruptObject) {
    warn!(key = %err.key, reason = %err.reason, "published object ignored");
}

/// Sends `update` unless it is a change of a cluster this replica watches itself; false
/// once no one receives.
async fn send(
    out: &mpsc::Sender<SharedUpdate>,
    local: &watch::Receiver<BTreeSet<ClusterName>>,
    update: SharedUpdate,
) -> bool {
    let cluster = match &update {
        SharedUpdate::Delta(delta) => match &**delta {
            Delta::Upsert(c, _) | Delta::Remove(c, _) => Some(c),
            Delta::UpsertCluster(_) | Delta::RemoveCluster(_) => None,
        },
        _ => None,
    };
    if cluster.is_some_and(|c| local.borrow().contains(c)) {
        return true;
    }
    out.send(update).await.is_ok()
}
