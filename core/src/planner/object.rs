//! What to do with one object name in a cluster: the pure decision behind every write.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use serde::Serialize;

use crate::render::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, Metadata};

/// A fingerprint of a spec: equal specs give equal fingerprints (within one process). The
/// writer caches fingerprints, not specs, to stay small with thousands of objects.
pub fn fingerprint(spec: &impl Serialize) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_vec(spec)
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}

/// An object found in (or last written to) the sync namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Existing {
    /// Whether it carries federator's ownership label.
    pub owned: bool,
    /// Fingerprint of its spec as federator's types read it: fields federator does not
    /// model are not compared, so someone else's additions cause no rewrite.
    pub spec: u64,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
    /// Its uid, for Events about it.
    pub uid: Option<String>,
}

impl Existing {
    /// Reads an object from its labels, annotations, uid and spec (the edge takes them from
    /// the Kubernetes object's metadata).
    pub fn new(
        labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
        uid: Option<String>,
        spec: &impl Serialize,
    ) -> Self {
        Self {
            owned: labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY_VALUE),
            spec: fingerprint(spec),
            labels,
            annotations,
            uid,
        }
    }
}

/// An object federator wants in the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// Fingerprint of its spec.
    pub spec: u64,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
}

impl Desired {
    /// Reads a rendered object's metadata and spec.
    pub fn new(meta: &Metadata, spec: &impl Serialize) -> Self {
        Self {
            spec: fingerprint(spec),
            labels: meta.labels.clone(),
            annotations: meta.annotations.clone(),
        }
    }
}

/// The decision for one object name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Already as desired (or absent and not desired): no write.
    Keep,
    /// Create or update by server-side apply.
    Apply,
    /// Delete: federator's, and no longer desired.
    Delete,
    /// Desired, but the name is taken by an object federator does not own: leave it.
    Conflict,
}

/// Decides what to do; never touches an object without federator's label.
pub fn decide(desired: Option<&Desired>, existing: Option<&Existing>) -> Action {
    let contains = |want: &BTreeMap<String, String>, have: &BTreeMap<String, String>| {
        want.iter().all(|(k, v)| have.get(k) == Some(v))
    };
    match (desired, existing) {
        (None, None) => Action::Keep,
        (None, Some(e)) if e.owned => Action::Delete,
        (None, Some(_)) => Action::Keep,
        (Some(_), None) => Action::Apply,
        (Some(_), Some(e)) if !e.owned => Action::Conflict,
        (Some(d), Some(e)) => {
            if d.spec == e.spec
                && contains(&d.labels, &e.labels)
                && contains(&d.annotations, &e.annotations)
            {
                Action::Keep
            } else {
                Action::Apply
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn labels(owned: bool) -> BTreeMap<String, String> {
        let mut l = BTreeMap::from([("federator.io/identity".to_string(), "greeting".to_string())]);
        if owned {
            l.insert(MANAGED_BY_LABEL.into(), MANAGED_BY_VALUE.into());
        }
        l
    }

    fn desired(spec: Value) -> Desired {
        Desired {
            spec: fingerprint(&spec),
            labels: labels(true),
            annotations: BTreeMap::new(),
        }
    }

    fn existing(spec: Value, owned: bool) -> Existing {
        Existing {
            owned,
            spec: fingerprint(&spec),
            labels: labels(owned),
            annotations: BTreeMap::new(),
            uid: None,
        }
    }

    #[test]
    fn identical_objects_are_not_rewritten() {
        let spec = json!({"hosts": ["prod.greeting.global"]});
        assert_eq!(
            decide(Some(&desired(spec.clone())), Some(&existing(spec, true))),
            Action::Keep
        );
    }

    #[test]
    fn changed_or_missing_objects_are_applied() {
        let d = desired(json!({"hosts": ["a"]}));
        assert_eq!(decide(Some(&d), None), Action::Apply);
        assert_eq!(
            decide(Some(&d), Some(&existing(json!({"hosts": ["b"]}), true))),
            Action::Apply
        );
        let mut e = existing(json!({"hosts": ["a"]}), true);
        e.labels.remove("federator.io/identity");
        assert_eq!(
            decide(Some(&d), Some(&e)),
            Action::Apply,
            "a label we set went missing"
        );
        e.labels = labels(true);
        e.labels.insert("team".into(), "x".into());
        assert_eq!(
            decide(Some(&d), Some(&e)),
            Action::Keep,
            "labels others add are fine"
        );
    }

    #[test]
    fn only_owned_objects_are_deleted() {
        assert_eq!(
            decide(None, Some(&existing(json!({}), true))),
            Action::Delete
        );
        assert_eq!(
            decide(None, Some(&existing(json!({}), false))),
            Action::Keep
        );
        assert_eq!(decide(None, None), Action::Keep);
    }

    #[test]
    fn unowned_objects_in_the_way_are_conflicts() {
        let d = desired(json!({"hosts": ["a"]}));
        assert_eq!(
            decide(Some(&d), Some(&existing(json!({"hosts": ["a"]}), false))),
            Action::Conflict
        );
    }
}
