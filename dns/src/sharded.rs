//! A hash map split into copy-on-write shards, so that a snapshot derived from another
//! copies only the shards a change touches and shares the rest.
//!
//! Lookups cost one std `HashMap` lookup plus picking the shard (an FNV-1a hash of the key):
//! unlike a persistent map (a HAMT), the hot path stays a flat table.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;

/// Entries per shard a full build aims at: small enough that copying a shard on a change is
/// a few microseconds, large enough that the shard vector stays small.
const TARGET_PER_SHARD: usize = 256;
/// Most shards (4,096 pointers to copy per change; about 1M entries at the target size).
const MAX_SHARDS: usize = 4096;

/// A map of `K` to `V` in shards of `Arc<HashMap<K, Arc<V>>>`: cloning it copies the shard
/// pointers, changing it copies one shard and the changed value.
#[derive(Debug)]
pub(crate) struct Sharded<K, V> {
    shards: Vec<Arc<HashMap<K, Arc<V>>>>,
    len: usize,
}

impl<K, V> Clone for Sharded<K, V> {
    fn clone(&self) -> Self {
        Self {
            shards: self.shards.clone(),
            len: self.len,
        }
    }
}

/// FNV-1a: picks shards. Deterministic and cheap; shard choice needs no flooding defence
/// (each shard's own table has std's keyed hasher).
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        // The low bits pick the shard: fold the better-mixed high bits in.
        self.0 ^ (self.0 >> 29)
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Sharded<K, V> {
    /// An empty map sized for about `expected` entries.
    pub(crate) fn with_expected(expected: usize) -> Self {
        let count = (expected / TARGET_PER_SHARD)
            .next_power_of_two()
            .clamp(1, MAX_SHARDS);
        let per_shard = expected / count + 1;
        Self {
            shards: (0..count)
                .map(|_| Arc::new(HashMap::with_capacity(per_shard)))
                .collect(),
            len: 0,
        }
    }

    /// Shards (for tests of sharing).
    #[cfg(test)]
    pub(crate) fn shards(&self) -> &[Arc<HashMap<K, Arc<V>>>] {
        &self.shards
    }

    fn shard_of<Q: Hash + ?Sized>(&self, key: &Q) -> usize {
        let hash = BuildHasherDefault::<Fnv>::default().hash_one(key);
        // The count is a power of two.
        (hash as usize) & (self.shards.len() - 1)
    }

    /// The value of `key`.
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards[self.shard_of(key)].get(key).map(|v| &**v)
    }

    /// The shard holding `key`, to change (copied first if another map shares it); `None`,
    /// and nothing copied, when no shard holds it.
    fn shard_holding<Q>(&mut self, key: &Q) -> Option<&mut HashMap<K, Arc<V>>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let at = self.shard_of(key);
        let shard = &mut self.shards[at];
        shard.contains_key(key).then(|| Arc::make_mut(shard))
    }

    /// The value of `key` to change, copied first if another map shares it (and its shard).
    pub(crate) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shard_holding(key)?.get_mut(key).map(Arc::make_mut)
    }

    /// The value of `key` to change, a default one inserted if missing.
    pub(crate) fn get_or_default(&mut self, key: &K) -> &mut V
    where
        V: Default,
    {
        let shard = self.shard_of(key);
        let shard = Arc::make_mut(&mut self.shards[shard]);
        if !shard.contains_key(key) {
            self.len += 1;
        }
        Arc::make_mut(shard.entry(key.clone()).or_default())
    }

    /// Sets `key` to `value`, returning the previous value.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<Arc<V>> {
        let shard = self.shard_of(&key);
        let old = Arc::make_mut(&mut self.shards[shard]).insert(key, Arc::new(value));
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Removes `key`, returning its value.
    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<Arc<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let old = self.shard_holding(key)?.remove(key);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    /// Re-shards when updates grew the map far past the size it was built for: a full copy,
    /// once per quadrupling, so its cost per update stays constant on average.
    pub(crate) fn rebalance(&mut self) {
        if self.shards.len() >= MAX_SHARDS || self.len <= self.shards.len() * TARGET_PER_SHARD * 4 {
            return;
        }
        let mut bigger = Self::with_expected(self.len);
        for shard in &self.shards {
            for (key, value) in shard.iter() {
                let at = bigger.shard_of(key);
                Arc::make_mut(&mut bigger.shards[at]).insert(key.clone(), Arc::clone(value));
            }
        }
        bigger.len = self.len;
        *self = bigger;
    }

    /// Releases the spare capacity of every shard (after a full build).
    pub(crate) fn shrink_to_fit(&mut self) {
        for shard in &mut self.shards {
            Arc::make_mut(shard).shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_shares_every_shard_but_the_ones_changed() {
        let mut map: Sharded<u32, String> = Sharded::with_expected(10_000);
        for i in 0..10_000 {
            map.insert(i, i.to_string());
        }
        let before = map.clone();
        *map.get_mut(&7).unwrap() = "seven".into();
        map.remove(&8);
        map.insert(10_001, "new".into());
        let copied = map
            .shards()
            .iter()
            .zip(before.shards())
            .filter(|(a, b)| !Arc::ptr_eq(a, b))
            .count();
        assert!(copied <= 3, "{copied} shards copied for three changes");
        assert_eq!(before.get(&7).map(String::as_str), Some("7"));
        assert_eq!(map.get(&7).map(String::as_str), Some("seven"));
        assert_eq!((map.get(&8), before.len, map.len), (None, 10_000, 10_000));
    }

    #[test]
    fn rebalancing_keeps_every_entry() {
        let mut map: Sharded<u32, u32> = Sharded::with_expected(0);
        for i in 0..5_000 {
            map.insert(i, i);
            map.rebalance();
        }
        assert!(map.shards().len() > 1);
        assert!((0..5_000).all(|i| map.get(&i) == Some(&i)));
        assert_eq!(map.len, 5_000);
    }
}
