//! Turns a watcher's events into registry deltas, relists included.
//!
//! A watch stream may restart and list everything again (after an error, or when its
//! resource version expired). Objects that vanished while the stream was down show up only
//! as absences from that list, so the tracker remembers what each stream reported and, when
//! a relist completes, removes what the list no longer holds.

use std::collections::{HashMap, HashSet};

use crate::model::{ClusterName, Object, ObjectRef};
use crate::registry::Delta;

/// The API identity of a watched object: kind, namespace and name. One API object maps to
/// at most one registry object, but which one can change (a Service becoming the gateway).
pub type ApiKey = (&'static str, String, String);

/// What one watch stream has reported, for computing removals after a relist.
#[derive(Debug)]
pub struct Tracker {
    cluster: ClusterName,
    known: HashMap<ApiKey, ObjectRef>,
    relisting: Option<HashSet<ApiKey>>,
}

impl Tracker {
    /// A tracker for one stream of `cluster`.
    pub fn new(cluster: ClusterName) -> Self {
        Self {
            cluster,
            known: HashMap::new(),
            relisting: None,
        }
    }

    /// A relist starts.
    pub fn init(&mut self) {
        self.relisting = Some(HashSet::new());
    }

    /// An object was listed or changed; `object` is `None` when it is not (or no longer)
    /// something the registry wants (no identity, invalid).
    pub fn apply(&mut self, key: ApiKey, object: Option<Object>) -> Vec<Delta> {
        if let Some(seen) = self.relisting.as_mut() {
            seen.insert(key.clone());
        }
        let mut out = Vec::new();
        let new_ref = object.as_ref().map(Object::reference);
        let old_ref = match &new_ref {
            Some(r) => self.known.insert(key, r.clone()),
            None => self.known.remove(&key),
        };
        if let Some(old) = old_ref
            && Some(&old) != new_ref.as_ref()
        {
            out.push(Delta::Remove(self.cluster.clone(), old));
        }
        if let Some(object) = object {
            out.push(Delta::Upsert(self.cluster.clone(), object));
        }
        out
    }

    /// An object was deleted.
    pub fn delete(&mut self, key: &ApiKey) -> Vec<Delta> {
        if let Some(seen) = self.relisting.as_mut() {
            seen.remove(key);
        }
        self.known
            .remove(key)
            .map(|old| Delta::Remove(self.cluster.clone(), old))
            .into_iter()
            .collect()
    }

    /// The relist is complete: whatever it did not list is gone.
    pub fn init_done(&mut self) -> Vec<Delta> {
        let Some(seen) = self.relisting.take() else {
            return Vec::new();
        };
        let gone: Vec<ApiKey> = self
            .known
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        gone.iter().flat_map(|k| self.delete(k)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{gateway, service};
    use crate::model::ObjectKey;

    fn key(name: &str) -> ApiKey {
        ("Service", "ns".into(), name.into())
    }

    fn svc(name: &str) -> Object {
        Object::Service(service("ns", name).port("http", 80))
    }

    fn removed(deltas: &[Delta]) -> Vec<String> {
        deltas
            .iter()
            .filter_map(|d| match d {
                Delta::Remove(_, r) => Some(r.to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn relist_removes_what_vanished_while_disconnected() {
        let mut t = Tracker::new("east".into());
        t.init();
        t.apply(key("a"), Some(svc("a")));
        t.apply(key("b"), Some(svc("b")));
        assert!(t.init_done().is_empty());
        // The stream restarts; only "a" is listed again.
        t.init();
        let upserts = t.apply(key("a"), Some(svc("a")));
        assert_eq!(upserts.len(), 1);
        assert_eq!(removed(&t.init_done()), ["Service ns/b"]);
        // A second relist with the same content removes nothing.
        t.init();
        t.apply(key("a"), Some(svc("a")));
        assert!(t.init_done().is_empty());
    }

    #[test]
    fn an_object_that_stops_qualifying_is_removed() {
        let mut t = Tracker::new("east".into());
        t.apply(key("a"), Some(svc("a")));
        let deltas = t.apply(key("a"), None);
        assert_eq!(removed(&deltas), ["Service ns/a"]);
        assert!(t.delete(&key("a")).is_empty(), "already forgotten");
    }

    #[test]
    fn a_service_turning_into_the_gateway_swaps_its_reference() {
        let mut t = Tracker::new("east".into());
        t.apply(key("gw"), Some(svc("gw")));
        let mut gw = gateway(&["192.0.2.1"]);
        gw.key = ObjectKey::new("ns", "gw");
        let deltas = t.apply(key("gw"), Some(Object::Gateway(gw)));
        assert_eq!(removed(&deltas), ["Service ns/gw"]);
        assert!(matches!(
            deltas.last(),
            Some(Delta::Upsert(_, Object::Gateway(_)))
        ));
    }

    #[test]
    fn deletes_during_a_relist_are_not_removed_twice() {
        let mut t = Tracker::new("east".into());
        t.apply(key("a"), Some(svc("a")));
        t.init();
        t.apply(key("a"), Some(svc("a")));
        assert_eq!(removed(&t.delete(&key("a"))), ["Service ns/a"]);
        assert!(t.init_done().is_empty());
    }
}
