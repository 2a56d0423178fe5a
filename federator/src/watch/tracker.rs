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
#[derive(Debug, Clone, PartialEq)]
pub struct Tracker {
    cluster: ClusterName,
    known: HashMap<ApiKey, ObjectRef>,
    relisting: Option<HashSet<ApiKey>>,
}

/// What one watch event means: the deltas to send, and the tracker's own change, which
/// [`Tracker::commit`] applies once every delta has been sent.
///
/// The watch task may be aborted while it waits to send (a reconnect while the registry's
/// channel is full), and the tracker outlives it. Committing last loses nothing wherever the
/// task stops: before the first delta is sent, the tracker is as it was and nothing happened.
/// After some were sent, those were Removes (an Upsert is always a step's last delta, and the
/// commit follows the last send with no await in between): the tracker still knows those
/// objects, so the next relist removes them again, and the registry ignores a Remove of an
/// object it no longer holds. Had the tracker forgotten them first, their Removes would be
/// lost for good: the next relist cannot remove what the tracker does not know.
#[derive(Debug)]
#[must_use = "a step changes nothing until its deltas are sent and it is committed"]
pub struct Step {
    /// The deltas, in order.
    pub deltas: Vec<Delta>,
    /// The tracker's change, for [`Tracker::commit`] once `deltas` are sent.
    pub commit: Commit,
}

/// The change a [`Step`] makes to its tracker, kept aside until its deltas are sent.
#[derive(Debug)]
#[must_use = "the tracker does not change until this is committed"]
pub struct Commit(Change);

#[derive(Debug)]
enum Change {
    Init,
    Apply {
        key: ApiKey,
        reference: Option<ObjectRef>,
    },
    Delete(ApiKey),
    InitDone(Vec<ApiKey>),
}

impl Step {
    fn new(deltas: Vec<Delta>, change: Change) -> Self {
        Self {
            deltas,
            commit: Commit(change),
        }
    }
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
    pub fn init(&self) -> Step {
        Step::new(Vec::new(), Change::Init)
    }

    /// An object was listed or changed; `object` is `None` when it is not (or no longer)
    /// something the registry wants (no identity, invalid).
    pub fn apply(&self, key: ApiKey, object: Option<Object>) -> Step {
        let reference = object.as_ref().map(Object::reference);
        let mut deltas = Vec::new();
        if let Some(old) = self.known.get(&key)
            && Some(old) != reference.as_ref()
        {
            deltas.push(Delta::Remove(self.cluster.clone(), old.clone()));
        }
        // Last, so that a step cut short has sent Removes only (see `Step`).
        if let Some(object) = object {
            deltas.push(Delta::Upsert(self.cluster.clone(), object));
        }
        Step::new(deltas, Change::Apply { key, reference })
    }

    /// An object was deleted.
    pub fn delete(&self, key: ApiKey) -> Step {
        let deltas = self.removal(&key).into_iter().collect();
        Step::new(deltas, Change::Delete(key))
    }

    /// The relist is complete: whatever it did not list is gone.
    pub fn init_done(&self) -> Step {
        let gone: Vec<ApiKey> = match &self.relisting {
            Some(seen) => self
                .known
                .keys()
                .filter(|k| !seen.contains(*k))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        let deltas = gone.iter().filter_map(|k| self.removal(k)).collect();
        Step::new(deltas, Change::InitDone(gone))
    }

    /// Records a step whose deltas have all been sent.
    pub fn commit(&mut self, commit: Commit) {
        match commit.0 {
            Change::Init => self.relisting = Some(HashSet::new()),
            Change::Apply { key, reference } => {
                if let Some(seen) = self.relisting.as_mut() {
                    seen.insert(key.clone());
                }
                match reference {
                    Some(reference) => self.known.insert(key, reference),
                    None => self.known.remove(&key),
                };
            }
            Change::Delete(key) => {
                if let Some(seen) = self.relisting.as_mut() {
                    seen.remove(&key);
                }
                self.known.remove(&key);
            }
            Change::InitDone(gone) => {
                self.relisting = None;
                for key in gone {
                    self.known.remove(&key);
                }
            }
        }
    }

    fn removal(&self, key: &ApiKey) -> Option<Delta> {
        self.known
            .get(key)
            .map(|old| Delta::Remove(self.cluster.clone(), old.clone()))
    }
}

#[cfg(test)]
#[path = "tracker_tests.rs"]
mod tests;
