//! Clusters' objects shared through etcd: the replica that holds a cluster's claim publishes
//! the objects its watchers see ([`Publisher`]), and every replica follows what the others
//! publish into its own registry ([`follow`]). The layout and the checks on reading are
//! [`federator_core::planner::shared_objects`].
//!
//! A publication is a transaction on the condition that the cluster's claim is still held
//! under the publisher's lease: a replica that lost a cluster cannot overwrite what the new
//! owner publishes, whatever it still has in flight.

use std::collections::{BTreeMap, BTreeSet};

use federator_core::model::{ClusterName, Object, ObjectRef};
use federator_core::planner::shared_objects::{self, CorruptObject};
use federator_core::registry::Delta;
use tokio::sync::{mpsc, watch};
use tracing::warn;

use crate::state::etcd::pb::{self, compare, request_op};
use crate::state::etcd::{Change, EtcdClient, EtcdError};

/// At most this many writes in one transaction (etcd's default limit is 128).
const OPS_PER_TXN: usize = 100;

/// At most this many bytes of values in one transaction (etcd's default request limit is
/// 1.5 MiB).
const BYTES_PER_TXN: usize = 1024 * 1024;

/// Publishes the objects of the clusters this replica holds the claims of.
pub struct Publisher {
    client: EtcdClient,
    replica: String,
    /// The membership lease the claims are held under.
    lease: i64,
    prefix: String,
    /// Writes not yet sent, by cluster: key to value (`None`: delete).
    pending: BTreeMap<ClusterName, BTreeMap<String, Option<Vec<u8>>>>,
}

/// Why a cluster's objects were not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The cluster's claim is no longer this replica's: nothing was written.
    #[error("objects of cluster {cluster} not published: its claim is not replica {replica}'s")]
    NotClaimed {
        /// The cluster.
        cluster: ClusterName,
        /// This replica.
        replica: String,
    },
    /// etcd did not answer.
    #[error("objects of cluster {cluster} not published: {source}")]
    Etcd {
        /// The cluster.
        cluster: ClusterName,
        /// Why.
        source: EtcdError,
    },
}

impl Publisher {
    /// A publisher for replica `replica`, whose claims are held under `lease`, below the
    /// etcd store's `prefix`.
    pub fn new(client: EtcdClient, replica: &str, lease: i64, prefix: &str) -> Self {
        Self {
            client,
            replica: replica.to_owned(),
            lease,
            prefix: prefix.to_owned(),
            pending: BTreeMap::new(),
        }
    }

    fn below(&self, key: String) -> String {
        format!("{}objects/{key}", self.prefix)
    }

    /// Notes a change of a cluster this replica watches, to publish at the next flush.
    /// Clusters themselves are not published: every replica reads them from the Secrets.
    ///
    /// The two versions of an object follow the registry: a valid version replaces a
    /// rejected one; a rejected one replaces a valid policy but stands beside a valid
    /// Dependency (whose last valid version stays in force); a removal removes both.
    pub fn record(&mut self, delta: &Delta) {
        let (cluster, writes) = match delta {
            Delta::Upsert(cluster, Object::Rejected(rejected)) => {
                let mut writes = vec![(
                    shared_objects::rejected_key(cluster, &rejected.reference),
                    Some(shared_objects::encode(&Object::Rejected(rejected.clone()))),
                )];
                if !matches!(
                    rejected.reference,
                    ObjectRef::Dependency(_) | ObjectRef::AdmiralDependency(_)
                ) {
                    writes.push((shared_objects::key(cluster, &rejected.reference), None));
                }
                (cluster, writes)
            }
            Delta::Upsert(cluster, object) => {
                let reference = object.reference();
                let writes = vec![
                    (
                        shared_objects::key(cluster, &reference),
                        Some(shared_objects::encode(object)),
                    ),
                    (shared_objects::rejected_key(cluster, &reference), None),
                ];
                (cluster, writes)
            }
            Delta::Remove(cluster, reference) => (
                cluster,
                vec![
                    (shared_objects::key(cluster, reference), None),
                    (shared_objects::rejected_key(cluster, reference), None),
                ],
            ),
            Delta::UpsertCluster(_) | Delta::RemoveCluster(_) => return,
        };
        let writes: Vec<(String, Option<Vec<u8>>)> = writes
            .into_iter()
            .map(|(key, value)| (self.below(key), value))
            .collect();
        self.pending
            .entry(cluster.clone())
            .or_default()
            .extend(writes);
    }

    /// Publishes what was noted, each cluster in transactions conditional on its claim. A
    /// cluster whose claim is gone keeps nothing pending (its next owner publishes it
    /// whole); one etcd did not answer for keeps what was not written, for the next flush.
    pub async fn flush(&mut self) -> Vec<PublishError> {
        let mut errors = Vec::new();
        for (cluster, writes) in std::mem::take(&mut self.pending) {
            let mut writes: Vec<(String, Option<Vec<u8>>)> = writes.into_iter().collect();
            while !writes.is_empty() {
                let take = chunk_len(&writes);
                match self.write(&cluster, &writes[..take]).await {
                    Ok(()) => {
                        writes.drain(..take);
                    }
                    Err(err) => {
                        if matches!(err, PublishError::Etcd { .. }) {
                            self.pending
                                .entry(cluster.clone())
                                .or_default()
                                .extend(writes);
                        }
                        errors.push(err);
                        break;
                    }
                }
            }
        }
        errors
    }

    /// Makes the published objects of `cluster` exactly `objects`: on claiming a cluster,
    /// what its previous owner published may be stale.
    pub async fn reconcile(
        &mut self,
        cluster: &ClusterName,
        objects: &[Object],
    ) -> Result<(), PublishError> {
        let etcd = |source| PublishError::Etcd {
            cluster: cluster.clone(),
            source,
        };
        let dir = format!("{}objects/{cluster}/", self.prefix);
        let (kvs, _) = self.client.list_prefix(&dir).await.map_err(etcd)?;
        let mut stale: BTreeMap<String, Vec<u8>> = kvs
            .into_iter()
            .map(|kv| (String::from_utf8_lossy(&kv.key).into_owned(), kv.value))
            .collect();
        let desired: Vec<(String, Vec<u8>)> = objects
            .iter()
            .map(|object| {
                let key = self.below(shared_objects::object_key(cluster, object));
                (key, shared_objects::encode(object))
            })
            .collect();
        let pending = self.pending.entry(cluster.clone()).or_default();
        for (key, value) in desired {
            if stale.remove(&key).as_ref() != Some(&value) {
                pending.insert(key, Some(value));
            }
        }
        for key in stale.into_keys() {
            pending.insert(key, None);
        }
        match self.flush().await.into_iter().next() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    async fn write(
        &self,
        cluster: &ClusterName,
        writes: &[(String, Option<Vec<u8>>)],
    ) -> Result<(), PublishError> {
        let claim = format!("{}claims/{cluster}", self.prefix);
        let operations = writes.iter().map(|(key, value)| pb::RequestOp {
            request: Some(match value {
                Some(value) => request_op::Request::RequestPut(pb::PutRequest {
                    key: key.as_bytes().to_vec(),
                    value: value.clone(),
                    ..Default::default()
                }),
                None => request_op::Request::RequestDeleteRange(pb::DeleteRangeRequest {
                    key: key.as_bytes().to_vec(),
                    ..Default::default()
                }),
            }),
        });
        let answer = self
            .client
            .txn(pb::TxnRequest {
                compare: vec![pb::Compare {
                    result: compare::CompareResult::Equal as i32,
                    target: compare::CompareTarget::Lease as i32,
                    key: claim.into_bytes(),
                    target_union: Some(compare::TargetUnion::Lease(self.lease)),
                    range_end: Vec::new(),
                }],
                success: operations.collect(),
                failure: Vec::new(),
            })
            .await
            .map_err(|source| PublishError::Etcd {
                cluster: cluster.clone(),
                source,
            })?;
        if !answer.succeeded {
            return Err(PublishError::NotClaimed {
                cluster: cluster.clone(),
                replica: self.replica.clone(),
            });
        }
        Ok(())
    }
}

/// How many of `writes` fit in one transaction (at least one).
fn chunk_len(writes: &[(String, Option<Vec<u8>>)]) -> usize {
    let mut bytes = 0;
    let mut len = 0;
    for (key, value) in writes.iter().take(OPS_PER_TXN) {
        bytes += key.len() + value.as_ref().map_or(0, Vec::len);
        if len > 0 && bytes > BYTES_PER_TXN {
            break;
        }
        len += 1;
    }
    len.max(1)
}

/// What following the published objects yields, for the registry loop.
#[derive(Clone, Debug, PartialEq)]
pub enum SharedUpdate {
    /// A change of another replica's cluster (boxed: a delta is a few hundred bytes).
    Delta(Box<Delta>),
    /// A cluster's objects as published when following began: all of them have been sent.
    Listed(ClusterName),
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
    let mut listed = BTreeSet::new();
    // The keys published now (below `dir`): a deleted version of an object whose other
    // version is still published leaves the object to that version.
    let mut present: BTreeSet<String> = BTreeSet::new();
    for kv in kvs {
        let key = String::from_utf8_lossy(&kv.key).into_owned();
        if let Some((cluster, object)) = decoded(&dir, &key, &kv.value) {
            present.insert(key.strip_prefix(&dir).unwrap_or(&key).to_owned());
            listed.insert(cluster.clone());
            if !send(
                out,
                local,
                SharedUpdate::Delta(Box::new(Delta::Upsert(cluster, object))),
            )
            .await
            {
                return Ok(());
            }
        }
    }
    for cluster in listed {
        if !send(out, local, SharedUpdate::Listed(cluster)).await {
            return Ok(());
        }
    }
    let mut watch = client.watch_prefix(&dir, revision + 1).await?;
    loop {
        for change in watch.next().await? {
            let update = match change {
                Change::Put { key, value, .. } => {
                    let key = String::from_utf8_lossy(&key).into_owned();
                    let decoded = decoded(&dir, &key, &value);
                    if decoded.is_some() {
                        present.insert(key.strip_prefix(&dir).unwrap_or(&key).to_owned());
                    }
                    decoded.map(|(cluster, object)| Delta::Upsert(cluster, object))
                }
                Change::Delete { key, .. } => {
                    let key = String::from_utf8_lossy(&key).into_owned();
                    let below = key.strip_prefix(&dir).unwrap_or(&key);
                    present.remove(below);
                    shared_objects::parse_key(below)
                        .map_err(|err| report(&err))
                        .ok()
                        .filter(|named| !present.contains(&named.sibling()))
                        .map(|named| Delta::Remove(named.cluster, named.reference))
                }
            };
            if let Some(delta) = update
                && !send(out, local, SharedUpdate::Delta(Box::new(delta))).await
            {
                return Ok(());
            }
        }
    }
}

/// The cluster and object published under `key`; a corrupt one is reported and skipped.
fn decoded(dir: &str, key: &str, value: &[u8]) -> Option<(ClusterName, Object)> {
    let below = key.strip_prefix(dir).unwrap_or(key);
    shared_objects::decode(below, value)
        .map_err(|err| report(&err))
        .ok()
}

fn report(err: &CorruptObject) {
    warn!(key = %err.key, reason = %err.reason, "published object ignored");
}

/// Sends `update` unless it concerns a cluster this replica watches itself; false once no
/// one receives.
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
        SharedUpdate::Listed(c) => Some(c),
    };
    if cluster.is_some_and(|c| local.borrow().contains(c)) {
        return true;
    }
    out.send(update).await.is_ok()
}
