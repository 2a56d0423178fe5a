//! Clusters' objects shared through etcd: the replica that holds a cluster's claim publishes
//! the objects its watchers see ([`Publisher`]), and every replica follows what the others
//! publish into its own registry ([`super::follow`]). The layout and the checks on reading are
//! [`federator_core::planner::shared_objects`].
//!
//! A publication is a transaction on the condition that the cluster's claim is still held
//! under the publisher's lease: a replica that lost a cluster cannot overwrite what the new
//! owner publishes, whatever it still has in flight.

use std::collections::BTreeMap;

use federator_core::model::{ClusterName, Object, ObjectRef};
use federator_core::planner::shared_objects;
use federator_core::registry::Delta;

use crate::state::etcd::pb::{self, compare, request_op};
use crate::state::etcd::{EtcdClient, EtcdError};

/// At most this many writes in one transaction (etcd's default limit is 128).
const OPS_PER_TXN: usize = 100;

/// At most this many bytes of values in one transaction (etcd's default request limit is
/// 1.5 MiB).
const BYTES_PER_TXN: usize = 1024 * 1024;

/// Publishes the objects of the clusters this replica holds the claims of.
///
/// It keeps what this replica's own watchers hold of each cluster it owns (as published
/// values), so a cluster claimed later is published whole at once; changes of a cluster
/// published under its claim are published as they come.
pub struct Publisher {
    client: EtcdClient,
    replica: String,
    /// The membership lease the claims are held under.
    lease: i64,
    prefix: String,
    /// What this replica's watchers hold, by cluster: key to value.
    desired: BTreeMap<ClusterName, BTreeMap<String, Vec<u8>>>,
    /// The clusters published whole under their claim, with the claim's revision.
    published: BTreeMap<ClusterName, i64>,
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
            desired: BTreeMap::new(),
            published: BTreeMap::new(),
            pending: BTreeMap::new(),
        }
    }

    fn below_prefix(&self, key: String) -> String {
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
            // Withdrawn (or unregistered): every object goes; the listed mark stays, so the
            // others know the cluster has none rather than none published yet.
            Delta::RemoveCluster(cluster) => {
                let held = self.desired.remove(cluster).unwrap_or_default();
                if self.published.contains_key(cluster) {
                    let pending = self.pending.entry(cluster.clone()).or_default();
                    pending.extend(held.into_keys().map(|key| (key, None)));
                }
                return;
            }
            Delta::UpsertCluster(_) => return,
        };
        let writes: Vec<(String, Option<Vec<u8>>)> = writes
            .into_iter()
            .map(|(key, value)| (self.below_prefix(key), value))
            .collect();
        let desired = self.desired.entry(cluster.clone()).or_default();
        let mut changed = Vec::new();
        for (key, value) in writes {
            let same = desired.get(&key) == value.as_ref();
            match &value {
                Some(value) => desired.insert(key.clone(), value.clone()),
                None => desired.remove(&key),
            };
            if !same {
                changed.push((key, value));
            }
        }
        if self.published.contains_key(cluster) {
            self.pending
                .entry(cluster.clone())
                .or_default()
                .extend(changed);
        }
    }

    /// `cluster` is unregistered: everything published of it goes, its listed mark
    /// included, while its claim is still this replica's (a cluster registered again under
    /// the name is published afresh by its next owner, which a late forget cannot touch).
    pub async fn forget(&mut self, cluster: &ClusterName) -> Result<(), PublishError> {
        self.unpublish(cluster, true);
        let dir = format!("{}objects/{cluster}/", self.prefix);
        let all = pb::RequestOp {
            request: Some(request_op::Request::RequestDeleteRange(
                pb::DeleteRangeRequest {
                    range_end: crate::state::etcd::prefix_end(dir.as_bytes()),
                    key: dir.into_bytes(),
                    ..Default::default()
                },
            )),
        };
        self.claimed_txn(cluster, vec![all]).await
    }

    /// The claim revision `cluster` was published whole under, if it was.
    pub fn published(&self, cluster: &ClusterName) -> Option<i64> {
        self.published.get(cluster).copied()
    }

    /// `cluster`'s claim is gone (or another replica owns it now): nothing of it is
    /// published any more; with `forget`, what the watchers held of it is dropped too.
    pub fn unpublish(&mut self, cluster: &ClusterName, forget: bool) {
        self.published.remove(cluster);
        self.pending.remove(cluster);
        if forget {
            self.desired.remove(cluster);
        }
    }

    /// Publishes what was noted, each cluster in transactions conditional on its claim. A
    /// cluster whose claim is gone keeps nothing pending (its next owner publishes it
    /// whole); one etcd did not answer for keeps what was not written, for the next flush.
    pub async fn flush(&mut self) -> Vec<PublishError> {
        let mut errors = Vec::new();
        for (cluster, writes) in std::mem::take(&mut self.pending) {
            if !self.published.contains_key(&cluster) {
                continue;
            }
            if let Err(err) = self.flush_one(&cluster, writes).await {
                errors.push(err);
            }
        }
        errors
    }

    /// Sends `writes` of `cluster` in transactions; what etcd did not take stays pending,
    /// and a claim found gone unpublishes the cluster.
    async fn flush_one(
        &mut self,
        cluster: &ClusterName,
        writes: BTreeMap<String, Option<Vec<u8>>>,
    ) -> Result<(), PublishError> {
        let mut writes: Vec<(String, Option<Vec<u8>>)> = writes.into_iter().collect();
        while !writes.is_empty() {
            let take = chunk_len(&writes);
            match self.write(cluster, &writes[..take]).await {
                Ok(()) => {
                    writes.drain(..take);
                }
                Err(err) => {
                    match err {
                        PublishError::Etcd { .. } => {
                            self.pending
                                .entry(cluster.clone())
                                .or_default()
                                .extend(writes);
                        }
                        // Published whole again under its next claim.
                        PublishError::NotClaimed { .. } => {
                            self.published.remove(cluster);
                        }
                    }
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// Publishes `cluster` whole under its claim of revision `claim`: what is published
    /// becomes exactly what this replica's watchers hold (a previous owner's may be stale),
    /// then the listed mark says so. From then on its changes are published as they come.
    pub async fn publish(&mut self, cluster: &ClusterName, claim: i64) -> Result<(), PublishError> {
        let etcd = |source| PublishError::Etcd {
            cluster: cluster.clone(),
            source,
        };
        let dir = format!("{}objects/{cluster}/", self.prefix);
        let (kvs, _) = self.client.list_prefix(&dir).await.map_err(etcd)?;
        let mark = self.below_prefix(shared_objects::listed_key(cluster));
        let mut stale: BTreeMap<String, Vec<u8>> = kvs
            .into_iter()
            .map(|kv| (String::from_utf8_lossy(&kv.key).into_owned(), kv.value))
            .filter(|(key, _)| *key != mark)
            .collect();
        let mut writes = BTreeMap::new();
        for (key, value) in self.desired.get(cluster).into_iter().flatten() {
            if stale.remove(key).as_ref() != Some(value) {
                writes.insert(key.clone(), Some(value.clone()));
            }
        }
        writes.extend(stale.into_keys().map(|key| (key, None)));
        // What was pending is in `writes` already (it came from `desired`).
        self.pending.remove(cluster);
        let listed = vec![(mark, Some(self.replica.clone().into_bytes()))];
        let mut result = self.flush_one(cluster, writes).await;
        if result.is_ok() {
            result = self.write(cluster, &listed).await;
        }
        match result {
            Ok(()) => {
                self.published.insert(cluster.clone(), claim);
                Ok(())
            }
            // Published whole at the next attempt.
            Err(err) => {
                self.unpublish(cluster, false);
                Err(err)
            }
        }
    }

    async fn write(
        &self,
        cluster: &ClusterName,
        writes: &[(String, Option<Vec<u8>>)],
    ) -> Result<(), PublishError> {
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
        self.claimed_txn(cluster, operations.collect()).await
    }

    /// Carries out `operations` in one transaction, if `cluster`'s claim is still held
    /// under this replica's lease.
    async fn claimed_txn(
        &self,
        cluster: &ClusterName,
        operations: Vec<pb::RequestOp>,
    ) -> Result<(), PublishError> {
        let claim = format!("{}claims/{cluster}", self.prefix);
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
                success: operations,
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
