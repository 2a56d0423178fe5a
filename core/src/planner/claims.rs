//! Who may write to a cluster when clusters are sharded across replicas: the holder of its
//! claim.
//!
//! A claim is one key per cluster in the shared store (etcd), naming its holder. It is
//! created only where none exists, and held under the holder's lease, so it vanishes when the
//! holder stops renewing. The rules, decided here and carried out by the edge:
//! - a replica acquires a cluster's claim only when it owns the cluster ([`super::shards`])
//!   and no claim exists: a cluster another replica still claims waits for that claim to be
//!   released or to expire;
//! - it writes to the cluster only while it holds the claim, and only while its lease's term
//!   lasts (ended, like a leader's, `lease - renew_deadline` before anyone else may take over);
//! - when it no longer owns the cluster, it stops the cluster's writer, waits for writes in
//!   flight to end, and only then deletes the claim (conditionally: while it still names it).
//!
//! So two replicas never write to one cluster, and a cluster whose owner died is taken over
//! within one lease.

use std::collections::BTreeMap;

use crate::model::ClusterName;

/// A cluster's claim as read from the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimRecord {
    /// The replica holding it.
    pub holder: String,
}

/// What a replica does about one cluster's claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimStep {
    /// Owned here and claimed by no one: create the claim (only where none exists), then
    /// start writing.
    Acquire,
    /// Owned and claimed here: keep writing while the lease's term lasts.
    Write,
    /// Owned here, still claimed by another replica: wait until it releases the claim or its
    /// lease expires.
    Wait {
        /// The replica holding the claim.
        holder: String,
    },
    /// Claimed here but owned elsewhere now: stop writing, then delete the claim.
    Release,
}

/// What replica `me` does about a cluster owned by `owner` and claimed as `claim`; `None`:
/// nothing (neither owned nor claimed here).
pub fn claim_step(me: &str, owner: Option<&str>, claim: Option<&ClaimRecord>) -> Option<ClaimStep> {
    let owned = owner == Some(me);
    match claim {
        None if owned => Some(ClaimStep::Acquire),
        None => None,
        Some(claim) if claim.holder == me => Some(if owned {
            ClaimStep::Write
        } else {
            ClaimStep::Release
        }),
        Some(claim) if owned => Some(ClaimStep::Wait {
            holder: claim.holder.clone(),
        }),
        Some(_) => None,
    }
}

/// The steps of replica `me` for every cluster it owns or claims: `owners` from
/// [`super::shards::assign`], `claims` as read from the store (a cluster gone from the
/// owners but still claimed here is released).
pub fn plan(
    me: &str,
    owners: &BTreeMap<ClusterName, String>,
    claims: &BTreeMap<ClusterName, ClaimRecord>,
) -> BTreeMap<ClusterName, ClaimStep> {
    let clusters = owners.keys().chain(claims.keys());
    clusters
        .filter_map(|cluster| {
            let owner = owners.get(cluster).map(String::as_str);
            let step = claim_step(me, owner, claims.get(cluster))?;
            Some((cluster.clone(), step))
        })
        .collect()
}

#[cfg(test)]
#[path = "claims_tests.rs"]
mod tests;
