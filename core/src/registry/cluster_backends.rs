//! A host's backends by cluster, as the published view holds them for every host.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::global::LocalBackend;
use crate::model::ClusterName;

/// A host's backends per cluster, sorted by cluster: a vector, as a host runs in a few
/// clusters and a `BTreeMap` takes a node of eleven entries (some 450 bytes) per host
/// whatever it holds. Reads like the map it replaces. Each cluster's list is shared with the
/// cluster's own index when all of it is kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterBackends(Vec<(ClusterName, Arc<[LocalBackend]>)>);

/// An entry of [`ClusterBackends`] as its iterators give it.
type Entry<'a> = (&'a ClusterName, &'a [LocalBackend]);

impl ClusterBackends {
    fn position(&self, cluster: &ClusterName) -> Result<usize, usize> {
        self.0.binary_search_by(|(c, _)| c.cmp(cluster))
    }

    /// The backends of `cluster`, if it has any.
    pub fn get(&self, cluster: &ClusterName) -> Option<&[LocalBackend]> {
        self.position(cluster).ok().map(|at| &*self.0[at].1)
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
    pub fn values(&self) -> impl Iterator<Item = &[LocalBackend]> {
        self.0.iter().map(|(_, b)| &**b)
    }

    /// Clusters and their backends, sorted by cluster.
    pub fn iter(&self) -> impl Iterator<Item = Entry<'_>> {
        self.0.iter().map(|(c, b)| (c, &**b))
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
        // A BTreeMap iterates sorted and without duplicates; clusters with none are absent.
        Self(
            map.into_iter()
                .filter(|(_, b)| !b.is_empty())
                .map(|(c, b)| (c, b.into()))
                .collect(),
        )
    }
}

impl FromIterator<(ClusterName, Arc<[LocalBackend]>)> for ClusterBackends {
    /// Each cluster once: of two lists for one cluster, the later is kept, as in a map;
    /// clusters with none are absent.
    fn from_iter<I: IntoIterator<Item = (ClusterName, Arc<[LocalBackend]>)>>(lists: I) -> Self {
        let mut lists: Vec<_> = lists.into_iter().filter(|(_, b)| !b.is_empty()).collect();
        // Stable: equal clusters keep their order, and the last of each is kept below.
        lists.sort_by(|(a, _), (b, _)| a.cmp(b));
        lists.reverse();
        lists.dedup_by(|next, kept| next.0 == kept.0);
        lists.reverse();
        lists.shrink_to_fit();
        Self(lists)
    }
}

impl std::ops::Index<&ClusterName> for ClusterBackends {
    type Output = [LocalBackend];

    /// The backends of `cluster`; panics when it has none, as a map's index does.
    fn index(&self, cluster: &ClusterName) -> &[LocalBackend] {
        match self.get(cluster) {
            Some(backends) => backends,
            None => panic!("no backends in cluster {cluster}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backends(n: usize) -> Vec<LocalBackend> {
        let backend = LocalBackend {
            service: crate::model::ObjectKey::new("shop", "cart"),
            ports: Arc::from([]),
            created: None,
            endpoints: Arc::from([]),
            headless: false,
            weight: None,
        };
        vec![backend; n]
    }

    #[test]
    fn answers_as_the_map_it_was_built_from_without_clusters_that_have_none() {
        let names = ["west", "east", "south"].map(ClusterName::new);
        let mut map: BTreeMap<ClusterName, Vec<LocalBackend>> =
            names.iter().map(|c| (c.clone(), backends(1))).collect();
        let north = ClusterName::new("north");
        map.insert(north.clone(), Vec::new());
        let built = ClusterBackends::from(map.clone());
        map.remove(&north);
        assert_eq!(
            built.keys().collect::<Vec<_>>(),
            map.keys().collect::<Vec<_>>()
        );
        assert_eq!(built.len(), 3);
        for name in &names {
            assert!(built.contains_key(name));
            assert_eq!(built.get(name), map.get(name).map(Vec::as_slice));
        }
        assert!(!built.contains_key(&north));
        assert_eq!(built.get(&north), None);
        assert!(ClusterBackends::default().is_empty());
    }

    #[test]
    fn collected_lists_are_sorted_by_cluster_and_the_later_of_two_is_kept() {
        let list = |n: usize| -> Arc<[LocalBackend]> { backends(n).into() };
        let [west, east, north] = ["west", "east", "north"].map(ClusterName::new);
        let built: ClusterBackends = [
            (west.clone(), list(1)),
            (east.clone(), list(1)),
            (west.clone(), list(2)),
            (north, list(0)),
        ]
        .into_iter()
        .collect();
        assert_eq!(built.keys().collect::<Vec<_>>(), [&east, &west]);
        assert_eq!(built[&west].len(), 2);
    }
}
