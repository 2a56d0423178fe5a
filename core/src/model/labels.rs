//! Label maps as the registry keeps them: a Service's selector and a workload's pod labels,
//! one of each per object of every cluster.

use std::collections::BTreeMap;

use smol_str::SmolStr;

/// Labels (or a label selector): sorted pairs in one allocation. A `BTreeMap` allocates a
/// node for eleven pairs whatever it holds (over half a KiB for the one or two labels an
/// `app` selector has); this holds what it holds, and short keys and values are stored
/// inline. Changing a pair rebuilds it: objects are replaced whole when they change, so that
/// is rare.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(Box<[(SmolStr, SmolStr)]>);

impl Labels {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|at| self.0[at].1.as_str())
    }

    /// The pairs, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Sets `key` to `value`, returning the value it had.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        let mut map = self.to_map();
        let old = map.insert(key, value);
        *self = map.into();
        old
    }

    /// A `BTreeMap` of the same pairs, for the objects rendered from them.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// Whether every pair of `self` is in `labels` (Kubernetes' equality-based selector; an
    /// empty `self` is contained in anything).
    pub fn contained_in(&self, labels: &Labels) -> bool {
        self.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

impl From<BTreeMap<String, String>> for Labels {
    fn from(map: BTreeMap<String, String>) -> Self {
        // A BTreeMap iterates sorted and without duplicates.
        Self(
            map.into_iter()
                .map(|(k, v)| (SmolStr::from(k), SmolStr::from(v)))
                .collect(),
        )
    }
}

impl FromIterator<(String, String)> for Labels {
    /// Later pairs win over earlier ones with the same key, as in a map.
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        pairs.into_iter().collect::<BTreeMap<_, _>>().into()
    }
}

/// Labels are written as the map they are (sorted by key).
impl serde::Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

/// Read as a map, so whatever order or repetition it was written with, the pairs are sorted
/// and unique, as lookups need.
impl<'de> serde::Deserialize<'de> for Labels {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<String, String>::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Built from any pairs, it holds and finds what a `BTreeMap` built from them does.
        #[test]
        fn answers_as_a_map(pairs in proptest::collection::vec(("[a-c]{1,2}", "[x-z]"), 0..8), probe in "[a-c]{1,2}") {
            let map: BTreeMap<String, String> = pairs.iter().cloned().collect();
            let labels: Labels = pairs.into_iter().collect();
            prop_assert_eq!(labels.get(&probe), map.get(&probe).map(String::as_str));
            prop_assert_eq!(labels.len(), map.len());
            prop_assert_eq!(labels.to_map(), map);
        }
    }

    #[test]
    fn a_selector_is_contained_in_labels_that_have_all_its_pairs() {
        let pod: Labels = [("app", "greeting"), ("version", "v2")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into_iter()
            .collect();
        let app: Labels = [("app".to_owned(), "greeting".to_owned())]
            .into_iter()
            .collect();
        let other: Labels = [("app".to_owned(), "payments".to_owned())]
            .into_iter()
            .collect();
        assert!(app.contained_in(&pod));
        assert!(!other.contained_in(&pod));
        assert!(!pod.contained_in(&app));
    }
}
