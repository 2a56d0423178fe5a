//! How each object a cluster stores in an arena is found by key.

use super::arena::Keyed;
use super::slices::StoredSlice;
use super::{HostInCluster, WorkloadId};
use crate::model::{Host, ObjectKey, ServiceInfo, WorkloadInfo};

impl Keyed for ServiceInfo {
    type Key = ObjectKey;
    fn hash_key<H: std::hash::Hasher>(&self, state: &mut H) {
        std::hash::Hash::hash(&self.key, state);
    }
    fn has_key(&self, key: &ObjectKey) -> bool {
        &self.key == key
    }
    fn same_key(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Keyed for HostInCluster {
    type Key = Host;
    fn hash_key<H: std::hash::Hasher>(&self, state: &mut H) {
        std::hash::Hash::hash(&self.host, state);
    }
    fn has_key(&self, host: &Host) -> bool {
        &self.host == host
    }
    fn same_key(&self, other: &Self) -> bool {
        self.host == other.host
    }
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

impl Keyed for StoredSlice {
    type Key = ObjectKey;
    fn hash_key<H: std::hash::Hasher>(&self, state: &mut H) {
        std::hash::Hash::hash(&self.key, state);
    }
    fn has_key(&self, key: &ObjectKey) -> bool {
        &self.key == key
    }
    fn same_key(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
