//! The state of every registered cluster as the manager last saw it, published on a watch
//! for the gRPC `ClusterStatus` call: its health state and since when, its last error (in
//! safe words), whether its removal is pending, the kinds it cannot read, and (sharded)
//! which replica owns it.

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::manager::Manager;
use crate::clusters::health::{Report, State};
use crate::model::ClusterName;
use crate::watch::WatchHealth;

/// What is known of one cluster's health.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterStatus {
    /// Its health state.
    pub state: State,
    /// When it entered that state.
    pub since: SystemTime,
    /// The last failure to connect or answer, in words safe to show anyone.
    pub last_error: Option<String>,
    /// Its Secret is gone; it is removed after the grace period unless one comes back.
    pub removal_pending: bool,
    /// The kinds whose list or watch keeps failing, and why.
    pub degraded: BTreeMap<&'static str, String>,
    /// Sharded: another replica watches it; this one follows.
    pub followed: bool,
    /// Sharded: the replica holding its claim.
    pub owner: Option<String>,
}

/// Every registered cluster's status, by name.
pub type ClusterStatuses = BTreeMap<ClusterName, ClusterStatus>;

impl ClusterStatus {
    fn new(state: State) -> Self {
        Self {
            state,
            since: SystemTime::now(),
            last_error: None,
            removal_pending: false,
            degraded: BTreeMap::new(),
            followed: false,
            owner: None,
        }
    }
}

impl Manager {
    /// Records `name`'s health state (the time only when it changed).
    pub(super) fn status_state(&self, name: &ClusterName, state: State) {
        self.statuses.send_if_modified(|all| {
            let status = all
                .entry(name.clone())
                .or_insert_with(|| ClusterStatus::new(state));
            if status.state == state {
                return false;
            }
            *status = ClusterStatus {
                state,
                since: SystemTime::now(),
                ..status.clone()
            };
            true
        });
    }

    /// Records what a health report says of `name` (in `state`): its last error, a pending
    /// removal. A cluster's first report may come before its first state is recorded.
    pub(super) fn status_report(&self, name: &ClusterName, state: State, report: &Report) {
        self.statuses.send_if_modified(|all| {
            let status = all
                .entry(name.clone())
                .or_insert_with(|| ClusterStatus::new(state));
            match report {
                Report::Unreachable(why) | Report::ConnectFailed(why) => {
                    status.last_error = Some(why.clone());
                }
                Report::RemovalPending(_) => status.removal_pending = true,
                Report::RemovalCancelled => status.removal_pending = false,
                Report::Reachable | Report::Outage | Report::Withdrawn => return false,
            }
            true
        });
    }

    /// Records the kinds of `name` that cannot be read.
    pub(super) fn status_watch(&self, name: &ClusterName, health: &WatchHealth) {
        let degraded: BTreeMap<&'static str, String> = health
            .degraded()
            .map(|(kind, why)| (kind, why.to_owned()))
            .collect();
        self.statuses
            .send_if_modified(|all| match all.get_mut(name) {
                Some(status) if status.degraded != degraded => {
                    status.degraded = degraded;
                    true
                }
                _ => false,
            });
    }

    /// Records who owns each cluster when sharded (the replica holding its claim), and
    /// whether this replica follows it: `(cluster, followed, owner)`, in one update.
    pub(super) fn status_owners<'a>(
        &self,
        owners: impl Iterator<Item = (&'a ClusterName, bool, Option<&'a str>)>,
    ) {
        self.statuses.send_if_modified(|all| {
            let mut changed = false;
            for (name, followed, owner) in owners {
                let status = all
                    .entry(name.clone())
                    .or_insert_with(|| ClusterStatus::new(State::Connecting));
                if status.followed != followed || status.owner.as_deref() != owner {
                    status.followed = followed;
                    status.owner = owner.map(str::to_owned);
                    changed = true;
                }
            }
            changed
        });
    }

    /// Forgets a removed cluster.
    pub(super) fn status_forget(&self, name: &ClusterName) {
        self.statuses
            .send_if_modified(|all| all.remove(name).is_some());
    }
}
