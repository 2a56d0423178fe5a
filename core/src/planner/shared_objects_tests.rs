use proptest::prelude::*;

use super::*;
use crate::fixtures::{every_kind_of_object, service};
use crate::model::RejectedInfo;

#[test]
fn every_kind_of_object_comes_back_as_it_was_published_under_its_own_key() {
    let east = ClusterName::new("east");
    for object in every_kind_of_object() {
        let key = object_key(&east, &object);
        let (cluster, back) = decode(&key, &encode(&object)).unwrap();
        assert_eq!((cluster, &back), (east.clone(), &object), "{key}");
    }
}

#[test]
fn a_value_that_is_not_the_object_its_key_names_is_refused_naming_the_key() {
    let east = ClusterName::new("east");
    let object = Object::Service(service("shop", "cart"));
    let elsewhere = key(&east, &ObjectRef::Service(ObjectKey::new("shop", "pay")));
    // The rejected version of a policy under the valid policy's key, and the other way round.
    let policy = ObjectRef::Policy(ObjectKey::new("shop", "bad"));
    let rejected = Object::Rejected(RejectedInfo {
        reference: policy.clone(),
        generation: None,
        reason: "no identity".into(),
    });
    assert!(decode(&key(&east, &policy), &encode(&rejected)).is_err());
    assert!(decode(&rejected_key(&east, &policy), &encode(&rejected)).is_ok());
    let err = decode(&elsewhere, &encode(&object)).unwrap_err();
    assert_eq!(err.key, "east/service/shop/pay");
    assert!(err.reason.contains("Service shop/cart"), "{err}");
    let err = decode("east/service/shop/cart", br#"{"Service": 1}"#).unwrap_err();
    assert!(err.reason.starts_with("not an object"), "{err}");
    for bad in [
        "east",
        "east/widget/a/b",
        "east/service/a",
        "east//a/b",
        "east/clusterid/x",
    ] {
        assert!(parse_key(bad).is_err(), "{bad}");
    }
}

fn reference() -> impl Strategy<Value = ObjectRef> {
    let name = "[a-z0-9]([a-z0-9.-]{0,10}[a-z0-9])?";
    let key = (name, name).prop_map(|(ns, n)| ObjectKey::new(ns, n));
    let kind = prop_oneof![
        Just(WorkloadKind::Deployment),
        Just(WorkloadKind::Rollout),
        Just(WorkloadKind::RolloutVariant),
        Just(WorkloadKind::ServiceExport),
    ];
    prop_oneof![
        key.clone().prop_map(ObjectRef::Service),
        key.clone().prop_map(ObjectRef::EndpointSlice),
        (kind, key.clone()).prop_map(|(k, key)| ObjectRef::Workload(k, key)),
        name.prop_map(ObjectRef::Node),
        key.clone().prop_map(ObjectRef::Gateway),
        key.clone().prop_map(ObjectRef::Policy),
        name.prop_map(ObjectRef::MeshNamespace),
        key.clone().prop_map(ObjectRef::PassthroughClaim),
        key.clone().prop_map(ObjectRef::Dependency),
        key.clone().prop_map(ObjectRef::AdmiralPolicy),
        key.prop_map(ObjectRef::AdmiralDependency),
        Just(ObjectRef::ClusterId),
    ]
}

proptest! {
    /// Every reference's key names it again, and two references never share a key.
    #[test]
    fn keys_name_their_reference_and_only_it(
        a in reference(),
        b in reference(),
        cluster in "[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?",
    ) {
        let cluster = ClusterName::new(cluster);
        let named = parse_key(&key(&cluster, &a)).unwrap();
        prop_assert_eq!((&named.cluster, &named.reference, named.rejected), (&cluster, &a, false));
        let rejected = parse_key(&rejected_key(&cluster, &a)).unwrap();
        prop_assert_eq!((&rejected.cluster, &rejected.reference, rejected.rejected), (&cluster, &a, true));
        prop_assert_eq!(key(&cluster, &a) == key(&cluster, &b), a == b);
        prop_assert_ne!(key(&cluster, &a), rejected_key(&cluster, &b));
        prop_assert_eq!(rejected.sibling(), key(&cluster, &a));
        prop_assert_eq!(named.sibling(), rejected_key(&cluster, &a));
    }
}

#[test]
fn a_listed_mark_is_no_object_s_key_and_names_its_cluster() {
    let east = ClusterName::new("east");
    let mark = listed_key(&east);
    assert_eq!(listed_cluster(&mark), Some(east.clone()));
    assert!(parse_key(&mark).is_err());
    for object in every_kind_of_object() {
        let key = object_key(&east, &object);
        assert_eq!(listed_cluster(&key), None, "{key}");
    }
    assert_eq!(listed_cluster("/listed"), None);
}
