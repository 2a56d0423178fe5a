//! How each object a cluster stores in an arena is found by key.

use super::arena::Keyed;
use super::slices::StoredSlice;
use super::{HostInCluster, WorkloadId};
use crate::model::{Host, ObjectKey, ServiceInfo, WorkloadInfo};

/// Objects found by one of their fields.
macro_rules! keyed_by_field {
    ($($type:ty => $field:ident: $key:ty),* $(,)?) => {
        $(impl Keyed for $type {
            type Key = $key;
            fn hash_key<H: std::hash::Hasher>(&self, state: &mut H) {
                std::hash::Hash::hash(&self.$field, state);
            }
            fn has_key(&self, key: &$key) -> bool {
                &self.$field == key
            }
            fn same_key(&self, other: &Self) -> bool {
                self.$field == other.$field
            }
        })*
    };
}

keyed_by_field! {
    ServiceInfo => key: ObjectKey,
    StoredSlice => key: ObjectKey,
    HostInCluster => host: Host,
}

impl Keyed for WorkloadInfo {
    type Key = WorkloadId;
    fn hash_key<H: std::hash::Hasher>(&self, state: &mut H) {
        // As the tuple `WorkloadId` hashes: its fields in order.
        std::hash::Hash::hash(&(self.kind, &self.key), state);
    }
    fn has_key(&self, (kind, key): &WorkloadId) -> bool {
        self.kind == *kind && &self.key == key
    }
    fn same_key(&self, other: &Self) -> bool {
        self.kind == other.kind && self.key == other.key
    }
}
