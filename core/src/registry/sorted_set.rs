//! A set kept as a sorted vector, for the registry's indexes whose sets hold one or a few
//! entries (a host's workloads in a cluster, a Service's EndpointSlices): a `BTreeSet`
//! allocates a node for eleven entries whatever it holds, some hundreds of bytes per set.

use smallvec::SmallVec;

/// A small ordered set: a sorted, deduplicated vector. Inserting or removing costs the
/// set's length, so it is only for sets that stay small. Up to `N` entries are held inline
/// (most of the registry's sets hold one), with no allocation of their own: choose `N` so
/// that they fit where the pointer and length would (16 bytes: four ids, one name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SortedSet<T, const N: usize = 1>(SmallVec<[T; N]>);

impl<T, const N: usize> Default for SortedSet<T, N> {
    fn default() -> Self {
        Self(SmallVec::new())
    }
}

impl<T: Ord, const N: usize> SortedSet<T, N> {
    /// Adds `value`; false if it was there.
    pub(crate) fn insert(&mut self, value: T) -> bool {
        match self.0.binary_search(&value) {
            Ok(_) => false,
            Err(at) => {
                // Sets grow by one: no spare capacity kept.
                self.0.reserve_exact(1);
                self.0.insert(at, value);
                true
            }
        }
    }

    /// Removes `value`; false if it was not there.
    pub(crate) fn remove<Q>(&mut self, value: &Q) -> bool
    where
        T: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match self.0.binary_search_by(|v| v.borrow().cmp(value)) {
            Ok(at) => {
                self.0.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// Whether it holds nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many it holds.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Its values, in order, as a slice.
    pub(crate) fn as_slice(&self) -> &[T] {
        &self.0
    }

    /// Its values, in order.
    pub(crate) fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }
}

impl<'a, T, const N: usize> IntoIterator for &'a SortedSet<T, N> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn four_ids_take_no_more_room_than_a_vector_and_no_allocation() {
        assert_eq!(
            std::mem::size_of::<SortedSet<u32, 4>>(),
            std::mem::size_of::<Vec<u32>>()
        );
        let mut ids: SortedSet<u32, 4> = SortedSet::default();
        for id in [3, 1, 4, 2] {
            ids.insert(id);
        }
        assert!(!ids.0.spilled());
        ids.insert(5);
        assert!(ids.0.spilled());
        assert_eq!(ids.as_slice(), [1, 2, 3, 4, 5]);
    }

    proptest! {
        /// Any sequence of inserts and removes leaves what a `BTreeSet` would hold, in order,
        /// and each call says what a `BTreeSet`'s would.
        #[test]
        fn behaves_as_a_btree_set(ops in proptest::collection::vec((any::<bool>(), 0u8..16), 0..64)) {
            let mut ours: SortedSet<u8, 4> = SortedSet::default();
            let mut theirs = BTreeSet::new();
            for (insert, value) in ops {
                if insert {
                    prop_assert_eq!(ours.insert(value), theirs.insert(value));
                } else {
                    prop_assert_eq!(ours.remove(&value), theirs.remove(&value));
                }
                prop_assert_eq!((&ours).into_iter().copied().collect::<Vec<_>>(), theirs.iter().copied().collect::<Vec<_>>());
                prop_assert_eq!(ours.is_empty(), theirs.is_empty());
                prop_assert_eq!(ours.len(), theirs.len());
            }
        }
    }
}
