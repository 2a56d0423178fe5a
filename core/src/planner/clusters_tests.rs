//! The cluster-set plan: moves, duplicates, invalid keys, and independence from order.

use proptest::prelude::*;

use super::*;

/// A cluster a key registers, as the plan sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    name: ClusterName,
    fingerprint: u64,
}

impl Candidate for Entry {
    fn name(&self) -> &ClusterName {
        &self.name
    }
    fn fingerprint(&self) -> u64 {
        self.fingerprint
    }
}

fn entry(name: &str, fingerprint: u64) -> Entry {
    Entry {
        name: ClusterName::new(name),
        fingerprint,
    }
}

fn stored(name: &str, created: i64, keys: &[(&str, u64)]) -> StoredSecret<Entry> {
    StoredSecret {
        name: name.into(),
        created: Some(created),
        keys: keys.iter().map(|(k, f)| Ok(entry(k, *f))).collect(),
    }
}

fn invalid(_secret: &str, key: &str) -> Result<Entry, String> {
    Err(key.to_owned())
}

fn running(list: &[(&str, &str, u64)]) -> BTreeMap<ClusterName, Running> {
    list.iter()
        .map(|(c, s, f)| {
            (
                ClusterName::new(c),
                Running {
                    secret: (*s).into(),
                    fingerprint: *f,
                },
            )
        })
        .collect()
}

fn names(list: &[(String, Entry)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(s, e)| (s.clone(), e.name.to_string()))
        .collect()
}

#[test]
fn new_changed_and_gone_clusters() {
    let store = [stored("a", 1, &[("east", 1), ("west", 2)])];
    let now = running(&[("west", "a", 1), ("old", "a", 9)]);
    let p = plan(&store, &now);
    assert_eq!(names(&p.add), [("a".to_owned(), "east".to_owned())]);
    assert_eq!(names(&p.reconnect), [("a".to_owned(), "west".to_owned())]);
    assert_eq!(p.remove, [ClusterName::new("old")]);
}

#[test]
fn a_key_moved_to_another_secret_is_never_withdrawn() {
    // The new Secret arrives first: a duplicate, the old one keeps the cluster.
    let both = [
        stored("old", 1, &[("east", 7)]),
        stored("new", 2, &[("east", 7)]),
    ];
    let now = running(&[("east", "old", 7)]);
    let p = plan(&both, &now);
    assert!(p.remove.is_empty() && p.add.is_empty() && p.reconnect.is_empty());
    assert_eq!(
        p.duplicates,
        [("new".to_owned(), ClusterName::new("east"), "old".to_owned())]
    );
    // Then the old Secret goes: the cluster passes to the new one, same settings, no restart.
    let p = plan(&[stored("new", 2, &[("east", 7)])], &now);
    assert!(p.remove.is_empty() && p.add.is_empty() && p.reconnect.is_empty());
    assert_eq!(p.moved, [(ClusterName::new("east"), "new".to_owned())]);
}

#[test]
fn the_oldest_secret_wins_a_contested_name_whatever_its_name() {
    let store = [
        stored("zz-first", 1, &[("east", 1)]),
        stored("aa-later", 5, &[("east", 2)]),
    ];
    let p = plan(&store, &BTreeMap::new());
    assert_eq!(names(&p.add), [("zz-first".to_owned(), "east".to_owned())]);
}

#[test]
fn a_key_that_turns_invalid_keeps_its_cluster_running() {
    let store = [StoredSecret {
        name: "a".into(),
        created: Some(1),
        keys: vec![invalid("a", "east")],
    }];
    let p = plan(&store, &running(&[("east", "a", 1)]));
    assert!(p.remove.is_empty(), "{p:?}");
    // An invalid key of another Secret keeps nothing alive.
    let p = plan(&store, &running(&[("east", "b", 1)]));
    assert_eq!(p.remove, [ClusterName::new("east")]);
}

/// A Secret in a generated store: name, creation time, keys with their fingerprints.
type SecretSpec = (String, i64, Vec<(String, u64)>);

/// A store: Secret i has `created` from its index's permutation and keys over a few names.
fn store_strategy() -> impl Strategy<Value = Vec<SecretSpec>> {
    prop::collection::vec(
        (
            0i64..4,
            prop::collection::vec((prop::sample::select(vec!["e", "w", "n"]), 0u64..3), 0..3),
        ),
        0..5,
    )
    .prop_map(|secrets| {
        secrets
            .into_iter()
            .enumerate()
            .map(|(i, (created, keys))| {
                let mut seen = BTreeSet::new();
                let keys = keys
                    .into_iter()
                    .filter(|(k, _)| seen.insert(*k))
                    .map(|(k, f)| (k.to_owned(), f))
                    .collect();
                (format!("s{i}"), created, keys)
            })
            .collect()
    })
}

fn build(spec: &[SecretSpec]) -> Vec<StoredSecret<Entry>> {
    spec.iter()
        .map(|(name, created, keys)| StoredSecret {
            name: name.clone(),
            created: Some(*created),
            keys: keys.iter().map(|(k, f)| Ok(entry(k, *f))).collect(),
        })
        .collect()
}

/// What runs after carrying out `p` on `now`.
fn carry_out(
    p: &ClusterPlan<Entry>,
    now: &BTreeMap<ClusterName, Running>,
) -> BTreeMap<ClusterName, Running> {
    let mut next = now.clone();
    for name in &p.remove {
        next.remove(name);
    }
    for (secret, entry) in p.add.iter().chain(&p.reconnect) {
        next.insert(
            entry.name.clone(),
            Running {
                secret: secret.clone(),
                fingerprint: entry.fingerprint,
            },
        );
    }
    for (name, secret) in &p.moved {
        if let Some(r) = next.get_mut(name) {
            r.secret = secret.clone();
        }
    }
    next
}

proptest! {
    #[test]
    fn the_plan_depends_on_the_store_not_on_the_order_of_events(
        spec in store_strategy(),
        seed in any::<u64>(),
    ) {
        // All at once, and one Secret at a time in some order, end at the same clusters.
        let all_at_once = carry_out(&plan(&build(&spec), &BTreeMap::new()), &BTreeMap::new());
        let mut order: Vec<usize> = (0..spec.len()).collect();
        let mut s = seed;
        for i in (1..order.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            order.swap(i, (s >> 33) as usize % (i + 1));
        }
        let mut now = BTreeMap::new();
        let mut arrived: Vec<SecretSpec> = Vec::new();
        for i in order {
            arrived.push(spec[i].clone());
            now = carry_out(&plan(&build(&arrived), &now), &now);
        }
        prop_assert_eq!(now, all_at_once);
    }
}
