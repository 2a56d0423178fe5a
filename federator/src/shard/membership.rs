//! This replica's membership among the replicas that share clusters: its record in etcd
//! under a lease of its own, kept alive, and the live replicas as etcd lists them.
//!
//! Joining checks the shared settings against the live replicas' (a replica with another
//! host suffix or VIP range refuses to join, naming each setting), then registers. Two
//! replicas with different settings registering at once both see each other afterwards: the
//! later registration (by etcd revision) withdraws. The lease's term ends `lease -
//! renew_deadline` before etcd would expire the lease, as a leader's does: a replica cut off
//! from etcd stops acting as a member before its records vanish.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use federator_core::planner::election::ElectionTiming;
use federator_core::planner::membership::{self, MemberRecord, SettingMismatch};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

pub use super::members::Members;
use super::members::{Listed, follow, list, publish};
use crate::state::etcd::{EtcdClient, EtcdError};

/// Who this replica is and what it must agree on with the others.
#[derive(Clone, Debug)]
pub struct MemberOptions {
    /// The replica's name (its pod's, made unique).
    pub replica: String,
    /// The shared settings, by flag, as this replica runs with them.
    pub settings: BTreeMap<String, String>,
    /// The lease's timings (the election's).
    pub timing: ElectionTiming,
}

/// Why this replica did not join.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// Its shared settings differ from a live replica's.
    #[error("replica {replica} refuses to join: {}", shown(.mismatches))]
    Settings {
        /// This replica.
        replica: String,
        /// Each setting that differs, with the replica it differs from.
        mismatches: Vec<SettingMismatch>,
    },
    /// A live replica already registered under its name.
    #[error("replica {replica} refuses to join: etcd key {key} already names a live replica")]
    NameTaken {
        /// This replica.
        replica: String,
        /// The key.
        key: String,
    },
    /// etcd did not answer.
    #[error("replica {replica} cannot join: {source}")]
    Etcd {
        /// This replica.
        replica: String,
        /// Why.
        source: EtcdError,
    },
}

fn shown(mismatches: &[SettingMismatch]) -> String {
    let all: Vec<String> = mismatches.iter().map(ToString::to_string).collect();
    all.join("; ")
}

/// This replica, registered.
pub struct Membership {
    /// Until when this replica may act as a member (write to the clusters it claims);
    /// `None` once its lease is gone.
    pub term: watch::Receiver<Option<Instant>>,
    /// The live replicas.
    pub members: watch::Receiver<Members>,
    client: EtcdClient,
    lease: i64,
    /// Closes the term when this replica leaves.
    term_tx: Arc<watch::Sender<Option<Instant>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Membership {
    /// Registers this replica under `<prefix>members/<replica>`.
    pub async fn join(
        client: EtcdClient,
        prefix: &str,
        options: MemberOptions,
    ) -> Result<Self, JoinError> {
        let replica = options.replica.clone();
        let etcd = |source| JoinError::Etcd {
            replica: replica.clone(),
            source,
        };
        let dir = format!("{prefix}members/");
        let key = format!("{dir}{replica}");
        let (listed, _) = list(&client, &dir).await.map_err(etcd)?;
        refuse_mismatches(&options, &listed, None)?;

        let timing = options.timing;
        // Rounded up: the lease must outlast the term (`renew_deadline` after each renewal).
        let seconds = timing.lease().as_millis().div_ceil(1000).max(1);
        let ttl = i64::try_from(seconds).unwrap_or(i64::MAX);
        let sent = Instant::now();
        let lease = client.grant(ttl).await.map_err(etcd)?;
        let record = MemberRecord {
            replica: replica.clone(),
            settings: options.settings.clone(),
        };
        let registered = client.create_leased(&key, record.encode(), lease).await;
        let ours = match registered {
            Ok(Some(revision)) => revision,
            Ok(None) => {
                let _ = client.revoke(lease).await;
                return Err(JoinError::NameTaken { replica, key });
            }
            Err(err) => {
                let _ = client.revoke(lease).await;
                return Err(etcd(err));
            }
        };
        // Registered at the same time as a replica of other settings: the later one goes.
        let (listed, revision) = match list(&client, &dir).await {
            Ok(listed) => listed,
            Err(err) => {
                let _ = client.revoke(lease).await;
                return Err(etcd(err));
            }
        };
        if let Err(err) = refuse_mismatches(&options, &listed, Some(ours)) {
            let _ = client.revoke(lease).await;
            return Err(err);
        }

        let term_tx = Arc::new(watch::Sender::new(Some(sent + timing.renew_deadline())));
        let term = term_tx.subscribe();
        let (members_tx, members) = watch::channel(Members::default());
        publish(&listed, revision, &members_tx);
        let tasks = vec![
            tokio::spawn(keep_alive(
                client.clone(),
                lease,
                timing,
                Arc::clone(&term_tx),
                replica.clone(),
            )),
            tokio::spawn(follow(client.clone(), dir, members_tx)),
        ];
        info!(%replica, lease, "joined the replicas sharing clusters");
        Ok(Self {
            term,
            members,
            client,
            lease,
            term_tx,
            tasks,
        })
    }

    /// The lease this replica's record, and its claims, are held under.
    pub fn lease(&self) -> i64 {
        self.lease
    }

    /// Leaves: stops renewing and revokes the lease, so the record (and the claims held
    /// under it) go at once rather than at the lease's expiry.
    pub async fn leave(self) -> Result<(), EtcdError> {
        self.stop();
        self.client.revoke(self.lease).await
    }

    /// Stops renewing and ends the term: the writers stop before the claims can move.
    fn stop(&self) {
        for task in &self.tasks {
            task.abort();
        }
        self.term_tx.send_replace(None);
    }
}

impl Drop for Membership {
    /// A membership dropped without leaving stops renewing: its lease expires after its TTL,
    /// as a process killed would.
    fn drop(&mut self) {
        self.stop();
    }
}

/// Refuses when a live replica's settings differ; after registering (`ours`: this
/// record's create revision), only against replicas registered earlier.
fn refuse_mismatches(
    options: &MemberOptions,
    listed: &Listed,
    ours: Option<i64>,
) -> Result<(), JoinError> {
    let earlier: Vec<(String, Vec<u8>)> = listed
        .iter()
        .filter(|(_, _, created)| ours.is_none_or(|ours| *created < ours))
        .map(|(key, value, _)| (key.clone(), value.clone()))
        .collect();
    let (records, _) = membership::live(&earlier);
    let mismatches = membership::mismatches(&options.replica, &options.settings, &records);
    if mismatches.is_empty() {
        return Ok(());
    }
    Err(JoinError::Settings {
        replica: options.replica.clone(),
        mismatches,
    })
}

/// Keeps the lease alive every retry period; each renewal sent at `t` extends the term to
/// `t + renew_deadline`. A failed renewal extends nothing: the term runs out on its own.
async fn keep_alive(
    client: EtcdClient,
    lease: i64,
    timing: ElectionTiming,
    term: Arc<watch::Sender<Option<Instant>>>,
    replica: String,
) {
    let mut ticks = tokio::time::interval(timing.retry());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let sent = Instant::now();
        match tokio::time::timeout(timing.retry(), client.keep_alive(lease)).await {
            Ok(Ok(left)) if left > 0 => {
                term.send_replace(Some(sent + timing.renew_deadline()));
            }
            Ok(Ok(_)) => {
                error!(%replica, lease, "membership lease expired: no longer a member");
                term.send_replace(None);
                return;
            }
            Ok(Err(err)) => warn!(%replica, error = %err, "membership lease not renewed"),
            Err(_) => warn!(%replica, "membership lease renewal timed out"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn options(vip_range: &str) -> MemberOptions {
        MemberOptions {
            replica: "federator-b".into(),
            settings: BTreeMap::from([("vip-range".to_owned(), vip_range.to_owned())]),
            timing: ElectionTiming::default(),
        }
    }

    fn listed(entries: &[(&str, &str, i64)]) -> Listed {
        entries
            .iter()
            .map(|(replica, range, created)| {
                let record = MemberRecord {
                    replica: (*replica).to_owned(),
                    settings: BTreeMap::from([("vip-range".to_owned(), (*range).to_owned())]),
                };
                (format!("/f/members/{replica}"), record.encode(), *created)
            })
            .collect()
    }

    #[test]
    fn of_two_replicas_registered_at_once_with_other_settings_the_later_withdraws() {
        let ours = options("240.0.0.0/16");
        // Registered at revision 10; a replica of another range registered at 11.
        let both = listed(&[
            ("federator-b", "240.0.0.0/16", 10),
            ("federator-c", "10.0.0.0/8", 11),
        ]);
        assert!(
            refuse_mismatches(&ours, &both, Some(10)).is_ok(),
            "ours is earlier"
        );
        // ... or at 9: this one is the later and withdraws.
        let both = listed(&[
            ("federator-b", "240.0.0.0/16", 10),
            ("federator-c", "10.0.0.0/8", 9),
        ]);
        let err = refuse_mismatches(&ours, &both, Some(10)).unwrap_err();
        assert!(err.to_string().contains("federator-c"), "{err}");
        // Before registering, every live replica counts.
        assert!(refuse_mismatches(&ours, &both, None).is_err());
    }
}
