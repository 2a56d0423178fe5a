use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

fn clusters(n: usize) -> Vec<ClusterName> {
    (0..n)
        .map(|i| ClusterName::new(format!("cluster-{i}")))
        .collect()
}

fn replicas(names: &[usize]) -> Vec<String> {
    names.iter().map(|i| format!("federator-{i}")).collect()
}

#[test]
fn every_replica_computes_the_same_owner_whatever_order_it_lists_replicas_in() {
    let mut members = replicas(&[0, 1, 2]);
    let forward = assign(&clusters(50), &members);
    members.reverse();
    assert_eq!(assign(&clusters(50), &members), forward);
    assert!(assign(&clusters(3), &[]).is_empty(), "no replica, no owner");
}

#[test]
fn weights_are_fixed_by_the_names() {
    // A change of these values moves clusters between replicas of two versions running side
    // by side: it must be a decision, not an accident.
    assert_eq!(weight("federator-0", "east"), 0xbf86_e62d_a537_a538);
    assert_ne!(weight("federator-0", "east"), weight("federator-1", "east"));
}

#[test]
fn clusters_spread_evenly_over_replicas() {
    let all = clusters(600);
    let owners = assign(&all, &replicas(&[0, 1, 2]));
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for owner in owners.values() {
        *counts.entry(owner).or_default() += 1;
    }
    assert_eq!(counts.len(), 3);
    // 200 each on average; a fair split stays well within a quarter of that.
    for (replica, count) in counts {
        assert!((150..=250).contains(&count), "{replica}: {count} of 600");
    }
}

proptest! {
    /// A replica joining takes clusters only for itself, and one leaving gives up only its
    /// own: no cluster moves between two replicas that both stay.
    #[test]
    fn a_change_of_membership_moves_only_the_clusters_it_must(
        before in proptest::collection::btree_set(0usize..8, 1..6),
        joined in 0usize..8,
        left in 0usize..8,
    ) {
        let all = clusters(40);
        let before: Vec<usize> = before.into_iter().collect();
        let owners = assign(&all, &replicas(&before));
        prop_assert_eq!(owners.len(), all.len(), "every cluster has an owner");

        let with: BTreeSet<usize> = before.iter().copied().chain([joined]).collect();
        let after = assign(&all, &replicas(&with.iter().copied().collect::<Vec<_>>()));
        let newcomer = format!("federator-{joined}");
        for (cluster, owner) in &after {
            prop_assert!(
                owner == &owners[cluster] || owner == &newcomer,
                "{} moved from {} to {}", cluster, owners[cluster], owner
            );
        }

        let without: Vec<usize> = before.iter().copied().filter(|r| *r != left).collect();
        let gone = format!("federator-{left}");
        let after = assign(&all, &replicas(&without));
        for cluster in &all {
            match after.get(cluster) {
                Some(owner) => prop_assert!(
                    &owners[cluster] == owner || owners[cluster] == gone,
                    "{} moved from {} to {}", cluster, owners[cluster], owner
                ),
                None => prop_assert!(without.is_empty()),
            }
        }
    }
}
