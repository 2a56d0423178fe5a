//! This replica's claims on the clusters it owns, carried out in etcd: a claim is the key
//! `<prefix>claims/<cluster>` naming its holder, created only where none exists and held
//! under the holder's membership lease (it vanishes when the holder dies). The decisions are
//! [`federator_core::planner::claims`]; here they are carried out whenever the membership,
//! the clusters, the claims or this replica's writers change.
//!
//! A claim is released only after the cluster's writer stopped: the claims published here
//! drop the cluster first (in a new generation), the runtime stops its writer and reports
//! which generation its writers reflect and which clusters they still write to, and only a
//! cluster no longer written to as of that generation has its claim deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use federator_core::model::ClusterName;
use federator_core::planner::claims::{self, ClaimRecord, ClaimStep};
use federator_core::planner::shards;
use tokio::sync::watch;
use tracing::{info, warn};

use super::membership::Members;
use crate::state::etcd::pb::{self, compare, request_op};
use crate::state::etcd::{EtcdClient, EtcdError};

/// What the claims loop needs to know of this replica.
#[derive(Clone, Debug)]
pub struct ClaimOptions {
    /// The replica's name, as in its membership record.
    pub replica: String,
    /// Keys live under this prefix (the etcd store's).
    pub prefix: String,
    /// The membership lease the claims are held under.
    pub lease: i64,
    /// How often claims are looked at again without a change (the election's retry).
    pub retry: Duration,
}

/// The inputs of the claims loop, each a watch the runtime keeps current.
pub struct ClaimInputs {
    /// The live replicas.
    pub members: watch::Receiver<Members>,
    /// Every registered cluster.
    pub clusters: watch::Receiver<BTreeSet<ClusterName>>,
    /// What this replica's writers still write to.
    pub writing: watch::Receiver<Writing>,
}

/// What the runtime's writers reflect: a generation of [`Claimed`] and the clusters still
/// written to (a writer is stopped and waited for before it leaves this set).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Writing {
    /// The latest [`Claimed::generation`] the writers were started and stopped for.
    pub generation: u64,
    /// The clusters whose writers still run.
    pub clusters: BTreeSet<ClusterName>,
}

/// The claims as last read, and which clusters this replica may write to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claimed {
    /// Clusters this replica holds the claim of and owns: its writers write to these.
    pub writable: BTreeSet<ClusterName>,
    /// Every claim's holder.
    pub holders: BTreeMap<ClusterName, String>,
    /// Every claim's create revision: it grows with every new holder, so it numbers the
    /// holder's term (the writers stamp it into what they write).
    pub revisions: BTreeMap<ClusterName, i64>,
    /// Counts the changes of `writable`: the runtime reports which one its writers reflect.
    pub generation: u64,
}

/// What the loop remembers between passes.
#[derive(Default)]
struct Published {
    /// The writable clusters last published, and their generation.
    writable: BTreeSet<ClusterName>,
    generation: u64,
    /// Clusters dropped from `writable`, with the generation that dropped them: released
    /// once the writers reflect it and no longer write to them.
    withdrawn: BTreeMap<ClusterName, u64>,
}

impl Published {
    /// Whether the claim on `cluster` may be deleted: no writer of this replica can still
    /// write to it.
    fn released_by_writers(&self, cluster: &ClusterName, writing: &Writing) -> bool {
        if self.writable.contains(cluster) {
            return false;
        }
        match self.withdrawn.get(cluster) {
            Some(generation) => {
                writing.generation >= *generation && !writing.clusters.contains(cluster)
            }
            // Never writable in this process: no writer was started for it.
            None => !writing.clusters.contains(cluster),
        }
    }

    /// Records the writable clusters of this pass; the generation they are published with.
    fn publish(&mut self, writable: &BTreeSet<ClusterName>) -> u64 {
        if *writable != self.writable {
            self.generation += 1;
            for gone in self.writable.difference(writable) {
                self.withdrawn.insert(gone.clone(), self.generation);
            }
            for back in writable {
                self.withdrawn.remove(back);
            }
            self.writable = writable.clone();
        }
        self.generation
    }
}

/// Carries out the claim decisions until `claimed` has no receiver left.
pub async fn run(
    client: EtcdClient,
    options: ClaimOptions,
    mut inputs: ClaimInputs,
    claimed: watch::Sender<Claimed>,
) {
    let dir = format!("{}claims/", options.prefix);
    let mut ticks = tokio::time::interval(options.retry);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut watch = None;
    let mut published = Published::default();
    loop {
        if claimed.is_closed() {
            return;
        }
        match step(&client, &options, &dir, &inputs, &mut published).await {
            Ok(now) => {
                claimed.send_if_modified(|old| {
                    let changed = *old != now;
                    *old = now;
                    changed
                });
            }
            Err(err) => warn!(replica = %options.replica, error = %err, "claims not carried out"),
        }
        if watch.is_none() {
            match client.watch_prefix(&dir, 0).await {
                Ok(w) => watch = Some(w),
                Err(err) => warn!(replica = %options.replica, error = %err, "claims not watched"),
            }
        }
        let claims_changed = async {
            match watch.as_mut() {
                Some(w) => w.next().await.map(|_| ()),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = claims_changed => {
                if result.is_err() {
                    // Watched again after the next tick (not at once: etcd may be
                    // flapping); the periodic pass covers the gap.
                    watch = None;
                    ticks.tick().await;
                }
            }
            // An input gone is the runtime shutting down.
            changed = inputs.members.changed() => if changed.is_err() { return },
            changed = inputs.clusters.changed() => if changed.is_err() { return },
            changed = inputs.writing.changed() => if changed.is_err() { return },
            _ = ticks.tick() => {}
        }
    }
}

/// One pass: reads the claims, decides, carries out; what this replica may write to now.
async fn step(
    client: &EtcdClient,
    options: &ClaimOptions,
    dir: &str,
    inputs: &ClaimInputs,
    published: &mut Published,
) -> Result<Claimed, EtcdError> {
    let (mut holders, mut revisions) = read_claims(client, dir).await?;
    let replicas = inputs.members.borrow().replicas.clone();
    let clusters = inputs.clusters.borrow().clone();
    let writing = inputs.writing.borrow().clone();
    let owners = shards::assign(&clusters, &replicas);
    let records: BTreeMap<ClusterName, ClaimRecord> = holders
        .iter()
        .map(|(c, holder)| {
            (
                c.clone(),
                ClaimRecord {
                    holder: holder.clone(),
                },
            )
        })
        .collect();
    let mut writable = BTreeSet::new();
    for (cluster, step) in claims::plan(&options.replica, &owners, &records) {
        let key = format!("{dir}{cluster}");
        match step {
            ClaimStep::Acquire => {
                if let Some(revision) = client
                    .create_leased(&key, options.replica.as_bytes().to_vec(), options.lease)
                    .await?
                {
                    info!(replica = %options.replica, %cluster, revision, "cluster claimed");
                    holders.insert(cluster.clone(), options.replica.clone());
                    revisions.insert(cluster.clone(), revision);
                    writable.insert(cluster);
                }
            }
            ClaimStep::Write => {
                writable.insert(cluster);
            }
            ClaimStep::Wait { .. } => {}
            ClaimStep::Release if !published.released_by_writers(&cluster, &writing) => {
                // Its writer first: released at a later pass, once it stopped.
            }
            ClaimStep::Release => {
                release(client, &key, options.lease).await?;
                info!(replica = %options.replica, %cluster, "cluster claim released");
                holders.remove(&cluster);
                revisions.remove(&cluster);
            }
        }
    }
    let generation = published.publish(&writable);
    Ok(Claimed {
        writable,
        holders,
        revisions,
        generation,
    })
}

/// Every claim's holder and create revision; keys that do not name a cluster are skipped.
async fn read_claims(
    client: &EtcdClient,
    dir: &str,
) -> Result<(BTreeMap<ClusterName, String>, BTreeMap<ClusterName, i64>), EtcdError> {
    let (kvs, _) = client.list_prefix(dir).await?;
    let mut holders = BTreeMap::new();
    let mut revisions = BTreeMap::new();
    for kv in kvs {
        let key = String::from_utf8_lossy(&kv.key).into_owned();
        let cluster = key
            .strip_prefix(dir)
            .filter(|c| !c.is_empty() && !c.contains('/'));
        match (cluster, String::from_utf8(kv.value)) {
            (Some(cluster), Ok(holder)) if !holder.is_empty() => {
                holders.insert(ClusterName::new(cluster), holder);
                revisions.insert(ClusterName::new(cluster), kv.create_revision);
            }
            _ => warn!(%key, "claim ignored: not a cluster's claim naming a replica"),
        }
    }
    Ok((holders, revisions))
}

/// Deletes the claim `key` if it is still held under `lease` (not merely in this replica's
/// name: a successor with the same name holds it under another lease).
async fn release(client: &EtcdClient, key: &str, lease: i64) -> Result<(), EtcdError> {
    client
        .txn(pb::TxnRequest {
            compare: vec![pb::Compare {
                result: compare::CompareResult::Equal as i32,
                target: compare::CompareTarget::Lease as i32,
                key: key.as_bytes().to_vec(),
                target_union: Some(compare::TargetUnion::Lease(lease)),
                range_end: Vec::new(),
            }],
            success: vec![pb::RequestOp {
                request: Some(request_op::Request::RequestDeleteRange(
                    pb::DeleteRangeRequest {
                        key: key.as_bytes().to_vec(),
                        ..Default::default()
                    },
                )),
            }],
            failure: Vec::new(),
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<ClusterName> {
        names.iter().map(|n| ClusterName::new(*n)).collect()
    }

    fn writing(generation: u64, clusters: &[&str]) -> Writing {
        Writing {
            generation,
            clusters: set(clusters),
        }
    }

    #[test]
    fn a_claim_is_released_only_once_the_writers_reflect_its_withdrawal_and_stopped() {
        let east = ClusterName::new("east");
        let mut published = Published::default();
        assert_eq!(published.publish(&set(&["east"])), 1);
        assert!(
            !published.released_by_writers(&east, &writing(1, &[])),
            "still published as writable"
        );
        // Withdrawn in generation 2.
        assert_eq!(published.publish(&set(&[])), 2);
        // The writers have not seen generation 2 yet (the writer may be starting up).
        assert!(!published.released_by_writers(&east, &writing(1, &[])));
        // They have, but the writer still finishes a write.
        assert!(!published.released_by_writers(&east, &writing(2, &["east"])));
        assert!(published.released_by_writers(&east, &writing(2, &[])));
        // Publishing the same set again is no new generation.
        assert_eq!(published.publish(&set(&[])), 2);
        // A cluster never writable here has no writer to wait for.
        let west = ClusterName::new("west");
        assert!(published.released_by_writers(&west, &writing(0, &[])));
    }
}
