use proptest::prelude::*;

use super::*;

const US: &str = "federator.federator";

fn labels(owner: &Owner) -> BTreeMap<String, String> {
    let mut l = BTreeMap::from([("federator.io/identity".to_owned(), "greeting".to_owned())]);
    match owner {
        Owner::Us => {
            l.insert(MANAGED_BY_LABEL.into(), MANAGED_BY_VALUE.into());
            l.insert(INSTANCE_LABEL.into(), US.into());
        }
        Owner::OtherInstallation(other) => {
            l.insert(MANAGED_BY_LABEL.into(), MANAGED_BY_VALUE.into());
            if let Some(other) = other {
                l.insert(INSTANCE_LABEL.into(), other.clone());
            }
        }
        Owner::Foreign => {}
    }
    l
}

fn clusters(list: &[&str]) -> BTreeMap<String, String> {
    BTreeMap::from([(CLUSTERS_ANNOTATION.to_owned(), list.join(","))])
}

fn desired(spec: u64, on: &[&str]) -> Desired {
    Desired {
        spec,
        labels: labels(&Owner::Us),
        annotations: clusters(on),
    }
}

fn existing(spec: u64, owner: Owner, on: &[&str]) -> Existing {
    Existing {
        labels: labels(&owner).into(),
        owner,
        spec,
        annotations: clusters(on).into(),
        uid: Some("uid-1".into()),
        resource_version: Some("7".into()),
    }
}

fn key(name: &str) -> Key {
    (Kind::ServiceEntry, name.to_owned())
}

fn open() -> Gates {
    Gates {
        deletes: true,
        ..Gates::default()
    }
}

fn one(d: Option<Desired>, e: Option<Existing>, gates: &Gates) -> Plan {
    let k = key("prod.greeting.global");
    plan(
        &d.map(|d| (k.clone(), d)).into_iter().collect(),
        &e.map(|e| (k.clone(), e)).into_iter().collect(),
        gates,
    )
}

fn installation(instance: &str, adopt_unlabelled: bool) -> Installation {
    Installation {
        instance: instance.into(),
        adopt_unlabelled,
    }
}

#[test]
fn ownership_needs_both_labels() {
    let us = installation(US, false);
    assert_eq!(us.owner(&labels(&Owner::Us)), Owner::Us);
    assert_eq!(us.owner(&labels(&Owner::Foreign)), Owner::Foreign);
    assert_eq!(
        installation("staging.federator", false).owner(&labels(&Owner::Us)),
        Owner::OtherInstallation(Some(US.into()))
    );
    let unlabelled = labels(&Owner::OtherInstallation(None));
    assert_eq!(us.owner(&unlabelled), Owner::OtherInstallation(None));
    // An upgrade adopts objects written before the instance label, and only those.
    let adopting = installation(US, true);
    assert_eq!(adopting.owner(&unlabelled), Owner::Us);
    assert_eq!(
        installation("staging.federator", true).owner(&labels(&Owner::Us)),
        Owner::OtherInstallation(Some(US.into()))
    );
    assert_eq!(adopting.owner(&labels(&Owner::Foreign)), Owner::Foreign);
}

#[test]
fn a_missing_object_is_created_and_a_current_one_left_alone() {
    let p = one(Some(desired(1, &["east"])), None, &open());
    assert_eq!(p.writes, [Write::Create(key("prod.greeting.global"))]);
    let p = one(
        Some(desired(1, &["east"])),
        Some(existing(1, Owner::Us, &["east"])),
        &open(),
    );
    assert!(p.writes.is_empty());
    assert_eq!(p.settled.len(), 1);
}

#[test]
fn updates_and_deletes_carry_what_was_read() {
    let p = one(
        Some(desired(2, &["east"])),
        Some(existing(1, Owner::Us, &["east"])),
        &open(),
    );
    assert_eq!(
        p.writes,
        [Write::Update {
            key: key("prod.greeting.global"),
            resource_version: Some("7".into())
        }]
    );
    let p = one(None, Some(existing(1, Owner::Us, &["east"])), &open());
    assert_eq!(
        p.writes,
        [Write::Delete {
            key: key("prod.greeting.global"),
            uid: Some("uid-1".into()),
            resource_version: Some("7".into())
        }]
    );
}

#[test]
fn labels_others_add_cause_no_rewrite_but_a_lost_one_does() {
    let mut e = existing(1, Owner::Us, &["east"]);
    std::sync::Arc::make_mut(&mut e.labels).insert("team".into(), "x".into());
    assert!(
        one(Some(desired(1, &["east"])), Some(e.clone()), &open())
            .writes
            .is_empty()
    );
    std::sync::Arc::make_mut(&mut e.labels).remove("federator.io/identity");
    assert_eq!(
        one(Some(desired(1, &["east"])), Some(e), &open())
            .writes
            .len(),
        1
    );
}

#[test]
fn objects_of_others_are_conflicts_never_writes() {
    for owner in [
        Owner::Foreign,
        Owner::OtherInstallation(Some("staging.federator".into())),
        Owner::OtherInstallation(None),
    ] {
        let p = one(
            Some(desired(1, &["east"])),
            Some(existing(2, owner.clone(), &["east"])),
            &open(),
        );
        assert!(p.writes.is_empty(), "{owner:?} taken over");
        assert_eq!(p.conflicts.len(), 1);
        let p = one(None, Some(existing(2, owner.clone(), &["east"])), &open());
        assert!(p.writes.is_empty(), "{owner:?} deleted");
        assert!(p.conflicts.is_empty(), "not wanted: no conflict either");
    }
}

#[test]
fn nothing_drops_a_cluster_not_listed_yet() {
    let gates = Gates {
        deletes: true,
        unlisted: ["west".to_owned()].into(),
        ..Gates::default()
    };
    // West's host would be deleted: held.
    let p = one(None, Some(existing(1, Owner::Us, &["west"])), &gates);
    assert_eq!(p.held[0].1, Hold::Unlisted("west".into()));
    // An update that drops west's backends: held.
    let p = one(
        Some(desired(2, &["east"])),
        Some(existing(1, Owner::Us, &["east", "west"])),
        &gates,
    );
    assert_eq!(p.held[0].1, Hold::Unlisted("west".into()));
    // An update that keeps west, or concerns only east: written.
    let p = one(
        Some(desired(2, &["east", "west"])),
        Some(existing(1, Owner::Us, &["west"])),
        &gates,
    );
    assert_eq!(p.writes.len(), 1);
    let p = one(None, Some(existing(1, Owner::Us, &["east"])), &gates);
    assert_eq!(p.writes.len(), 1);
    // An object of unknown clusters waits for every cluster.
    let mut legacy = existing(1, Owner::Us, &[]);
    legacy.annotations = Default::default();
    let p = one(None, Some(legacy.clone()), &gates);
    assert_eq!(p.held[0].1, Hold::UnknownClusters);
    assert_eq!(one(None, Some(legacy), &open()).writes.len(), 1);
}

#[test]
fn closed_deletes_and_resting_objects_wait() {
    let closed = Gates::default();
    let p = one(None, Some(existing(1, Owner::Us, &["east"])), &closed);
    assert_eq!(p.held[0].1, Hold::DeletesClosed);
    // Creates still go out with deletes closed.
    assert_eq!(
        one(Some(desired(1, &["east"])), None, &closed).writes.len(),
        1
    );
    let resting = Gates {
        deletes: true,
        resting: [key("prod.greeting.global")].into(),
        ..Gates::default()
    };
    let p = one(Some(desired(1, &["east"])), None, &resting);
    assert_eq!(p.held[0].1, Hold::Resting);
}

fn cluster_names() -> impl Strategy<Value = Vec<&'static str>> {
    proptest::sample::subsequence(vec!["east", "west", "north"], 0..=3)
}

fn arb_existing() -> impl Strategy<Value = Option<Existing>> {
    let owner = prop_oneof![
        Just(Owner::Us),
        Just(Owner::Foreign),
        Just(Owner::OtherInstallation(None)),
    ];
    proptest::option::of((0u64..3, owner, cluster_names(), any::<bool>()).prop_map(
        |(spec, owner, on, annotated)| {
            let mut e = existing(spec, owner, &on);
            if !annotated {
                e.annotations = Default::default();
            }
            e
        },
    ))
}

fn arb_desired() -> impl Strategy<Value = Option<Desired>> {
    proptest::option::of((0u64..3, cluster_names()).prop_map(|(spec, on)| desired(spec, &on)))
}

proptest! {
    /// No plan deletes a host of a cluster whose lists have not completed, or removes its
    /// backends by an update; and only this installation's objects are ever written over.
    #[test]
    fn no_plan_drops_an_unlisted_cluster_or_touches_others_objects(
        hosts in proptest::collection::vec((arb_desired(), arb_existing()), 1..12),
        unlisted in cluster_names(),
        deletes in any::<bool>(),
    ) {
        let unlisted: BTreeSet<String> = unlisted.into_iter().map(str::to_owned).collect();
        let gates = Gates { deletes, unlisted: unlisted.clone(), ..Gates::default() };
        let mut desired_map = BTreeMap::new();
        let mut existing_map = BTreeMap::new();
        for (i, (d, e)) in hosts.into_iter().enumerate() {
            let k = key(&format!("h{i}"));
            if let Some(d) = d { desired_map.insert(k.clone(), d); }
            if let Some(e) = e { existing_map.insert(k, e); }
        }
        let p = plan(&desired_map, &existing_map, &gates);
        for write in &p.writes {
            let e = existing_map.get(write.key());
            if let Some(e) = e {
                prop_assert_eq!(&e.owner, &Owner::Us, "wrote over {:?}", write);
                let before = clusters_of(&e.annotations);
                let after = desired_map.get(write.key())
                    .and_then(|d| clusters_of(&d.annotations))
                    .unwrap_or_default();
                match before {
                    None => prop_assert!(unlisted.is_empty()),
                    Some(before) => prop_assert!(
                        before.difference(&after).all(|c| !unlisted.contains(c)),
                        "{:?} drops an unlisted cluster", write
                    ),
                }
            } else {
                prop_assert!(matches!(write, Write::Create(_)));
            }
            if matches!(write, Write::Delete { .. }) {
                prop_assert!(deletes);
            }
        }
        // Every key is accounted for exactly once.
        let keys: BTreeSet<&Key> = desired_map.keys().chain(existing_map.keys()).collect();
        prop_assert_eq!(
            keys.len(),
            p.writes.len() + p.held.len() + p.conflicts.len() + p.settled.len()
        );
    }
}
