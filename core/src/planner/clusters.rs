//! Which clusters exist, decided from the whole store of cluster Secrets at once.
//!
//! Deciding per Secret event loses clusters: a key moved to another Secret is first refused as
//! a duplicate, then dropped with the old Secret. Here every change re-decides the whole set
//! from every Secret, so the answer depends only on what the store holds, never on the order
//! events came in: a duplicate goes to the oldest Secret (then the first by name), and passes
//! to the next one the moment the winner goes.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::ClusterName;

/// What the plan needs of a cluster a Secret key registers (the edge's entry holds the
/// kubeconfig; the plan only compares names and fingerprints).
pub trait Candidate: Clone {
    /// The cluster's name.
    fn name(&self) -> &ClusterName;
    /// Changes whenever its credentials, server or settings change.
    fn fingerprint(&self) -> u64;
}

/// One Secret of the store, parsed.
#[derive(Debug)]
pub struct StoredSecret<E> {
    /// The Secret's name (its namespace is federator's).
    pub name: String,
    /// Creation time, Unix seconds: the oldest Secret keeps a contested cluster name.
    pub created: Option<i64>,
    /// One result per key: the cluster it registers, or the name of a key that is invalid.
    pub keys: Vec<Result<E, String>>,
}

/// What runs now for a cluster: the Secret it came from and its fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Running {
    /// The Secret that registered it.
    pub secret: String,
    /// [`Candidate::fingerprint`] of what it runs with.
    pub fingerprint: u64,
}

/// What to do so that the running clusters match the store.
#[derive(Debug)]
pub struct ClusterPlan<E> {
    /// Clusters to connect and start.
    pub add: Vec<(String, E)>,
    /// Running clusters whose credentials, server or settings changed: reconnect.
    pub reconnect: Vec<(String, E)>,
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
pub fn plan<'a, E: Candidate + 'a>(
    store: impl IntoIterator<Item = &'a StoredSecret<E>>,
    running: &BTreeMap<ClusterName, Running>,
) -> ClusterPlan<E> {
    let mut order: Vec<&StoredSecret<E>> = store.into_iter().collect();
    order.sort_by(|a, b| {
        (a.created.unwrap_or(i64::MAX), &a.name).cmp(&(b.created.unwrap_or(i64::MAX), &b.name))
    });
    let mut winners: BTreeMap<ClusterName, (&str, &E)> = BTreeMap::new();
    let mut kept_invalid: BTreeSet<ClusterName> = BTreeSet::new();
    let mut out = ClusterPlan {
        add: Vec::new(),
        reconnect: Vec::new(),
        moved: Vec::new(),
        remove: Vec::new(),
        duplicates: Vec::new(),
    };
    for secret in &order {
        for key in &secret.keys {
            match key {
                Ok(entry) => {
                    let name = entry.name();
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
                Err(key) => {
                    let name = ClusterName::new(key);
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
            Some(now) if now.fingerprint != entry.fingerprint() => {
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
#[path = "clusters_tests.rs"]
mod tests;
