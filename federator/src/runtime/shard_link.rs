//! Setting up a replica that shares clusters with others (`--leader-election shard`): it
//! joins the members in etcd, then runs its claims, its writers' fences and its following
//! of the others' published objects, and hands the registry loop and the manager their
//! ends of it.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::RunOptions;
use super::shard_run::ShardLink;
use super::shared_publish::publish_task;
use super::shared_registry::SharedRegistry;
use crate::leader::Term;
use crate::metrics::Metrics;
use crate::model::ClusterName;
use crate::shard::claims::{self, ClaimInputs, ClaimOptions, Claimed, Writing};
use crate::shard::fences::ClusterFences;
use crate::shard::follow::{SharedUpdate, follow_shared};
use crate::shard::membership::{JoinError, MemberOptions, Membership};
use crate::shard::objects::Publisher;
use crate::shard::{ShardOptions, shared_settings};
use crate::state::etcd::{EtcdClient, EtcdError};

/// Why this replica cannot share clusters.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// Sharding runs on etcd only.
    #[error(
        "--leader-election shard needs the etcd store (--store etcd://HOST:PORT): the replicas share clusters through it"
    )]
    NeedsEtcd,
    /// The etcd client cannot be built (a bad endpoint or TLS file).
    #[error("{0}")]
    Etcd(EtcdError),
    /// The replica did not join (settings differ, name taken, etcd silent).
    #[error("{0}")]
    Join(JoinError),
}

/// A replica sharing clusters, running.
pub(super) struct Sharding {
    /// Its membership and tasks: left on shutdown, so its claims go at once.
    pub(super) departure: Departure,
    /// Its membership as a term, for the registry loop (which records VIPs while it lasts
    /// and passes it on to the writers once the VIP store is read).
    pub(super) terms: watch::Receiver<Option<Term>>,
    /// The registry loop's end.
    pub(super) registry: SharedRegistry,
    /// What following the others' clusters brings, for the registry loop.
    pub(super) updates: mpsc::Receiver<SharedUpdate>,
    /// The manager's end.
    pub(super) manager: ShardLink,
}

/// What leaving takes.
pub(super) struct Departure {
    membership: Membership,
    tasks: Vec<JoinHandle<()>>,
    replica: String,
    fences: Arc<Mutex<ClusterFences>>,
}

impl Sharding {
    /// Joins and starts everything; the writers' fences open with `writer_terms` (the
    /// membership once the VIP store is read) and each cluster's claim.
    pub(super) async fn start(
        shard: &ShardOptions,
        options: &RunOptions,
        writer_terms: watch::Receiver<Option<Term>>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ShardError> {
        let crate::state::StoreOptions::Etcd(etcd) = &options.store else {
            return Err(ShardError::NeedsEtcd);
        };
        let client = EtcdClient::new(etcd)
            .map_err(ShardError::Etcd)?
            .counted(metrics.etcd.clone());
        let prefix = etcd.prefix.clone();
        let member = MemberOptions {
            replica: shard.replica.clone(),
            settings: shared_settings(options),
            timing: shard.timing,
        };
        let membership = Membership::join(client.clone(), &prefix, member)
            .await
            .map_err(ShardError::Join)?;
        let lease = membership.lease();
        let (terms_tx, terms) = watch::channel(None);
        let (clusters_tx, clusters) = watch::channel(BTreeSet::new());
        let (writing_tx, writing) = watch::channel(Writing::default());
        let (claimed_tx, claimed) = watch::channel(Claimed::default());
        let (local_tx, local) = watch::channel(BTreeSet::<ClusterName>::new());
        let (listed_tx, listed) = watch::channel(BTreeSet::new());
        let (shared_tx, shared_rx) = mpsc::channel(4096);
        let (publish_tx, publish_rx) = mpsc::unbounded_channel();
        let fences = Arc::new(Mutex::new(ClusterFences::default()));
        let claim_options = ClaimOptions {
            replica: shard.replica.clone(),
            prefix: prefix.clone(),
            lease,
            retry: shard.timing.retry(),
        };
        let inputs = ClaimInputs {
            members: membership.members.clone(),
            clusters,
            writing,
        };
        let tasks = vec![
            tokio::spawn(membership_terms(membership.term.clone(), lease, terms_tx)),
            tokio::spawn(claims::run(
                client.clone(),
                claim_options,
                inputs,
                claimed_tx,
            )),
            tokio::spawn(keep_fences(
                claimed.clone(),
                writer_terms,
                fences.clone(),
                metrics,
            )),
            tokio::spawn(follow_shared(
                client.clone(),
                prefix.clone(),
                local.clone(),
                shared_tx,
            )),
            tokio::spawn(publish_task(
                Publisher::new(client, &shard.replica, lease, &prefix),
                publish_rx,
                claimed.clone(),
                local.clone(),
            )),
        ];
        let registry = SharedRegistry::new(publish_tx, local, listed_tx);
        let manager = ShardLink {
            term: membership.term.clone(),
            replica: shard.replica.clone(),
            members: membership.members.clone(),
            claimed,
            clusters: clusters_tx,
            writing: writing_tx,
            local: local_tx,
            listed,
            fences,
        };
        Ok(Self {
            departure: Departure {
                membership,
                tasks,
                replica: shard.replica.clone(),
                fences: manager.fences.clone(),
            },
            terms,
            registry,
            updates: shared_rx,
            manager,
        })
    }
}

impl Departure {
    /// Leaves the members (its record and claims go at once) and stops its tasks.
    pub(super) async fn leave(self) {
        for task in &self.tasks {
            task.abort();
        }
        self.fences
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .close_all();
        let replica = self.replica;
        match self.membership.leave().await {
            Ok(()) => tracing::info!(%replica, "left the replicas sharing clusters"),
            Err(err) => {
                tracing::warn!(%replica, error = %err, "leaving failed; the claims expire with the lease")
            }
        }
    }
}

/// The membership's term as the registry loop's term (numbered by the lease: one term for
/// the replica's life).
async fn membership_terms(
    mut term: watch::Receiver<Option<std::time::Instant>>,
    lease: i64,
    out: watch::Sender<Option<Term>>,
) {
    let number = u64::try_from(lease).unwrap_or_default();
    loop {
        let until = *term.borrow_and_update();
        out.send_replace(until.map(|until| Term { number, until }));
        if term.changed().await.is_err() {
            out.send_replace(None);
            return;
        }
    }
}

/// Keeps each cluster's fence on its claim and the membership's term.
async fn keep_fences(
    mut claimed: watch::Receiver<Claimed>,
    mut terms: watch::Receiver<Option<Term>>,
    fences: Arc<Mutex<ClusterFences>>,
    metrics: Arc<Metrics>,
) {
    loop {
        let now = claimed.borrow_and_update().clone();
        let until = terms.borrow_and_update().map(|t| t.until);
        fences
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .update(&now, until);
        metrics
            .clusters_claimed
            .set(i64::try_from(now.writable.len()).unwrap_or(i64::MAX));
        tokio::select! {
            changed = claimed.changed() => if changed.is_err() { return },
            changed = terms.changed() => if changed.is_err() { return },
        }
    }
}
