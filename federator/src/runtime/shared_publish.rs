//! Publishing this replica's clusters, in a task of its own: the registry loop hands it
//! what changed and never waits on etcd. It keeps what the watchers hold of each owned
//! cluster ([`Publisher`]), publishes a cluster whole once it is claimed here and listed by
//! this replica's watchers, then its changes as they come; while etcd does not answer it
//! keeps merging changes and retries with backoff.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::model::ClusterName;
use crate::registry::Delta;
use crate::shard::claims::Claimed;
use crate::shard::objects::{PublishError, Publisher};

/// What the registry loop tells the publishing task.
#[derive(Debug)]
pub(super) enum PublishOp {
    /// A change this replica's watchers (or manager) made to an owned cluster (boxed: a
    /// delta is a few hundred bytes).
    Delta(Box<Delta>),
    /// This replica's watchers of the cluster start: not publishable until they listed.
    Watching(ClusterName),
    /// This replica's watchers of the cluster listed: publishable once claimed.
    Settled(ClusterName),
    /// The cluster is unregistered: everything published of it goes, listed mark included.
    Forget(ClusterName),
}

/// Runs until the registry loop is gone.
pub(super) async fn publish_task(
    mut publisher: Publisher,
    mut ops: mpsc::UnboundedReceiver<PublishOp>,
    mut claimed: watch::Receiver<Claimed>,
    mut local: watch::Receiver<BTreeSet<ClusterName>>,
) {
    let mut settled = BTreeSet::new();
    // Unregistered clusters whose published objects are still to go.
    let mut forgotten: BTreeSet<ClusterName> = BTreeSet::new();
    let mut was_local = BTreeSet::new();
    let mut retry = crate::shard::retry_backoff();
    let mut paused_until: Option<Instant> = None;
    let mut batch = Vec::new();
    loop {
        let pause = async {
            match paused_until {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = ops.recv_many(&mut batch, 1024) => {
                if received == 0 {
                    return;
                }
            }
            changed = claimed.changed() => if changed.is_err() { return },
            changed = local.changed() => if changed.is_err() { return },
            () = pause => paused_until = None,
        }
        // Everything queued meanwhile first: changes merge in the publisher.
        while let Ok(op) = ops.try_recv() {
            batch.push(op);
        }
        for op in batch.drain(..) {
            match op {
                PublishOp::Delta(delta) => publisher.record(&delta),
                // What the watchers held is theirs to list again; published whole again
                // once they have (a diff against what etcd holds).
                PublishOp::Watching(cluster) => {
                    publisher.unpublish(&cluster, true);
                    settled.remove(&cluster);
                }
                PublishOp::Settled(cluster) => {
                    settled.insert(cluster);
                }
                // Unpublished by the forget itself, before anything else is published.
                PublishOp::Forget(cluster) => {
                    settled.remove(&cluster);
                    forgotten.insert(cluster);
                }
            }
        }
        let now = local.borrow_and_update().clone();
        for gone in was_local.difference(&now) {
            publisher.unpublish(gone, true);
            settled.remove(gone);
        }
        was_local = now;
        if paused_until.is_some() {
            continue;
        }
        let claims = claimed.borrow_and_update().clone();
        let mut result = forget_due(&mut publisher, &mut forgotten).await;
        if result.is_ok() {
            result = publish_due(&mut publisher, &settled, &claims).await;
        }
        match result {
            Ok(()) => retry = crate::shard::retry_backoff(),
            Err(()) => {
                let wait = retry.next().unwrap_or(Duration::from_secs(10));
                paused_until = Some(Instant::now() + wait);
            }
        }
    }
}

/// Deletes what is published of each unregistered cluster; one whose claim is gone already
/// is left (its keys stay until a replica owning it forgets it). `Err` when etcd did not
/// answer (retried after a pause).
async fn forget_due(
    publisher: &mut Publisher,
    forgotten: &mut BTreeSet<ClusterName>,
) -> Result<(), ()> {
    while let Some(cluster) = forgotten.first().cloned() {
        match publisher.forget(&cluster).await {
            Ok(()) => info!(%cluster, "unregistered cluster's published objects deleted"),
            Err(PublishError::NotClaimed { .. }) => {
                warn!(%cluster, "unregistered cluster's published objects left in etcd: its claim is gone")
            }
            Err(err) => {
                warn!(error = %err, "unregistered cluster's published objects not deleted; retrying");
                return Err(());
            }
        }
        forgotten.remove(&cluster);
    }
    Ok(())
}

/// Publishes each settled cluster claimed here but not published whole under its current
/// claim, unpublishes those no longer claimed, then sends the pending changes. `Err` when
/// something was not published (retried after a pause).
async fn publish_due(
    publisher: &mut Publisher,
    settled: &BTreeSet<ClusterName>,
    claims: &Claimed,
) -> Result<(), ()> {
    for cluster in settled {
        let Some(revision) = claims.revisions.get(cluster).copied() else {
            continue;
        };
        if !claims.writable.contains(cluster) {
            publisher.unpublish(cluster, false);
            continue;
        }
        if publisher.published(cluster) == Some(revision) {
            continue;
        }
        match publisher.publish(cluster, revision).await {
            Ok(()) => info!(%cluster, claim = revision, "cluster published whole"),
            // Lost meanwhile: the claims say so next.
            Err(err @ PublishError::NotClaimed { .. }) => {
                warn!(error = %err, "cluster not published")
            }
            // etcd does not answer: the rest would wait out the same time limit.
            Err(err) => {
                warn!(error = %err, "cluster not published; retrying");
                return Err(());
            }
        }
    }
    let mut failed = false;
    for err in publisher.flush().await {
        warn!(error = %err, "objects not published; retrying");
        failed |= matches!(err, PublishError::Etcd { .. });
    }
    if failed { Err(()) } else { Ok(()) }
}
