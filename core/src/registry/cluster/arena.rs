//! A cluster's objects of one kind (Services, workloads, EndpointSlices), each under a small
//! id while it is stored. The indexes hold 4-byte ids rather than keys (a key is 48 bytes or
//! more), and the table that finds an object by key holds only ids: the key is read from
//! the object, so it is stored once.

use std::hash::{BuildHasher, Hash, Hasher, RandomState};

use hashbrown::HashTable;

/// Names one stored object while it is stored; reused after it goes.
pub(crate) type Id = u32;

/// An object the arena finds by key.
pub(crate) trait Keyed {
    /// The key, as callers hold it.
    type Key: Hash + Eq;

    /// Feeds the object's key to `state` exactly as `Self::Key`'s `Hash` would.
    fn hash_key<H: Hasher>(&self, state: &mut H);

    /// Whether the object has `key`.
    fn has_key(&self, key: &Self::Key) -> bool;

    /// Whether the two objects have the same key.
    fn same_key(&self, other: &Self) -> bool;
}

/// Objects by key and by id.
#[derive(Debug)]
pub(crate) struct Arena<V> {
    /// Ids, found by their object's key.
    index: HashTable<Id>,
    /// Boxed: an empty slot then costs a pointer, not an object.
    slots: Vec<Option<Box<V>>>,
    /// Empty slots, reused first.
    free: Vec<Id>,
    hasher: RandomState,
}

impl<V> Default for Arena<V> {
    fn default() -> Self {
        Self {
            index: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            hasher: RandomState::new(),
        }
    }
}

impl<V: Keyed> Arena<V> {
    fn slot(slots: &[Option<Box<V>>], id: Id) -> Option<&V> {
        slots.get(id as usize)?.as_deref()
    }

    /// The id of the object `key`.
    pub(crate) fn id(&self, key: &V::Key) -> Option<Id> {
        let hash = self.hasher.hash_one(key);
        let found = self.index.find(hash, |&id| {
            Self::slot(&self.slots, id).is_some_and(|v| v.has_key(key))
        });
        found.copied()
    }

    /// The object `key`.
    pub(crate) fn get(&self, key: &V::Key) -> Option<&V> {
        self.by_id(self.id(key)?)
    }

    /// The object stored under `id`.
    pub(crate) fn by_id(&self, id: Id) -> Option<&V> {
        Self::slot(&self.slots, id)
    }

    /// The object `key`, to change it in place (its key must stay).
    pub(crate) fn get_mut(&mut self, key: &V::Key) -> Option<&mut V> {
        let id = self.id(key)?;
        self.by_id_mut(id)
    }

    /// Whether the object `key` is stored.
    pub(crate) fn contains(&self, key: &V::Key) -> bool {
        self.id(key).is_some()
    }

    /// The object stored under `id`, to change it in place (its key must stay).
    pub(crate) fn by_id_mut(&mut self, id: Id) -> Option<&mut V> {
        self.slots.get_mut(id as usize)?.as_deref_mut()
    }

    /// Stores `value`. An object with its key is replaced in place (the id stays) and
    /// returned; otherwise `value` gets a free id.
    pub(crate) fn insert(&mut self, value: V) -> (Id, Option<V>) {
        let hash = hash_of(&self.hasher, &value);
        let slots = &self.slots;
        let found = self.index.find(hash, |&id| {
            Self::slot(slots, id).is_some_and(|stored| stored.same_key(&value))
        });
        if let Some(&id) = found
            && let Some(slot) = self.slots.get_mut(id as usize)
            && let Some(stored) = slot.as_mut()
        {
            return (id, Some(std::mem::replace(&mut **stored, value)));
        }
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(slot) = self.slots.get_mut(id as usize) {
                    *slot = Some(Box::new(value));
                }
                id
            }
            None => {
                // More than 4 billion objects of one kind in one cluster is far past what
                // any API server holds (etcd's limit is a few million).
                debug_assert!(Id::try_from(self.slots.len()).is_ok(), "ids exhausted");
                let id = Id::try_from(self.slots.len()).unwrap_or(Id::MAX);
                self.slots.push(Some(Box::new(value)));
                id
            }
        };
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index.insert_unique(hash, id, |&id| {
            Self::slot(slots, id).map_or(0, |v| hash_of(hasher, v))
        });
        (id, None)
    }

    /// Takes the object `key` out, with the id it had.
    pub(crate) fn remove(&mut self, key: &V::Key) -> Option<(Id, V)> {
        let hash = self.hasher.hash_one(key);
        let slots = &self.slots;
        let entry = self
            .index
            .find_entry(hash, |&id| {
                Self::slot(slots, id).is_some_and(|v| v.has_key(key))
            })
            .ok()?;
        let (id, _) = entry.remove();
        let value = self.slots.get_mut(id as usize)?.take()?;
        self.free.push(id);
        if self.index.is_empty() {
            // Nothing left: give the slots back.
            *self = Self::default();
        }
        Some((id, *value))
    }

    /// Every stored object with its id, in id order.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Id, &V)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(id, slot)| Some((Id::try_from(id).ok()?, slot.as_deref()?)))
    }

    /// Every stored object, in id order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.slots.iter().filter_map(|slot| slot.as_deref())
    }

    /// How many objects are stored.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether none is stored.
    pub(crate) fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

/// An object's hash: its key's.
fn hash_of<V: Keyed>(hasher: &RandomState, value: &V) -> u64 {
    let mut state = hasher.build_hasher();
    value.hash_key(&mut state);
    state.finish()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::fixtures::{slice, workload};
    use crate::model::{EndpointSliceInfo, ObjectKey, WorkloadInfo, WorkloadKind};

    #[test]
    fn objects_are_found_by_key_and_id_until_removed_and_ids_are_reused() {
        let mut arena: Arena<EndpointSliceInfo> = Arena::default();
        let (a, _) = arena.insert(slice("shop", "a", "a", &[]));
        let (b, _) = arena.insert(slice("shop", "b", "b", &[]));
        assert_ne!(a, b);
        let key = ObjectKey::new("shop", "a");
        assert_eq!(arena.id(&key), Some(a));
        assert_eq!(arena.by_id(a).map(|s| s.service.as_str()), Some("a"));

        // The same key again: replaced in place, under the same id.
        let (again, old) = arena.insert(slice("shop", "a", "a2", &[]));
        assert_eq!(again, a);
        assert_eq!(old.map(|s| s.service), Some("a".into()));
        assert_eq!(arena.get(&key).map(|s| s.service.as_str()), Some("a2"));
        assert_eq!(arena.len(), 2);

        let (removed, old) = arena.remove(&key).unwrap();
        assert_eq!((removed, old.key), (a, key.clone()));
        assert!(arena.by_id(a).is_none() && arena.get(&key).is_none());
        assert!(arena.remove(&key).is_none());
        let (c, _) = arena.insert(slice("shop", "c", "c", &[]));
        assert_eq!(c, a, "the freed id is reused");
        assert_eq!(arena.by_id(b).map(|s| s.service.as_str()), Some("b"));
    }

    #[test]
    fn a_workload_is_found_by_its_kind_and_key() {
        let mut arena: Arena<WorkloadInfo> = Arena::default();
        let deployment = workload("shop", "cart", "cart", "prod");
        let mut rollout = deployment.clone();
        rollout.kind = WorkloadKind::Rollout;
        let (d, _) = arena.insert(deployment.clone());
        let (r, _) = arena.insert(rollout);
        assert_ne!(d, r, "one name, two kinds: two workloads");
        let id = (WorkloadKind::Deployment, deployment.key.clone());
        assert_eq!(arena.id(&id), Some(d));
        assert_eq!(
            arena.id(&(WorkloadKind::Rollout, deployment.key.clone())),
            Some(r)
        );
        assert!(
            arena
                .id(&(WorkloadKind::ServiceExport, deployment.key))
                .is_none()
        );
    }

    impl Keyed for EndpointSliceInfo {
        type Key = ObjectKey;
        fn hash_key<H: Hasher>(&self, state: &mut H) {
            self.key.hash(state);
        }
        fn has_key(&self, key: &ObjectKey) -> bool {
            &self.key == key
        }
        fn same_key(&self, other: &Self) -> bool {
            self.key == other.key
        }
    }

    proptest! {
        /// Whatever is stored and removed, the arena finds exactly what a map would, each
        /// object under one id.
        #[test]
        fn the_arena_holds_what_a_map_would(
            steps in proptest::collection::vec((0u8..12, proptest::option::of(0u8..3)), 1..80),
        ) {
            let mut arena: Arena<EndpointSliceInfo> = Arena::default();
            let mut model: BTreeMap<ObjectKey, String> = BTreeMap::new();
            for (n, service) in steps {
                let key = ObjectKey::new("shop", format!("s{n}"));
                match service {
                    Some(service) => {
                        let service = format!("svc-{service}");
                        arena.insert(slice("shop", &key.name, &service, &[]));
                        model.insert(key, service);
                    }
                    None => {
                        prop_assert_eq!(arena.remove(&key).is_some(), model.remove(&key).is_some());
                    }
                }
                prop_assert_eq!(arena.len(), model.len());
                prop_assert_eq!(arena.is_empty(), model.is_empty());
                for (key, service) in &model {
                    let id = arena.id(key);
                    prop_assert!(id.is_some(), "{} is found", key);
                    let stored = id.and_then(|id| arena.by_id(id));
                    prop_assert_eq!(stored.map(|s| (&s.key, s.service.as_str())), Some((key, service.as_str())));
                }
                let stored: BTreeMap<ObjectKey, String> =
                    arena.iter().map(|(_, s)| (s.key.clone(), s.service.to_string())).collect();
                prop_assert_eq!(&stored, &model);
            }
        }
    }
}
