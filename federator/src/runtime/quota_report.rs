//! Reports clusters past their host quota: an Event on the Secret when one crosses it and
//! when it is back under, and a per-cluster gauge.

use std::collections::BTreeMap;

use kube::runtime::events::EventType;
use tracing::{info, warn};

use super::manager::Manager;
use crate::model::ClusterName;

impl Manager {
    /// Reports on its Secret a cluster that goes past its host quota, and when it is back
    /// under; keeps the per-cluster gauge current.
    pub(super) async fn report_quotas(&mut self) {
        let current: BTreeMap<ClusterName, usize> = {
            let view = self.views.borrow();
            self.clusters
                .keys()
                .map(|name| (name.clone(), view.hosts_over_quota(name)))
                .collect()
        };
        let cap = self.options.settings.registry.max_hosts_per_cluster;
        for (name, &held) in &current {
            let before = self.over_quota.get(name).copied().unwrap_or(0);
            let labels = crate::metrics::ClusterLabels {
                cluster: name.to_string(),
            };
            self.metrics
                .hosts_over_quota
                .get_or_create(&labels)
                .set(i64::try_from(held).unwrap_or(i64::MAX));
            let Some(secret) = self.clusters.get(name).map(|h| h.secret.clone()) else {
                continue;
            };
            if held > 0 && before == 0 {
                warn!(cluster = %name, held, cap, "cluster past its host quota; its further hosts are not exported");
                let note = format!(
                    "cluster {name} has more global hosts than --max-hosts-per-cluster={cap}: \
                     {held} are not exported (the others and every other cluster's are \
                     unaffected); find what creates them, or raise the cap"
                );
                self.publish(&secret, EventType::Warning, "HostQuotaExceeded", &note)
                    .await;
            } else if held == 0 && before > 0 {
                info!(cluster = %name, "cluster back under its host quota");
                let note =
                    format!("cluster {name} is back under its host quota; every host is exported");
                self.publish(&secret, EventType::Normal, "HostQuotaRestored", &note)
                    .await;
            }
        }
        for gone in self.over_quota.keys().filter(|n| !current.contains_key(*n)) {
            let labels = crate::metrics::ClusterLabels {
                cluster: gone.to_string(),
            };
            self.metrics.hosts_over_quota.remove(&labels);
        }
        self.over_quota = current;
    }
}
