//! Maps that remember which keys were handed out for writing, so the published
//! [`RegistryView`](super::RegistryView) is refreshed from exactly the entries that may have
//! changed, and no mutation path can forget to say so.
//!
//! Reads go through `Deref` to the plain map; every way to change an entry marks its key.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;
use std::ops::Deref;

/// The few ways the registry changes a map.
pub(crate) trait Store {
    /// Key type.
    type Key: Ord + Clone;
    /// Value type.
    type Value;
    /// The entry under `key`, for writing.
    fn entry_mut(&mut self, key: &Self::Key) -> Option<&mut Self::Value>;
    /// The entry under `key`, created by `make` first if missing.
    fn entry_or_insert_with(
        &mut self,
        key: Self::Key,
        make: impl FnOnce() -> Self::Value,
    ) -> &mut Self::Value;
    /// Removes the entry under `key`.
    fn take(&mut self, key: &Self::Key) -> Option<Self::Value>;
}

impl<K: Ord + Clone + Hash, V> Store for HashMap<K, V> {
    type Key = K;
    type Value = V;
    fn entry_mut(&mut self, key: &K) -> Option<&mut V> {
        self.get_mut(key)
    }
    fn entry_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        self.entry(key).or_insert_with(make)
    }
    fn take(&mut self, key: &K) -> Option<V> {
        self.remove(key)
    }
}

impl<K: Ord + Clone, V> Store for BTreeMap<K, V> {
    type Key = K;
    type Value = V;
    fn entry_mut(&mut self, key: &K) -> Option<&mut V> {
        self.get_mut(key)
    }
    fn entry_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        self.entry(key).or_insert_with(make)
    }
    fn take(&mut self, key: &K) -> Option<V> {
        self.remove(key)
    }
}

/// A map whose written keys are remembered until [`Tracked::take_dirty`].
#[derive(Debug, Default)]
pub(crate) struct Tracked<M: Store> {
    map: M,
    dirty: BTreeSet<M::Key>,
}

impl<M: Store> Tracked<M> {
    /// Wraps `map`; nothing is dirty yet.
    pub(crate) fn new(map: M) -> Self {
        Self {
            map,
            dirty: BTreeSet::new(),
        }
    }

    /// The entry under `key`, for writing (marks it).
    pub(crate) fn get_mut(&mut self, key: &M::Key) -> Option<&mut M::Value> {
        let value = self.map.entry_mut(key)?;
        self.dirty.insert(key.clone());
        Some(value)
    }

    /// The entry under `key`, created by `make` first if missing (marks it).
    pub(crate) fn get_or_insert_with(
        &mut self,
        key: M::Key,
        make: impl FnOnce() -> M::Value,
    ) -> &mut M::Value {
        self.dirty.insert(key.clone());
        self.map.entry_or_insert_with(key, make)
    }

    /// Removes the entry under `key` (marks it).
    pub(crate) fn remove(&mut self, key: &M::Key) -> Option<M::Value> {
        let old = self.map.take(key)?;
        self.dirty.insert(key.clone());
        Some(old)
    }

    /// The keys written since the last call, sorted; forgets them.
    pub(crate) fn take_dirty(&mut self) -> BTreeSet<M::Key> {
        std::mem::take(&mut self.dirty)
    }
}

impl<M: Store> Deref for Tracked<M> {
    type Target = M;
    fn deref(&self) -> &M {
        &self.map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_write_marks_its_key_and_reads_do_not() {
        let mut map: Tracked<HashMap<String, u32>> = Tracked::new(HashMap::new());
        *map.get_or_insert_with("a".into(), || 0) = 1;
        *map.get_or_insert_with("b".into(), || 0) += 2;
        assert_eq!(map.take_dirty(), BTreeSet::from(["a".into(), "b".into()]));

        assert_eq!(map.get("a"), Some(&1));
        assert!(map.get_mut(&"missing".to_owned()).is_none());
        assert!(map.remove(&"missing".to_owned()).is_none());
        assert!(
            map.take_dirty().is_empty(),
            "reads and misses change nothing"
        );

        if let Some(value) = map.get_mut(&"a".to_owned()) {
            *value = 5;
        }
        map.remove(&"b".to_owned());
        assert_eq!(map.take_dirty(), BTreeSet::from(["a".into(), "b".into()]));
        assert_eq!(map.len(), 1);
    }
}
