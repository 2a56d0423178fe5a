//! A host's backends by cluster, as the published view holds them for every host.

use std::collections::BTreeMap;

use super::global::LocalBackend;
use crate::model::ClusterName;

/// A host's backends per cluster, sorted by cluster: a vector, as a host runs in a few
/// clusters and a `BTreeMap` takes a node of eleven entries (some 450 bytes) per host
/// whatever it holds. Reads like the map it replaces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterBackends(Vec<(ClusterName, Vec<LocalBackend>)>);

/// An entry of [`ClusterBackends`] as its iterators give it.
type Entry<'a> = (&'a ClusterName, &'a Vec<LocalBackend>);

impl ClusterBackends {
    fn position(&self, cluster: &ClusterName) -> Result<usize, usize> {
        self.0.binary_search_by(|(c, _)| c.cmp(cluster))
    }

    /// The backends of `cluster`, if it has any.
    pub fn get(&self, cluster: &ClusterName) -> Option<&Vec<LocalBackend>> {
        self.position(cluster).ok().map(|at| &self.0[at].1)
    }

    /// Whether `cluster` has backends.
    pub fn contains_key(&self, cluster: &ClusterName) -> bool {
        self.position(cluster).is_ok()
    }

    /// The clusters with backends, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &ClusterName> {
        self.0.iter().map(|(c, _)| c)
    }

    /// Each cluster's backends, by cluster.
    pub fn values(&self) -> impl Iterator<Item = &Vec<LocalBackend>> {
        self.0.iter().map(|(_, b)| b)
    }

    /// Clusters and their backends, sorted by cluster.
    pub fn iter(&self) -> impl Iterator<Item = Entry<'_>> {
        self.0.iter().map(|(c, b)| (c, b))
    }

    /// How many clusters have backends.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no cluster has.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<BTreeMap<ClusterName, Vec<LocalBackend>>> for ClusterBackends {
    fn from(map: BTreeMap<ClusterName, Vec<LocalBackend>>) -> Self {
        // A BTreeMap iterates sorted and without duplicates.
        Self(map.into_iter().collect())
    }
}

impl std::ops::Index<&ClusterName> for ClusterBackends {
    type Output = Vec<LocalBackend>;

    /// The backends of `cluster`; panics when it has none, as a map's index does.
    fn index(&self, cluster: &ClusterName) -> &Vec<LocalBackend> {
        match self.get(cluster) {
            Some(backends) => backends,
            None => panic!("no backends in cluster {cluster}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_as_the_map_it_was_built_from() {
        let names = ["west", "east", "south"].map(ClusterName::new);
        let map: BTreeMap<ClusterName, Vec<LocalBackend>> =
            names.iter().map(|c| (c.clone(), Vec::new())).collect();
        let backends = ClusterBackends::from(map.clone());
        assert_eq!(
            backends.keys().collect::<Vec<_>>(),
            map.keys().collect::<Vec<_>>()
        );
        assert_eq!(backends.len(), 3);
        for name in &names {
            assert!(backends.contains_key(name));
            assert_eq!(backends.get(name), map.get(name));
        }
        let north = ClusterName::new("north");
        assert!(!backends.contains_key(&north));
        assert_eq!(backends.get(&north), None);
        assert!(ClusterBackends::default().is_empty());
    }
}
