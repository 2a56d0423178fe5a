//! One shared copy of each locality the registry's endpoints are in: a fleet has a few dozen
//! localities and millions of endpoints, each of which would otherwise carry its region and
//! zone (48 bytes) itself.

use std::collections::HashSet;
use std::sync::Arc;

use crate::model::Locality;

/// Smallest size at which unused localities are looked for.
const PRUNE_FLOOR: usize = 64;

/// The localities in use, each held once.
#[derive(Debug, Default)]
pub(crate) struct Localities {
    shared: HashSet<Arc<Locality>>,
    /// Size after the last prune: the next comes when it has doubled, so a stream of
    /// one-off zones (a hand-written EndpointSlice's) cannot grow it without bound, at a
    /// cost spread over the insertions.
    pruned_at: usize,
}

impl Localities {
    /// The shared copy of `locality`.
    pub(crate) fn intern(&mut self, locality: Locality) -> Arc<Locality> {
        if let Some(shared) = self.shared.get(&locality) {
            return Arc::clone(shared);
        }
        if self.shared.len() >= (2 * self.pruned_at).max(PRUNE_FLOOR) {
            // Held only here: no endpoint is in it any more.
            self.shared.retain(|l| Arc::strong_count(l) > 1);
            // A table keeps its size after a burst; the next prune walks all of it.
            self.shared.shrink_to(2 * self.shared.len());
            self.pruned_at = self.shared.len();
        }
        let shared = Arc::new(locality);
        self.shared.insert(Arc::clone(&shared));
        shared
    }
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
    fn equal_localities_share_one_copy() {
        let mut localities = Localities::default();
        let a = localities.intern(zone("a"));
        let b = localities.intern(zone("a"));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &localities.intern(zone("b"))));
        assert_eq!(*a, zone("a"));
    }

    #[test]
    fn localities_no_endpoint_holds_are_dropped_as_new_ones_come() {
        let mut localities = Localities::default();
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
