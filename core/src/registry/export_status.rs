//! The conditions federator reports on each ServiceExport, as the MCS API names them:
//! `Valid` (is there a Service to export), `Ready` (is it exported) and `Conflict` (do the
//! exports of the same service in other clusters disagree on its ports or type; the oldest
//! export wins, as the specification says).

use super::global::RejectedBackend;
use super::status::{ObjectStatus, StatusCondition, StatusKind, condition};
use super::{GlobalService, Registry};
use crate::model::{ClusterName, Host, WorkloadInfo, WorkloadKind};

impl Registry {
    /// The status of every ServiceExport, in no particular order.
    pub(super) fn export_statuses(&self, out: &mut Vec<ObjectStatus>) {
        for (cluster, state) in self.clusters.iter() {
            let exports = state
                .all_workloads()
                .filter(|w| w.kind == WorkloadKind::ServiceExport);
            for export in exports {
                let id = (export.kind, export.key.clone());
                let host = export.host(&self.config.host_suffix).ok();
                let service = host
                    .as_ref()
                    .and_then(|h| self.hosts.get(h))
                    .map(|e| &*e.service);
                let valid = match state.service(&export.key) {
                    None => condition(
                        "Valid",
                        false,
                        "NoService",
                        format!("no Service {} in cluster {cluster}", export.key),
                    ),
                    Some(s) if s.ports.is_empty() => condition(
                        "Valid",
                        false,
                        "NoTCPPorts",
                        "the Service has no TCP port, and federator carries TCP ports only".into(),
                    ),
                    Some(_) => condition("Valid", true, "Valid", "the Service exists".into()),
                };
                let ready = if !valid.status {
                    condition("Ready", false, "Pending", "waiting for its Service".into())
                } else if state.held.contains_key(&id) {
                    condition(
                        "Ready",
                        false,
                        "Pending",
                        format!("cluster {cluster} exports as many hosts as it is allowed"),
                    )
                } else {
                    ready(service, cluster)
                };
                let conflict = conflict(service, cluster, export);
                out.push(ObjectStatus {
                    cluster: cluster.clone(),
                    kind: StatusKind::ServiceExport,
                    key: export.key.clone(),
                    generation: export.generation,
                    conditions: vec![valid, ready, conflict],
                    hosts: host.into_iter().collect::<Vec<Host>>(),
                    unknown_identities: Vec::new(),
                });
            }
        }
    }
}

/// Whether the export is in force: its cluster's Service backs the clusterset service, which
/// has its clusterset IP (a headless one needs none).
fn ready(service: Option<&GlobalService>, cluster: &ClusterName) -> StatusCondition {
    let Some(service) = service else {
        return condition("Ready", false, "Pending", "not folded in yet".into());
    };
    if service.rejected.iter().any(|r| &r.cluster == cluster) {
        return condition(
            "Ready",
            false,
            "Failed",
            "its Service conflicts with the oldest export's (see Conflict)".into(),
        );
    }
    let headless = service.clusterset.as_ref().is_some_and(|c| c.headless);
    if !headless && service.vip.is_none() {
        return condition(
            "Ready",
            false,
            "Failed",
            "no clusterset IP is left in federator's VIP range".into(),
        );
    }
    condition(
        "Ready",
        true,
        "Exported",
        format!("imported into every cluster as {}", service.host),
    )
}

/// Whether the exports of the service disagree: raised on every export of it, naming the
/// losers' clusters and what differs.
fn conflict(
    service: Option<&GlobalService>,
    cluster: &ClusterName,
    export: &WorkloadInfo,
) -> StatusCondition {
    let Some(service) = service.filter(|s| !s.rejected.is_empty()) else {
        return condition(
            "Conflict",
            false,
            "NoConflicts",
            "every export of the service agrees".into(),
        );
    };
    let rejected = &service.rejected;
    let reason = |r: &RejectedBackend| {
        let headless = service.clusterset.as_ref().is_some_and(|c| c.headless);
        if r.backend.headless != headless {
            "TypeConflict"
        } else {
            "PortConflict"
        }
    };
    if let Some(mine) = rejected.iter().find(|r| &r.cluster == cluster) {
        return condition(
            "Conflict",
            true,
            reason(mine),
            format!(
                "the {} of Service {} differ from those of the oldest export of {}; this export is left out",
                if reason(mine) == "TypeConflict" {
                    "type"
                } else {
                    "ports"
                },
                export.key,
                service.host
            ),
        );
    }
    let mut reasons: Vec<&'static str> = rejected.iter().map(reason).collect();
    reasons.sort_unstable();
    reasons.dedup();
    let clusters: Vec<&str> = rejected.iter().map(|r| r.cluster.as_str()).collect();
    condition(
        "Conflict",
        true,
        if reasons.len() == 1 {
            reasons[0]
        } else {
            "PortConflict,TypeConflict"
        },
        format!(
            "the exports in cluster(s) {} disagree; this one is the oldest and wins",
            clusters.join(", ")
        ),
    )
}
