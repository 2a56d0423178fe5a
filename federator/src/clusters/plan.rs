//! Which clusters exist, decided from the whole store of cluster Secrets at once.
//!
//! Deciding per Secret event loses clusters: a key moved to another Secret is first refused as
//! a duplicate, then dropped with the old Secret. Here every change re-decides the whole set
//! from every Secret, so the answer depends only on what the store holds, never on the order
//! events came in: a duplicate goes to the oldest Secret (then the first by name), and passes
//! to the next one the moment the winner goes.

use std::collections::{BTreeMap, BTreeSet};

use super::{ClusterEntry, SecretProblem};
use crate::model::ClusterName;

/// One Secret of the store, parsed.
#[derive(Debug)]
pub struct StoredSecret {
    /// The Secret's name (its namespace is federator's).
    pub name: String,
    /// Creation time, Unix seconds: the oldest Secret keeps a contested cluster name.
    pub created: Option<i64>,
    /// One result per key, as [`super::parse_secret`] gives them.
    pub keys: Vec<Result<ClusterEntry, SecretProblem>>,
}

/// What runs now for a cluster: the Secret it came from and its fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Running {
    /// The Secret that registered it.
    pub secret: String,
    /// [`ClusterEntry::fingerprint`] of what it runs with.
    pub fingerprint: u64,
}

/// What to do so that the running clusters match the store.
#[derive(Debug, Default)]
pub struct ClusterPlan {
    /// Clusters to connect and start.
    pub add: Vec<(String, ClusterEntry)>,
    /// Running clusters whose credentials, server or settings changed: reconnect.
    pub reconnect: Vec<(String, ClusterEntry)>,
    /// Running clusters now registered by another Secret with the same settings: only the
    /// Secret they report on changes.
    pub moved: Vec<(ClusterName, String)>,
    /// Running clusters no Secret registers any more.
    pub remove: Vec<ClusterName>,
    /// Keys that name a cluster another Secret already registers: (Secret, cluster, winner).
    pub duplicates: Vec<(String, ClusterName, String)>,
}

/// The plan from the whole `store` and what is `running`.
///
/// A key that turned invalid keeps its cluster running as it was (its last good settings):
/// a typo in a Secret never withdraws a cluster.
pub fn plan<'a>(
    store: impl IntoIterator<Item = &'a StoredSecret>,
    running: &BTreeMap<ClusterName, Running>,
) -> ClusterPlan {
    let mut order: Vec<&StoredSecret> = store.into_iter().collect();
    order.sort_by(|a, b| {
        (a.created.unwrap_or(i64::MAX), &a.name).cmp(&(b.created.unwrap_or(i64::MAX), &b.name))
    });
    let mut winners: BTreeMap<ClusterName, (&str, &ClusterEntry)> = BTreeMap::new();
    let mut kept_invalid: BTreeSet<ClusterName> = BTreeSet::new();
    let mut out = ClusterPlan::default();
    for secret in &order {
        for key in &secret.keys {
            match key {
                Ok(entry) => {
                    let name = &entry.info.name;
                    match winners.get(name) {
                        Some((winner, _)) => out.duplicates.push((
                            secret.name.clone(),
                            name.clone(),
                            (*winner).to_owned(),
                        )),
                        None => {
                            winners.insert(name.clone(), (&secret.name, entry));
                        }
                    }
                }
                Err(problem) => {
                    let name = ClusterName::new(&problem.key);
                    if running.get(&name).is_some_and(|r| r.secret == secret.name) {
                        kept_invalid.insert(name);
                    }
                }
            }
        }
    }
    for (name, (secret, entry)) in &winners {
        match running.get(name) {
            None => out.add.push(((*secret).to_owned(), (*entry).clone())),
            Some(now) if now.fingerprint != entry.fingerprint => {
                out.reconnect.push(((*secret).to_owned(), (*entry).clone()));
            }
            Some(now) if now.secret != *secret => {
                out.moved.push((name.clone(), (*secret).to_owned()));
            }
            Some(_) => {}
        }
    }
    out.remove = running
        .keys()
        .filter(|name| !winners.contains_key(*name) && !kept_invalid.contains(*name))
        .cloned()
        .collect();
    out
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
