//! Reports the kinds a cluster cannot read (its list or watch keeps failing, say a 403 on
//! EndpointSlices): an Event on its Secret when a kind becomes degraded and when it recovers,
//! a log line, the per-cluster, per-kind gauge, and the detail `/readyz` shows.
//!
//! A degraded kind does not make federator unready: the cluster's other kinds and every
//! other cluster still federate, so taking the process out of service would cost more than
//! the degraded kind does.

use std::collections::BTreeMap;

use kube::runtime::events::EventType;
use tokio::sync::watch;
use tracing::{info, warn};

use super::manager::Manager;
use crate::metrics::KindLabels;
use crate::model::ClusterName;
use crate::watch::{Transition, WatchHealth};

/// The watch health of every registered cluster, as last reported.
pub(crate) type WatchHealths = BTreeMap<ClusterName, WatchHealth>;

/// The `/readyz` detail: one line per degraded kind of a cluster, empty when none is.
pub(crate) fn degraded_lines(healths: &WatchHealths) -> String {
    let mut out = String::new();
    for (cluster, health) in healths {
        for (kind, reason) in health.degraded() {
            out.push_str(&format!("degraded: cluster {cluster}: {kind}: {reason}\n"));
        }
    }
    out
}

/// What changed between two reports: each kind of a cluster still registered that became
/// degraded (with why) or recovered. A cluster or kind that is gone is not reported.
fn transitions(
    before: &WatchHealths,
    current: &WatchHealths,
) -> Vec<(ClusterName, &'static str, Transition)> {
    let mut out = Vec::new();
    for (cluster, health) in current {
        for (&kind, now) in &health.kinds {
            let was = before
                .get(cluster)
                .and_then(|b| b.kinds.get(kind))
                .is_some_and(Option::is_some);
            let transition = match now {
                Some(reason) if !was => Transition::Degraded(reason.clone()),
                None if was => Transition::Recovered,
                _ => continue,
            };
            out.push((cluster.clone(), kind, transition));
        }
    }
    out
}

impl Manager {
    /// Publishes the watch health reports to `to` (what `/readyz` reads) from now on.
    pub(super) fn reporting_watch_health(mut self, to: watch::Sender<WatchHealths>) -> Self {
        self.watch_health = to;
        self
    }

    /// Publishes every cluster's status on `to` (for the gRPC API).
    pub(super) fn reporting_cluster_status(
        mut self,
        to: watch::Sender<super::ClusterStatuses>,
    ) -> Self {
        self.statuses = to;
        self
    }

    /// Reports each kind of each cluster that became degraded or recovered since the last
    /// call (Event on the cluster's Secret and a log line, once per change) and keeps the
    /// gauge and the `/readyz` detail current.
    pub(super) async fn report_watch_health(&mut self) {
        let before = self.watch_health.borrow().clone();
        // A watch that has not said which kinds it reads (still starting, or none while the
        // cluster is withdrawn) leaves the cluster's last report as it was.
        let current: WatchHealths = self
            .clusters
            .iter()
            .map(|(name, handle)| {
                let health = handle
                    .watch_health()
                    .filter(|h| !h.kinds.is_empty())
                    .or_else(|| before.get(name).cloned())
                    .unwrap_or_default();
                (name.clone(), health)
            })
            .collect();
        if current == before {
            return;
        }
        for (cluster, kind, transition) in transitions(&before, &current) {
            self.report_kind(&cluster, kind, transition).await;
        }
        for (name, health) in &current {
            self.status_watch(name, health);
            for (&kind, reason) in &health.kinds {
                let labels = KindLabels {
                    cluster: name.to_string(),
                    kind,
                };
                let degraded = i64::from(reason.is_some());
                self.metrics
                    .watch_degraded
                    .get_or_create(&labels)
                    .set(degraded);
            }
        }
        for (name, health) in &before {
            for &kind in health.kinds.keys() {
                let gone = current
                    .get(name)
                    .is_none_or(|c| !c.kinds.contains_key(kind));
                if gone {
                    self.metrics.watch_degraded.remove(&KindLabels {
                        cluster: name.to_string(),
                        kind,
                    });
                }
            }
        }
        self.watch_health.send_if_modified(|reported| {
            let changed = *reported != current;
            if changed {
                *reported = current;
            }
            changed
        });
    }

    async fn report_kind(&self, cluster: &ClusterName, kind: &'static str, transition: Transition) {
        let Some(secret) = self.clusters.get(cluster).map(|h| h.secret.clone()) else {
            return;
        };
        match transition {
            Transition::Degraded(reason) => {
                warn!(cluster = %cluster, kind, reason, "cluster watch degraded: its objects of this kind are frozen until it recovers");
                let note = format!(
                    "cluster {cluster} cannot read {kind}: {reason}; its {kind} objects stay as \
                     last read until it can (its other kinds and other clusters are unaffected)"
                );
                self.publish(&secret, EventType::Warning, "ClusterWatchDegraded", &note)
                    .await;
            }
            Transition::Recovered => {
                info!(cluster = %cluster, kind, "cluster watch recovered");
                let note = format!("cluster {cluster} reads {kind} again");
                self.publish(&secret, EventType::Normal, "ClusterWatchRecovered", &note)
                    .await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(kinds: &[(&'static str, Option<&str>)]) -> WatchHealth {
        WatchHealth {
            kinds: kinds
                .iter()
                .map(|(k, r)| (*k, r.map(str::to_owned)))
                .collect(),
        }
    }

    fn report(clusters: &[(&str, WatchHealth)]) -> WatchHealths {
        clusters
            .iter()
            .map(|(name, health)| (ClusterName::new(name), health.clone()))
            .collect()
    }

    #[test]
    fn each_change_of_a_kind_is_reported_once() {
        let forbidden = Some("list forbidden (403)");
        let healthy = report(&[(
            "east",
            health(&[("EndpointSlice", None), ("Service", None)]),
        )]);
        let degraded = report(&[(
            "east",
            health(&[("EndpointSlice", forbidden), ("Service", None)]),
        )]);
        let east = ClusterName::new("east");
        assert_eq!(
            transitions(&healthy, &degraded),
            [(
                east.clone(),
                "EndpointSlice",
                Transition::Degraded("list forbidden (403)".into())
            )]
        );
        assert_eq!(transitions(&degraded, &degraded), []);
        assert_eq!(
            transitions(&degraded, &healthy),
            [(east, "EndpointSlice", Transition::Recovered)]
        );
        // A new cluster is reported only for what is degraded; a gone one not at all.
        assert_eq!(transitions(&WatchHealths::new(), &healthy), []);
        assert_eq!(transitions(&degraded, &WatchHealths::new()), []);
        // A reason that changes while the kind stays degraded is no new transition.
        let other = report(&[(
            "east",
            health(&[("EndpointSlice", Some("watch failed")), ("Service", None)]),
        )]);
        assert_eq!(transitions(&degraded, &other), []);
    }

    #[test]
    fn readyz_detail_lists_degraded_kinds_by_cluster() {
        let healths = WatchHealths::from([
            (
                ClusterName::new("east"),
                health(&[
                    ("EndpointSlice", Some("list forbidden (403)")),
                    ("Node", Some("watch failed")),
                    ("Service", None),
                ]),
            ),
            (ClusterName::new("west"), health(&[("Service", None)])),
        ]);
        assert_eq!(
            degraded_lines(&healths),
            "degraded: cluster east: EndpointSlice: list forbidden (403)\n\
             degraded: cluster east: Node: watch failed\n"
        );
        assert_eq!(degraded_lines(&WatchHealths::new()), "");
    }
}
