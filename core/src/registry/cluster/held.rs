//! A cluster's workloads whose host is not exported for them, indexed by why: what the
//! published view reads of them (hosts over quota, spelling conflicts) costs what it reports,
//! not how many workloads a runaway cluster holds back.

use std::collections::{BTreeMap, BTreeSet};

use super::WorkloadId;
use crate::model::Host;
use crate::registry::Held;

/// Held workloads, with an index per reason.
#[derive(Debug, Default)]
pub(crate) struct HeldWorkloads {
    all: BTreeMap<WorkloadId, (Host, Held)>,
    /// Workloads held for the quota, by host: its length is the hosts over quota.
    over_quota: BTreeMap<Host, BTreeSet<WorkloadId>>,
    /// Workloads held because another spelling of their host is exported.
    conflicts: BTreeSet<WorkloadId>,
}

impl HeldWorkloads {
    /// Holds `id` (for `host`, because `why`), replacing what held it before.
    pub(crate) fn insert(&mut self, id: WorkloadId, host: Host, why: Held) {
        self.remove(&id);
        match &why {
            Held::OverQuota => {
                self.over_quota
                    .entry(host.clone())
                    .or_default()
                    .insert(id.clone());
            }
            Held::SpellingConflict { .. } => {
                self.conflicts.insert(id.clone());
            }
        }
        self.all.insert(id, (host, why));
    }

    /// Releases `id`; what held it, if anything.
    pub(crate) fn remove(&mut self, id: &WorkloadId) -> Option<(Host, Held)> {
        let (host, why) = self.all.remove(id)?;
        match why {
            Held::OverQuota => {
                if let Some(ids) = self.over_quota.get_mut(&host) {
                    ids.remove(id);
                    if ids.is_empty() {
                        self.over_quota.remove(&host);
                    }
                }
            }
            Held::SpellingConflict { .. } => {
                self.conflicts.remove(id);
            }
        }
        Some((host, why))
    }

    /// Whether `id` is held.
    pub(crate) fn contains_key(&self, id: &WorkloadId) -> bool {
        self.all.contains_key(id)
    }

    /// Releases every workload held for the quota.
    pub(crate) fn release_over_quota(&mut self) {
        for id in std::mem::take(&mut self.over_quota).into_values().flatten() {
            self.all.remove(&id);
        }
    }

    /// How many hosts are held back by the quota.
    pub(crate) fn hosts_over_quota(&self) -> usize {
        self.over_quota.len()
    }

    /// The host held for the quota whose first workload sorts first, with all its workloads.
    pub(crate) fn first_over_quota(&self) -> Option<(Host, Vec<WorkloadId>)> {
        let (host, _) = self
            .over_quota
            .iter()
            .filter_map(|(host, ids)| Some((host, ids.first()?)))
            .min_by_key(|(_, first)| *first)?;
        let ids = self.over_quota.get(host)?.iter().cloned().collect();
        Some((host.clone(), ids))
    }

    /// The workloads held for a spelling conflict, sorted.
    pub(crate) fn spelling_conflicts(&self) -> impl Iterator<Item = (&WorkloadId, &Host, &Held)> {
        self.conflicts
            .iter()
            .filter_map(|id| self.all.get(id).map(|(host, why)| (id, host, why)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ObjectKey, WorkloadKind};

    fn id(name: &str) -> WorkloadId {
        (WorkloadKind::Deployment, ObjectKey::new("ns", name))
    }

    fn host(identity: &str) -> Host {
        Host::build("prod", identity, "global").unwrap()
    }

    fn conflict() -> Held {
        Held::SpellingConflict {
            spelling: "Prod.A".into(),
            exported: String::new(),
        }
    }

    #[test]
    fn indexes_follow_every_change_of_reason() {
        let mut held = HeldWorkloads::default();
        held.insert(id("b1"), host("b"), Held::OverQuota);
        held.insert(id("b2"), host("b"), Held::OverQuota);
        held.insert(id("a1"), host("a"), Held::OverQuota);
        held.insert(id("c1"), host("c"), conflict());
        assert_eq!(held.hosts_over_quota(), 2);
        assert_eq!(held.spelling_conflicts().count(), 1);
        // The host whose first workload sorts first: a (a1 < b1).
        assert_eq!(held.first_over_quota(), Some((host("a"), vec![id("a1")])));

        // Held for another reason now: it moves index.
        held.insert(id("a1"), host("a"), conflict());
        assert_eq!(held.hosts_over_quota(), 1);
        assert_eq!(held.spelling_conflicts().count(), 2);
        assert_eq!(
            held.first_over_quota(),
            Some((host("b"), vec![id("b1"), id("b2")]))
        );

        held.remove(&id("b1"));
        assert_eq!(held.hosts_over_quota(), 1, "b2 still holds b");
        held.release_over_quota();
        assert_eq!(held.hosts_over_quota(), 0);
        assert!(held.first_over_quota().is_none());
        assert!(!held.contains_key(&id("b2")));
        assert!(held.contains_key(&id("c1")) && held.contains_key(&id("a1")));
    }
}
