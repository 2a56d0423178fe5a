//! This replica's claims on the clusters it owns, carried out in etcd: a claim is the key
//! `<prefix>claims/<cluster>` naming its holder, created only where none exists and held
//! under the holder's membership lease (it vanishes when the holder dies). The decisions are
//! [`federator_core::planner::claims`]; here they are carried out whenever the membership,
//! the clusters, the claims or this replica's writers change.
//!
//! A claim is released only after the cluster's writer stopped: the claims published here
//! drop the cluster first, the runtime stops its writer and reports the clusters it still
//! writes to, and only a cluster no longer written to has its claim deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use federator_core::model::ClusterName;
use federator_core::planner::claims::{self, ClaimRecord, ClaimStep};
use federator_core::planner::shards;
use tokio::sync::watch;
use tracing::{info, warn};

use super::membership::Members;
use crate::state::etcd::pb::{self, compare, request_op};
use crate::state::etcd::{EtcdClient, EtcdError, prefix_end};

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
    /// The clusters this replica's writers still write to.
    pub writing: watch::Receiver<BTreeSet<ClusterName>>,
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
    loop {
        if claimed.is_closed() {
            return;
        }
        match step(&client, &options, &dir, &inputs).await {
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
            let range = (dir.as_bytes().to_vec(), prefix_end(dir.as_bytes()));
            watch = client.watch(range.0, range.1, 0).await.ok();
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
                    // Watched again at the next pass; the periodic pass covers the gap.
                    watch = None;
                }
            }
            _ = inputs.members.changed() => {}
            _ = inputs.clusters.changed() => {}
            _ = inputs.writing.changed() => {}
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
                if let Some(revision) =
                    acquire(client, &key, &options.replica, options.lease).await?
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
            ClaimStep::Release if writing.contains(&cluster) => {
                // Its writer first: released at a later pass, once it stopped.
            }
            ClaimStep::Release => {
                release(client, &key, &options.replica).await?;
                info!(replica = %options.replica, %cluster, "cluster claim released");
                holders.remove(&cluster);
                revisions.remove(&cluster);
            }
        }
    }
    Ok(Claimed {
        writable,
        holders,
        revisions,
    })
}

/// Every claim's holder and create revision; keys that do not name a cluster are skipped.
async fn read_claims(
    client: &EtcdClient,
    dir: &str,
) -> Result<(BTreeMap<ClusterName, String>, BTreeMap<ClusterName, i64>), EtcdError> {
    let answer = client
        .range(pb::RangeRequest {
            key: dir.as_bytes().to_vec(),
            range_end: prefix_end(dir.as_bytes()),
            ..Default::default()
        })
        .await?;
    let mut holders = BTreeMap::new();
    let mut revisions = BTreeMap::new();
    for kv in answer.kvs {
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

/// Creates the claim `key` for `replica` under `lease` if none exists; its create revision
/// when it did.
async fn acquire(
    client: &EtcdClient,
    key: &str,
    replica: &str,
    lease: i64,
) -> Result<Option<i64>, EtcdError> {
    let answer = client
        .txn(pb::TxnRequest {
            compare: vec![pb::Compare {
                result: compare::CompareResult::Equal as i32,
                target: compare::CompareTarget::Create as i32,
                key: key.as_bytes().to_vec(),
                target_union: Some(compare::TargetUnion::CreateRevision(0)),
                range_end: Vec::new(),
            }],
            success: vec![pb::RequestOp {
                request: Some(request_op::Request::RequestPut(pb::PutRequest {
                    key: key.as_bytes().to_vec(),
                    value: replica.as_bytes().to_vec(),
                    lease,
                    ..Default::default()
                })),
            }],
            failure: Vec::new(),
        })
        .await?;
    Ok(answer
        .succeeded
        .then(|| answer.header.map_or(0, |h| h.revision)))
}

/// Deletes the claim `key` if it still names `replica`.
async fn release(client: &EtcdClient, key: &str, replica: &str) -> Result<(), EtcdError> {
    client
        .txn(pb::TxnRequest {
            compare: vec![pb::Compare {
                result: compare::CompareResult::Equal as i32,
                target: compare::CompareTarget::Value as i32,
                key: key.as_bytes().to_vec(),
                target_union: Some(compare::TargetUnion::Value(replica.as_bytes().to_vec())),
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
