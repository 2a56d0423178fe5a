//! The cluster's EndpointSlices, each under a small id: the indexes by Service and by node
//! hold ids, not keys (an id is 8 bytes, a key 48, and a slice's key was held once per node
//! its endpoints run on).

use std::collections::HashMap;

use crate::model::{EndpointSliceInfo, ObjectKey};

/// Names one stored slice while it is stored; reused after it goes.
pub(super) type SliceId = usize;

/// EndpointSlices by key and by id.
#[derive(Debug, Default)]
pub(super) struct SliceStore {
    ids: HashMap<ObjectKey, SliceId>,
    /// Boxed: an empty slot then costs a pointer, not a slice.
    slots: Vec<Option<Box<EndpointSliceInfo>>>,
    /// Empty slots, reused first.
    free: Vec<SliceId>,
}

impl SliceStore {
    /// Stores `slice` (its key must not be stored) and returns its id.
    pub(super) fn insert(&mut self, slice: EndpointSliceInfo) -> SliceId {
        debug_assert!(
            !self.ids.contains_key(&slice.key),
            "{} stored twice",
            slice.key
        );
        let key = slice.key.clone();
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id] = Some(Box::new(slice));
                id
            }
            None => {
                self.slots.push(Some(Box::new(slice)));
                self.slots.len() - 1
            }
        };
        self.ids.insert(key, id);
        id
    }

    /// Takes the slice `key` out, with the id it had.
    pub(super) fn remove(&mut self, key: &ObjectKey) -> Option<(SliceId, EndpointSliceInfo)> {
        let id = self.ids.remove(key)?;
        let slice = self.slots.get_mut(id)?.take()?;
        self.free.push(id);
        Some((id, *slice))
    }

    /// The slice stored under `id`.
    pub(super) fn get(&self, id: SliceId) -> Option<&EndpointSliceInfo> {
        self.slots.get(id)?.as_deref()
    }

    /// The slice `key`.
    #[cfg(test)]
    pub(super) fn by_key(&self, key: &ObjectKey) -> Option<&EndpointSliceInfo> {
        self.get(*self.ids.get(key)?)
    }

    /// Every stored slice with its id.
    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = (SliceId, &EndpointSliceInfo)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(id, slot)| Some((id, slot.as_deref()?)))
    }

    /// Whether no slice is stored.
    pub(super) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::slice;

    #[test]
    fn slices_are_found_by_key_and_id_until_removed_and_ids_are_reused() {
        let mut store = SliceStore::default();
        let a = store.insert(slice("shop", "a", "a", &[]));
        let b = store.insert(slice("shop", "b", "b", &[]));
        assert_ne!(a, b);
        assert_eq!(store.get(a).map(|s| s.service.as_str()), Some("a"));
        let key = ObjectKey::new("shop", "a");
        assert_eq!(store.by_key(&key).map(|s| s.service.as_str()), Some("a"));
        let (removed, old) = store.remove(&key).unwrap();
        assert_eq!((removed, old.key), (a, key.clone()));
        assert!(store.get(a).is_none() && store.by_key(&key).is_none());
        assert!(store.remove(&key).is_none());
        let c = store.insert(slice("shop", "c", "c", &[]));
        assert_eq!(c, a, "the freed id is reused");
        assert_eq!(store.get(b).map(|s| s.service.as_str()), Some("b"));
        store.remove(&ObjectKey::new("shop", "b"));
        store.remove(&ObjectKey::new("shop", "c"));
        assert!(store.is_empty());
    }
}
