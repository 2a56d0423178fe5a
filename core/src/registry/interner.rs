//! One shared copy of each value the registry holds many equal copies of: a fleet has a few
//! dozen localities and a few port lists, and millions of endpoints and Services, each of
//! which would otherwise carry its own copy (a locality is 48 bytes, a port list 80).

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;

use crate::model::{Locality, MeshPort, SmolStr};

/// Smallest size at which values no one holds any more are looked for.
const PRUNE_FLOOR: usize = 64;

/// The values in use, each held once.
#[derive(Debug)]
pub(crate) struct Interner<T: ?Sized> {
    shared: HashSet<Arc<T>>,
    /// Size after the last prune: the next comes when it has doubled, so a stream of
    /// one-off values (a hand-written EndpointSlice's zone) cannot grow it without bound,
    /// at a cost spread over the insertions.
    pruned_at: usize,
}

impl<T: ?Sized> Default for Interner<T> {
    fn default() -> Self {
        Self {
            shared: HashSet::new(),
            pruned_at: 0,
        }
    }
}

impl<T: ?Sized + Hash + Eq> Interner<T> {
    /// The shared copy of `value`: `value` itself when it is the first.
    pub(crate) fn share(&mut self, value: Arc<T>) -> Arc<T> {
        match self.shared.get(&*value) {
            Some(shared) => Arc::clone(shared),
            None => self.keep(value),
        }
    }

    /// Keeps `shared` as the copy of its value.
    fn keep(&mut self, shared: Arc<T>) -> Arc<T> {
        if self.shared.len() >= (2 * self.pruned_at).max(PRUNE_FLOOR) {
            // Held only here: nothing uses it any more.
            self.shared.retain(|v| Arc::strong_count(v) > 1);
            // A table keeps its size after a burst; the next prune walks all of it.
            self.shared.shrink_to(2 * self.shared.len());
            self.pruned_at = self.shared.len();
        }
        self.shared.insert(Arc::clone(&shared));
        shared
    }
}

impl<T: Hash + Eq> Interner<T> {
    /// The shared copy of `value`.
    pub(crate) fn intern(&mut self, value: T) -> Arc<T> {
        match self.shared.get(&value) {
            Some(shared) => Arc::clone(shared),
            None => self.keep(Arc::new(value)),
        }
    }
}

/// The registry's interners.
#[derive(Debug, Default)]
pub(crate) struct Interners {
    /// Localities of endpoints.
    pub(crate) localities: Interner<Locality>,
    /// Services' mesh ports.
    pub(crate) service_ports: Interner<[MeshPort]>,
    /// EndpointSlices' target ports.
    pub(crate) target_ports: Interner<[(SmolStr, u16)]>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(zone: &str) -> Locality {
        Locality {
            region: Some("us-east-1".into()),
            zone: Some(zone.into()),
        }
    }

    #[test]
    fn equal_values_share_one_copy() {
        let mut localities = Interner::default();
        let a = localities.intern(zone("a"));
        let b = localities.intern(zone("a"));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &localities.intern(zone("b"))));
        assert_eq!(*a, zone("a"));

        let mut ports: Interner<[(SmolStr, u16)]> = Interner::default();
        let first: Arc<[(SmolStr, u16)]> = Arc::from(vec![("http".into(), 8080)]);
        let again: Arc<[(SmolStr, u16)]> = Arc::from(vec![("http".into(), 8080)]);
        let shared = ports.share(Arc::clone(&first));
        assert!(Arc::ptr_eq(&shared, &first), "the first copy is kept");
        assert!(Arc::ptr_eq(&ports.share(again), &first));
    }

    #[test]
    fn values_no_one_holds_are_dropped_as_new_ones_come() {
        let mut localities = Interner::default();
        let kept = localities.intern(zone("kept"));
        for n in 0..10 * PRUNE_FLOOR {
            localities.intern(zone(&format!("one-off-{n}")));
        }
        assert!(
            localities.shared.len() <= 2 * PRUNE_FLOOR,
            "{}",
            localities.shared.len()
        );
        assert!(Arc::ptr_eq(&kept, &localities.intern(zone("kept"))));
    }
}
