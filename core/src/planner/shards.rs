//! Which replica owns which cluster when clusters are sharded across replicas: rendezvous
//! (highest random weight) hashing of cluster names over the live replicas.
//!
//! Every replica computes the same owners from the same membership, with no coordination
//! and no table to keep. When a replica joins, it takes only the clusters for which it now
//! weighs most; when one leaves, only its clusters move, each to the replica that weighs
//! most for it among the rest. Who may *write* to a cluster is decided separately, by its
//! claim ([`super::claims`]): owning is what a replica aims for, claiming what it holds.

use std::collections::BTreeMap;

use crate::model::ClusterName;
use crate::stable_hash::{fnv1a, mix};

/// The weight of `cluster` with `replica`: fixed by the two names alone, the same in every
/// build (replicas of two versions agree during an upgrade).
pub fn weight(replica: &str, cluster: &str) -> u64 {
    // Each name hashed and mixed on its own, then together: replicas named alike
    // (`federator-0`, `federator-1`) still weigh unrelated amounts.
    mix(mix(fnv1a(replica.as_bytes())) ^ fnv1a(cluster.as_bytes()))
}

/// The replica that owns `cluster` among `replicas`: the one with the highest weight (of
/// two with equal weights, the first name). `None` without replicas.
pub fn owner<'a>(cluster: &str, replicas: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    replicas.into_iter().max_by(|a, b| {
        weight(a, cluster)
            .cmp(&weight(b, cluster))
            .then_with(|| b.cmp(a))
    })
}

/// Every cluster's owner among `replicas` (none when there are no replicas).
pub fn assign<'a>(
    clusters: impl IntoIterator<Item = &'a ClusterName>,
    replicas: &[String],
) -> BTreeMap<ClusterName, String> {
    clusters
        .into_iter()
        .filter_map(|cluster| {
            let owner = owner(cluster.as_str(), replicas.iter().map(String::as_str))?;
            Some((cluster.clone(), owner.to_owned()))
        })
        .collect()
}

#[cfg(test)]
#[path = "shards_tests.rs"]
mod tests;
