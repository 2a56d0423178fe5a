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
use crate::shard::objects::Publisher;

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
                PublishOp::Watching(cluster) => {
                    settled.remove(&cluster);
                }
                PublishOp::Settled(cluster) => {
                    settled.insert(cluster);
                }
                PublishOp::Forget(cluster) => {
                    settled.remove(&cluster);
                    if let Err(err) = publisher.forget(&cluster).await {
                        warn!(error = %err, "objects of an unregistered cluster left in etcd");
                    }
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
        match publish_due(&mut publisher, &settled, &claims).await {
            Ok(()) => retry = crate::shard::retry_backoff(),
            Err(()) => {
                let wait = retry.next().unwrap_or(Duration::from_secs(10));
                paused_until = Some(Instant::now() + wait);
            }
        }
    }
}

/// Publishes each settled cluster claimed here but not published whole under its current
/// claim, unpublishes those no longer claimed, then sends the pending changes. `Err` when
/// something was not published (retried after a pause).
async fn publish_due(
    publisher: &mut Publisher,
    settled: &BTreeSet<ClusterName>,
    claims: &Claimed,
) -> Result<(), ()> {
    let mut failed = false;
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
            Err(err) => {
                warn!(error = %err, "cluster not published; retrying");
                failed = true;
            }
        }
    }
    for err in publisher.flush().await {
        warn!(error = %err, "objects not published; retrying");
        failed = true;
    }
    if failed { Err(()) } else { Ok(()) }
}
