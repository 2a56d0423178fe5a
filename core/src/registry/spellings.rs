//! The workloads of one host by how they spell it, for admission's spelling rule: one small
//! sorted vector per host, where nested maps cost over a KiB for the one spelling and few
//! workloads a host has.

use smol_str::SmolStr;

use super::cluster::WorkloadId;
use crate::model::ClusterName;

/// A workload of a host: its cluster and id.
pub(super) type Member = (ClusterName, WorkloadId);

/// One host's workloads by spelling (`""` for lower-case), with their creation times, sorted
/// by spelling, then workload.
#[derive(Debug, Default)]
pub(super) struct HostSpellings(Vec<(SmolStr, Member, Option<i64>)>);

impl HostSpellings {
    fn find(&self, spelling: &str, member: &Member) -> Result<usize, usize> {
        self.0
            .binary_search_by(|(s, m, _)| (s.as_str(), m).cmp(&(spelling, member)))
    }

    /// Records `member` under `spelling`, created at `created` (replacing its time).
    pub(super) fn insert(&mut self, spelling: SmolStr, member: Member, created: Option<i64>) {
        match self.find(&spelling, &member) {
            Ok(at) => self.0[at].2 = created,
            Err(at) => {
                // One workload more at a time: no spare capacity kept.
                self.0.reserve_exact(1);
                self.0.insert(at, (spelling, member, created));
            }
        }
    }

    /// Forgets `member` under `spelling`.
    pub(super) fn remove(&mut self, spelling: &str, member: &Member) {
        if let Ok(at) = self.find(spelling, member) {
            self.0.remove(at);
        }
    }

    /// Whether no workload is left.
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The spelling exported: its oldest workload's (unknown creation times last), ties to
    /// the first spelling in byte order.
    pub(super) fn exported(&self) -> Option<SmolStr> {
        self.0
            .iter()
            .min_by_key(|(spelling, _, created)| (created.unwrap_or(i64::MAX), spelling.as_str()))
            .map(|(spelling, _, _)| spelling.clone())
    }

    /// The workloads that spell the host `spelling`.
    pub(super) fn spelled(&self, spelling: &str) -> Vec<Member> {
        self.0
            .iter()
            .filter(|(s, _, _)| s == spelling)
            .map(|(_, member, _)| member.clone())
            .collect()
    }

    /// Every workload that spells the host other than `exported`, with its spelling.
    pub(super) fn other_than(&self, exported: &str) -> Vec<(SmolStr, Member)> {
        self.0
            .iter()
            .filter(|(s, _, _)| s != exported)
            .map(|(s, member, _)| (s.clone(), member.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::model::{ObjectKey, WorkloadKind};

    fn member(n: u8) -> Member {
        (
            ClusterName::new(format!("c{}", n % 2)),
            (
                WorkloadKind::Deployment,
                ObjectKey::new("ns", format!("w{n}")),
            ),
        )
    }

    proptest! {
        /// Any sequence of inserts and removes exports what nested maps (spelling, then
        /// workload, to creation time) would: the spelling of the oldest workload, ties to
        /// the first spelling; and lists the same workloads per spelling.
        #[test]
        fn agrees_with_nested_maps(
            ops in proptest::collection::vec((any::<bool>(), 0u8..3, 0u8..6, proptest::option::of(0i64..4)), 0..40)
        ) {
            let spellings = ["", "Prod.greeting", "prod.Greeting"];
            let mut ours = HostSpellings::default();
            let mut theirs: BTreeMap<String, BTreeMap<Member, Option<i64>>> = BTreeMap::new();
            for (insert, s, m, created) in ops {
                let spelling = spellings[usize::from(s)];
                if insert {
                    ours.insert(SmolStr::new(spelling), member(m), created);
                    theirs.entry(spelling.to_owned()).or_default().insert(member(m), created);
                } else {
                    ours.remove(spelling, &member(m));
                    if let Some(set) = theirs.get_mut(spelling) {
                        set.remove(&member(m));
                        if set.is_empty() {
                            theirs.remove(spelling);
                        }
                    }
                }
                let expected = theirs
                    .iter()
                    .min_by_key(|(spelling, workloads)| {
                        let oldest = workloads.values().map(|c| c.unwrap_or(i64::MAX)).min();
                        (oldest, spelling.as_str())
                    })
                    .map(|(spelling, _)| spelling.clone());
                prop_assert_eq!(ours.exported().map(|s| s.to_string()), expected);
                prop_assert_eq!(ours.is_empty(), theirs.is_empty());
                for spelling in spellings {
                    let listed: Vec<Member> = theirs.get(spelling).map(|set| set.keys().cloned().collect()).unwrap_or_default();
                    prop_assert_eq!(ours.spelled(spelling), listed);
                    let others: Vec<(SmolStr, Member)> = theirs
                        .iter()
                        .filter(|(s, _)| s.as_str() != spelling)
                        .flat_map(|(s, set)| set.keys().map(move |m| (SmolStr::new(s), m.clone())))
                        .collect();
                    prop_assert_eq!(ours.other_than(spelling), others);
                }
            }
        }
    }
}
