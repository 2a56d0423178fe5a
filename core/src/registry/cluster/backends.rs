//! A cluster's backends for a host: the Services that select the host's workloads and their
//! ready endpoints.

use std::collections::{BTreeMap, BTreeSet};

use std::sync::Arc;

use super::{ClusterState, Id, pair_hash, selects};
use crate::model::{
    Host, Locality, MeshPort, ObjectKey, ServiceInfo, SmolStr, WorkloadInfo, WorkloadKind,
};
use crate::registry::global::LocalBackend;
use crate::registry::interner::Interner;

/// A Service chosen to back a host, before its endpoints are gathered.
struct Backing {
    key: ObjectKey,
    ports: Arc<[MeshPort]>,
    headless: bool,
    /// The creation time that decides whose ports win.
    created: Option<i64>,
    /// Its share of traffic, when Argo weights it.
    weight: Option<u32>,
}

impl ClusterState {
    /// The backends this cluster has for `host`: the Services selecting its workloads (a
    /// headless Service only when no regular one does), with ready endpoints per locality.
    pub(crate) fn compute_backends(
        &mut self,
        host: &Host,
        localities: &mut Interner<Locality>,
    ) -> Vec<LocalBackend> {
        let chosen = self.backing_services(host);
        chosen
            .into_iter()
            .map(|backing| LocalBackend {
                endpoints: self.ready_endpoints(&backing.key, localities),
                service: backing.key,
                ports: backing.ports,
                created: backing.created,
                headless: backing.headless,
                weight: backing.weight,
            })
            .collect()
    }

    /// The Services that back `host` here.
    fn backing_services(&self, host: &Host) -> Vec<Backing> {
        let mut services: BTreeSet<&ObjectKey> = BTreeSet::new();
        // MCS resolves conflicts by the oldest ServiceExport, not the oldest Service.
        let mut export_created = None;
        let mut weights: BTreeMap<&ObjectKey, u32> = BTreeMap::new();
        // In the order of their kind and key, whatever order they came in: where two weight
        // one Service, the last in that order wins, on every replay alike.
        let mut workloads: Vec<&WorkloadInfo> = self.host_workloads(host).collect();
        workloads.sort_unstable_by(|a, b| (a.kind, &a.key).cmp(&(b.kind, &b.key)));
        for workload in workloads {
            if workload.kind == WorkloadKind::ServiceExport {
                // A ServiceExport names its Service: selector or not, headless or not.
                let key = &workload.key;
                if self.services.get(key).is_some_and(|s| !s.ports.is_empty()) {
                    services.insert(key);
                    export_created = Some(workload.created);
                }
                continue;
            }
            let shares = canary_shares(workload);
            let mut matched = self.services_selecting(workload);
            // An Argo Rollout's host is its active or stable Service (its variant's the
            // preview or canary one), not every Service over its pods; a Service Argo pinned
            // serves no workload that does not name it (a Deployment a Rollout borrows its
            // template from would otherwise get the preview pods too).
            matched.retain(|s| match (&shares, &workload.service) {
                // Weighted by Argo: stable and canary, each with a share above zero.
                (Some(shares), _) => shares.get(s.key.name.as_str()).is_some_and(|w| *w > 0),
                (None, Some(only)) => &s.key.name == only,
                (None, None) => !s.pinned,
            });
            for s in &matched {
                if let Some(weight) = shares.as_ref().and_then(|w| w.get(s.key.name.as_str())) {
                    weights.insert(&s.key, *weight);
                }
            }
            let any_regular = matched.iter().any(|s| !s.headless);
            services.extend(
                matched
                    .into_iter()
                    .filter(|s| !(any_regular && s.headless))
                    .map(|s| &s.key),
            );
        }
        services
            .into_iter()
            .filter_map(|key| self.services.get(key))
            .map(|service| Backing {
                key: service.key.clone(),
                ports: Arc::clone(&service.ports),
                headless: service.headless,
                created: export_created.unwrap_or(service.created),
                weight: weights.get(&service.key).copied(),
            })
            .collect()
    }

    /// Services in the workload's namespace that select its pods and offer mesh ports.
    pub(crate) fn services_selecting(&self, workload: &WorkloadInfo) -> Vec<&ServiceInfo> {
        let Some(ns) = self.namespaces.get(&workload.key.namespace) else {
            return Vec::new();
        };
        // Only Services whose selector starts with one of the pods' pairs can select them.
        let mut ids: Vec<Id> = workload
            .pod_labels
            .iter()
            .filter_map(|(key, value)| ns.services_by_pair.get(&pair_hash(key, value)))
            .flatten()
            .copied()
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut services: Vec<&ServiceInfo> = ids
            .into_iter()
            .filter_map(|id| self.services.by_id(id))
            .filter(|s| !s.ports.is_empty() && selects(&s.selector, &workload.pod_labels))
            .collect();
        services.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        services
    }
}

/// For a canary Rollout that Argo weights, the share of its stable and canary Services by
/// name: `100 - w` and `w` (a share of 0 leaves that Service out).
fn canary_shares(workload: &WorkloadInfo) -> Option<BTreeMap<SmolStr, u32>> {
    let weight = workload.canary_weight?.min(100);
    let stable = workload.service.clone()?;
    let canary = match &workload.rollout_role {
        Some((crate::model::RolloutRole::Canary, canary)) => canary.clone(),
        _ => return None,
    };
    (workload.kind == WorkloadKind::Rollout)
        .then(|| BTreeMap::from([(stable, 100 - weight), (canary, weight)]))
}
