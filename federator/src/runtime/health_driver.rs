//! Feeds each cluster's health machine ([`crate::clusters::health`]) and carries out what it
//! decides: connect, withdraw, restart, remove, and tell people (a log line and an Event on
//! the cluster's Secret), with the state of every cluster as a metric.

use std::time::Instant;

use kube::runtime::events::EventType;
use tracing::{info, warn};

use super::manager::Manager;
use crate::clusters::health::{Action, Observation, OnUnreachable, Report, State};
use crate::metrics::ClusterStateLabels;
use crate::model::ClusterName;

const STATES: [State; 5] = [
    State::Connecting,
    State::Listing,
    State::Synced,
    State::Unreachable,
    State::Withdrawn,
];

impl Manager {
    /// Folds an observation of `name` into its health and carries out the actions.
    pub(super) async fn observe(&mut self, name: &ClusterName, observation: Observation) {
        let Some(handle) = self.clusters.get_mut(name) else {
            return;
        };
        let actions = handle.health.observe(observation, Instant::now());
        self.carry_out(name, actions).await;
    }

    /// Lets time pass for every cluster.
    pub(super) async fn tick_all(&mut self) {
        let now = Instant::now();
        let names: Vec<ClusterName> = self.clusters.keys().cloned().collect();
        for name in names {
            let Some(handle) = self.clusters.get_mut(&name) else {
                continue;
            };
            let actions = handle.health.tick(now);
            self.carry_out(&name, actions).await;
        }
    }

    async fn carry_out(&mut self, name: &ClusterName, actions: Vec<Action>) {
        for action in actions {
            match action {
                // Box::pin: connecting observes its outcome, which may act again.
                Action::Connect => Box::pin(self.connect(name, true)).await,
                Action::Withdraw => self.withdraw(name).await,
                Action::Restart => self.restart(name).await,
                Action::Remove => {
                    self.remove(name).await;
                    self.clear_state_metric(name);
                    return;
                }
                Action::Report(report) => self.report(name, &report).await,
            }
        }
        self.set_state_metric(name);
    }

    async fn report(&self, name: &ClusterName, report: &Report) {
        let Some(handle) = self.clusters.get(name) else {
            return;
        };
        let stale_after = self.options.stale_after;
        let note = match report {
            Report::Reachable => format!("cluster {name} is reachable"),
            Report::Unreachable(why) => match self.options.on_unreachable {
                OnUnreachable::Keep => format!(
                    "cluster {name} is unreachable: {why}; its last-known backends are kept"
                ),
                OnUnreachable::Withdraw => format!(
                    "cluster {name} is unreachable: {why}; its backends are kept until \
                     stale-after ({stale_after:?})"
                ),
            },
            Report::ConnectFailed(why) => {
                format!("cannot connect to cluster {name}: {why}; retrying with backoff")
            }
            Report::Outage => format!(
                "cluster {name} unreachable for longer than {stale_after:?}; its last-known \
                 backends are kept (--on-unreachable keep): outlier detection ejects the \
                 endpoints that fail"
            ),
            Report::Withdrawn => format!(
                "cluster {name} unreachable for longer than {stale_after:?}; its backends are \
                 withdrawn until it answers again (--on-unreachable withdraw)"
            ),
            Report::RemovalPending(grace) => format!(
                "no Secret registers cluster {name} any more; it is removed in {}s unless one \
                 does again",
                grace.as_secs()
            ),
            Report::RemovalCancelled => {
                format!("cluster {name} is registered again; nothing changes")
            }
        };
        self.status_report(name, handle.health.state(), report);
        let reason = report.reason();
        let secret = handle.secret.name.as_deref().unwrap_or_default();
        let type_ = if report.is_normal() {
            info!(cluster = %name, secret, reason, "{note}");
            EventType::Normal
        } else {
            warn!(cluster = %name, secret, reason, "{note}");
            EventType::Warning
        };
        self.publish(&handle.secret, type_, reason, &note).await;
    }

    fn set_state_metric(&self, name: &ClusterName) {
        let Some(handle) = self.clusters.get(name) else {
            return;
        };
        let current = handle.health.state();
        self.status_state(name, current);
        for state in STATES {
            let labels = ClusterStateLabels {
                cluster: name.to_string(),
                state: state.name(),
            };
            let value = i64::from(state == current);
            self.metrics.cluster_state.get_or_create(&labels).set(value);
        }
    }

    fn clear_state_metric(&self, name: &ClusterName) {
        self.status_forget(name);
        for state in STATES {
            self.metrics.cluster_state.remove(&ClusterStateLabels {
                cluster: name.to_string(),
                state: state.name(),
            });
        }
    }
}
