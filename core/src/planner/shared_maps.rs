//! Labels and annotations of the objects the writers keep, stored once however many
//! objects carry them.
//!
//! A writer remembers the labels and annotations of every object it wrote or read, to tell
//! whether the next render changes them. The maps of one host's ServiceEntry and
//! DestinationRule are the same in every cluster (identity, env, host, the clusters its
//! backends come from), so a fleet of 100 clusters holds 200 copies of each: about 1 KiB per
//! object for two small `BTreeMap`s. Interned, each distinct map is stored once.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// Labels or annotations, shared between every object that carries the same ones.
pub type SharedMap = Arc<BTreeMap<String, String>>;

/// Below this many maps, nothing is pruned: a small interner costs nothing to keep whole.
const PRUNE_FLOOR: usize = 1024;

/// The distinct maps in use. Maps no object holds any more are dropped once the interner has
/// doubled since it last looked, so its cost stays proportional to what is in use.
#[derive(Debug, Default)]
pub struct SharedMaps {
    maps: HashSet<SharedMap>,
    /// Size after the last prune.
    kept: usize,
}

impl SharedMaps {
    /// The shared copy of `map` (stored now if it is new).
    pub fn intern(&mut self, map: BTreeMap<String, String>) -> SharedMap {
        if let Some(shared) = self.maps.get(&map) {
            return shared.clone();
        }
        let shared = Arc::new(map);
        self.maps.insert(shared.clone());
        if self.maps.len() > 2 * self.kept.max(PRUNE_FLOOR) {
            self.prune();
        }
        shared
    }

    /// Drops the maps only the interner holds.
    pub fn prune(&mut self) {
        self.maps.retain(|m| Arc::strong_count(m) > 1);
        self.kept = self.maps.len();
    }

    /// How many distinct maps are stored.
    pub fn len(&self) -> usize {
        self.maps.len()
    }

    /// Whether none is stored.
    pub fn is_empty(&self) -> bool {
        self.maps.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn equal_maps_are_stored_once_and_different_ones_apart() {
        let mut maps = SharedMaps::default();
        let a = maps.intern(map(&[("federator.io/identity", "greeting")]));
        let b = maps.intern(map(&[("federator.io/identity", "greeting")]));
        let c = maps.intern(map(&[("federator.io/identity", "payments")]));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(c.get("federator.io/identity").unwrap(), "payments");
        assert_eq!(maps.len(), 2);
    }

    #[test]
    fn maps_nobody_holds_go_when_the_interner_doubles() {
        let mut maps = SharedMaps::default();
        let kept = maps.intern(map(&[("k", "kept")]));
        for i in 0..2 * PRUNE_FLOOR {
            drop(maps.intern(map(&[("k", &i.to_string())])));
        }
        // The prune ran when the interner passed twice the floor: the map still held stays
        // (and is still the one handed out), the rest went.
        assert!(maps.len() < PRUNE_FLOOR, "{}", maps.len());
        assert!(Arc::ptr_eq(&kept, &maps.intern(map(&[("k", "kept")]))));
        maps.prune();
        assert_eq!(maps.len(), 1);
    }
}
