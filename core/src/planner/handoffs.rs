//! Clusters whose objects change source, when clusters are sharded across replicas: a
//! replica that starts watching a cluster it followed (its owner died, or it became the
//! owner) holds what the previous owner published; one that hands a cluster back holds
//! what its own watchers saw. Either way the new source lists the cluster again, and what
//! the registry held before but the new source does not give must go (an object deleted
//! while no one watched), or it would stay for good. Until the new source has listed,
//! nothing is removed: the last-known objects keep serving.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{ClusterName, ObjectRef};

/// Where a cluster's objects come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// This replica's own watchers (it owns the cluster).
    Watchers,
    /// What the owner publishes (another replica owns it).
    Shared,
}

/// The clusters changing source, with what each new source gave so far.
#[derive(Debug, Default)]
pub struct Handoffs {
    pending: BTreeMap<ClusterName, (Source, BTreeSet<ObjectRef>)>,
}

impl Handoffs {
    /// From now on the objects of `cluster` come from `source`; a handoff still pending for
    /// it starts over.
    pub fn begin(&mut self, cluster: ClusterName, source: Source) {
        self.pending.insert(cluster, (source, BTreeSet::new()));
    }

    /// `source` gave (or removed) `reference` of `cluster`: it is not left over.
    pub fn saw(&mut self, cluster: &ClusterName, source: Source, reference: &ObjectRef) {
        if let Some((from, seen)) = self.pending.get_mut(cluster)
            && *from == source
        {
            seen.insert(reference.clone());
        }
    }

    /// `source` has listed all of `cluster`: of `held` (what the registry holds of it),
    /// what it did not give, to remove. Nothing when no handoff to `source` is pending.
    pub fn finish(
        &mut self,
        cluster: &ClusterName,
        source: Source,
        held: BTreeSet<ObjectRef>,
    ) -> Vec<ObjectRef> {
        match self.pending.get(cluster) {
            Some((from, _)) if *from == source => {}
            _ => return Vec::new(),
        }
        let Some((_, seen)) = self.pending.remove(cluster) else {
            return Vec::new();
        };
        held.into_iter().filter(|r| !seen.contains(r)).collect()
    }

    /// The clusters whose handoff to `source` is pending.
    pub fn pending(&self, source: Source) -> Vec<ClusterName> {
        self.pending
            .iter()
            .filter(|(_, (from, _))| *from == source)
            .map(|(cluster, _)| cluster.clone())
            .collect()
    }

    /// `cluster` is gone: nothing of it is pending any more.
    pub fn forget(&mut self, cluster: &ClusterName) {
        self.pending.remove(cluster);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::model::ObjectKey;

    fn service(name: &str) -> ObjectRef {
        ObjectRef::Service(ObjectKey::new("shop", name))
    }

    fn set(names: &[&str]) -> BTreeSet<ObjectRef> {
        names.iter().map(|n| service(n)).collect()
    }

    #[test]
    fn what_the_new_source_does_not_list_again_goes_and_nothing_else() {
        let east = ClusterName::new("east");
        let mut handoffs = Handoffs::default();
        handoffs.begin(east.clone(), Source::Watchers);
        handoffs.saw(&east, Source::Watchers, &service("cart"));
        // What the old source still sends does not count for the new one.
        handoffs.saw(&east, Source::Shared, &service("gone"));
        let held = set(&["cart", "gone"]);
        assert_eq!(
            handoffs.finish(&east, Source::Shared, held.clone()),
            Vec::<ObjectRef>::new(),
            "no handoff to the shared objects is pending"
        );
        assert_eq!(
            handoffs.finish(&east, Source::Watchers, held.clone()),
            vec![service("gone")]
        );
        // Finished: a second finish removes nothing.
        assert!(handoffs.finish(&east, Source::Watchers, held).is_empty());
    }

    #[test]
    fn a_handoff_begun_again_starts_over_and_one_forgotten_removes_nothing() {
        let east = ClusterName::new("east");
        let mut handoffs = Handoffs::default();
        handoffs.begin(east.clone(), Source::Watchers);
        handoffs.saw(&east, Source::Watchers, &service("cart"));
        handoffs.begin(east.clone(), Source::Shared);
        assert_eq!(handoffs.pending(Source::Shared), vec![east.clone()]);
        assert!(handoffs.pending(Source::Watchers).is_empty());
        assert_eq!(
            handoffs.finish(&east, Source::Shared, set(&["cart"])),
            vec![service("cart")],
            "what the watchers gave before the handback does not count"
        );
        handoffs.begin(east.clone(), Source::Shared);
        handoffs.forget(&east);
        assert!(
            handoffs
                .finish(&east, Source::Shared, set(&["cart"]))
                .is_empty()
        );
    }

    proptest! {
        /// Whatever the two sources held and give, exactly what the registry holds and the
        /// new source did not give is removed.
        #[test]
        fn removed_is_held_minus_given(
            held in proptest::collection::btree_set("[a-f]", 0..6),
            given in proptest::collection::btree_set("[a-f]", 0..6),
        ) {
            let east = ClusterName::new("east");
            let mut handoffs = Handoffs::default();
            handoffs.begin(east.clone(), Source::Watchers);
            for name in &given {
                handoffs.saw(&east, Source::Watchers, &service(name));
            }
            let held: BTreeSet<ObjectRef> = held.iter().map(|n| service(n)).collect();
            let removed: BTreeSet<ObjectRef> =
                handoffs.finish(&east, Source::Watchers, held.clone()).into_iter().collect();
            let given: BTreeSet<ObjectRef> = given.iter().map(|n| service(n)).collect();
            prop_assert_eq!(removed, held.difference(&given).cloned().collect());
        }
    }
}
