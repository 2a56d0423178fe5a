//! The writers' fence per cluster when clusters are sharded: a cluster's writer may start a
//! write while this replica holds the cluster's claim and its membership term lasts. Each
//! cluster gets the [`Fence`] the leader-elected writers read, fed with a term numbered by
//! the claim's create revision and ending with the membership term: a replica cut off from
//! etcd stops writing to every cluster before its lease, and with it its claims, expires.

use std::collections::BTreeMap;
use std::time::Instant;

use federator_core::model::ClusterName;
use federator_core::planner::election::Term;
use tokio::sync::watch;

use super::claims::Claimed;
use crate::leader::Fence;

/// The term this replica holds on each cluster it may write to.
pub fn cluster_terms(
    claimed: &Claimed,
    membership: Option<Instant>,
) -> BTreeMap<ClusterName, Term> {
    let Some(until) = membership else {
        return BTreeMap::new();
    };
    claimed
        .writable
        .iter()
        .filter_map(|cluster| {
            let revision = claimed.revisions.get(cluster)?;
            let number = u64::try_from(*revision).ok()?;
            Some((cluster.clone(), Term { number, until }))
        })
        .collect()
}

/// Every cluster's fence.
#[derive(Default)]
pub struct ClusterFences {
    terms: BTreeMap<ClusterName, watch::Sender<Option<Term>>>,
    /// The terms as last updated: a fence made later starts with its cluster's.
    current: BTreeMap<ClusterName, Term>,
}

impl ClusterFences {
    /// The fence of `cluster`'s writer (closed unless the cluster is claimed here).
    pub fn fence(&mut self, cluster: &ClusterName) -> Fence {
        let term = self.current.get(cluster).copied();
        let sender = self
            .terms
            .entry(cluster.clone())
            .or_insert_with(|| watch::channel(term).0);
        Fence::new(sender.subscribe())
    }

    /// Gives every cluster's fence its term now: opened, renewed, or closed.
    pub fn update(&mut self, claimed: &Claimed, membership: Option<Instant>) {
        let terms = cluster_terms(claimed, membership);
        // Fences no one reads any more go.
        self.terms.retain(|_, sender| sender.receiver_count() > 0);
        for (cluster, sender) in &self.terms {
            let term = terms.get(cluster).copied();
            sender.send_if_modified(|old| {
                let changed = *old != term;
                *old = term;
                changed
            });
        }
        self.current = terms;
    }
}

impl ClusterFences {
    /// Closes every fence (leaving): no writer starts another write.
    pub fn close_all(&mut self) {
        self.current.clear();
        for sender in self.terms.values() {
            sender.send_replace(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use super::*;

    fn claimed(writable: &[&str]) -> Claimed {
        let names: BTreeSet<ClusterName> = writable.iter().map(|c| ClusterName::new(*c)).collect();
        Claimed {
            revisions: names.iter().map(|c| (c.clone(), 7)).collect(),
            holders: names.iter().map(|c| (c.clone(), "me".to_owned())).collect(),
            writable: names,
            generation: 0,
        }
    }

    #[tokio::test]
    async fn a_cluster_s_writer_may_write_while_it_is_claimed_and_the_membership_lasts() {
        let mut fences = ClusterFences::default();
        let east = fences.fence(&ClusterName::new("east"));
        let mut west = fences.fence(&ClusterName::new("west"));
        assert!(
            !east.may_write() && !west.may_write(),
            "closed until claimed"
        );

        let until = Instant::now() + Duration::from_secs(60);
        fences.update(&claimed(&["east"]), Some(until));
        assert_eq!(east.term(), Some(Term { number: 7, until }));
        assert!(!west.may_write(), "west is not claimed here");

        // A fence made now starts open.
        assert_eq!(
            fences.fence(&ClusterName::new("east")).term(),
            Some(Term { number: 7, until })
        );
        // Released: closed at once.
        fences.update(&claimed(&[]), Some(until));
        assert!(!east.may_write());
        // The membership lost: nothing may be written anywhere.
        fences.update(&claimed(&["east", "west"]), None);
        assert!(!east.may_write() && !west.may_write());
        // A membership term already over opens nothing.
        fences.update(&claimed(&["west"]), Some(Instant::now()));
        assert!(!west.may_write());
        west.lost().await;
    }
}
