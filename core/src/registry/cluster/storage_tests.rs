//! How the cluster's objects are stored: what they share.

use super::ClusterState;
use crate::fixtures::slice;
use crate::model::{ClusterInfo, ClusterName, ObjectKey};
use crate::registry::interner::Interner;

#[test]
fn endpoints_on_one_node_share_its_name() {
    // Longer than a `SmolStr` holds inline, as cloud node names are.
    let node = "ip-10-0-1-23.us-east-2.compute.internal";
    let mut state = ClusterState::new(ClusterInfo::new(ClusterName::new("east")), true);
    for name in ["a", "b"] {
        state.upsert_slice(
            slice("shop", name, name, &[(node, "us-east-2a")]),
            &mut Interner::default(),
        );
    }
    let names: Vec<&str> = ["a", "b"]
        .iter()
        .map(|name| {
            let stored = state.slices.get(&ObjectKey::new("shop", name)).unwrap();
            let (_, placement) = stored.endpoints().next().unwrap();
            placement.node.as_deref().unwrap()
        })
        .collect();
    assert_eq!(names, [node, node]);
    assert_eq!(
        names[0].as_ptr(),
        names[1].as_ptr(),
        "one copy of the node's name"
    );
}

mod slice_indexes {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::super::{ClusterState, Id, pair_hash};
    use crate::fixtures::slice;
    use crate::model::{ClusterInfo, ClusterName, ObjectKey, SmolStr};
    use crate::registry::interner::Interner;

    /// A slice (by number) set to a Service and endpoints (node, address) on these nodes, or
    /// removed.
    type Step = (u8, Option<(u8, Vec<(u8, u8)>)>);

    fn step() -> impl Strategy<Value = Step> {
        // Few slices, Services, nodes and addresses: nodes named twice in one slice, and one
        // address listed twice on two nodes.
        let endpoints = proptest::collection::vec((0u8..3, 0u8..3), 0..4);
        (0u8..4, proptest::option::weighted(0.7, (0u8..2, endpoints)))
    }

    proptest! {
        /// The indexes by Service and by node name exactly the stored slices, whatever
        /// slices come, move to another Service or node, and go.
        #[test]
        fn indexes_match_the_stored_slices(steps in proptest::collection::vec(step(), 1..40)) {
            let mut state = ClusterState::new(ClusterInfo::new(ClusterName::new("east")), true);
            for (n, change) in &steps {
                let name = format!("slice-{n}");
                match change {
                    Some((service, nodes)) => {
                        let names: Vec<String> =
                            nodes.iter().map(|(n, _)| format!("node-{n}")).collect();
                        let ready: Vec<(&str, &str)> =
                            names.iter().map(|n| (n.as_str(), "zone-a")).collect();
                        let mut slice = slice("shop", &name, &format!("svc-{service}"), &ready);
                        for (ep, (_, address)) in slice.ready.iter_mut().zip(nodes) {
                            ep.address = format!("10.0.0.{address}").into();
                        }
                        state.upsert_slice(slice, &mut Interner::default());
                    }
                    None => {
                        state.remove_slice(&ObjectKey::new("shop", name));
                    }
                }
                let mut by_service: BTreeMap<u64, BTreeSet<Id>> = BTreeMap::new();
                let mut by_node: BTreeMap<SmolStr, BTreeSet<Id>> = BTreeMap::new();
                for (id, stored) in state.slices.iter() {
                    let service = pair_hash(&stored.key.namespace, &stored.service);
                    by_service.entry(service).or_default().insert(id);
                    for node in stored.endpoints().filter_map(|(_, p)| p.node.clone()) {
                        by_node.entry(node).or_default().insert(id);
                    }
                }
                let indexed_services: BTreeMap<u64, BTreeSet<Id>> = state
                    .slices_by_service
                    .iter()
                    .map(|(k, ids)| (*k, ids.iter().copied().collect()))
                    .collect();
                let indexed_nodes: BTreeMap<SmolStr, BTreeSet<Id>> = state
                    .slices_by_node
                    .iter()
                    .map(|(k, ids)| (k.clone(), ids.clone()))
                    .collect();
                prop_assert_eq!(indexed_services, by_service);
                prop_assert_eq!(indexed_nodes, by_node);
            }
        }
    }
}

#[test]
fn a_removed_workload_leaves_its_host_before_its_id_is_reused() {
    use crate::fixtures::workload;
    use crate::model::Host;

    let mut state = ClusterState::new(ClusterInfo::new(ClusterName::new("east")), true);
    let cart = workload("shop", "cart", "cart", "prod");
    let host = cart.host("global").unwrap();
    let id = (cart.kind, cart.key.clone());
    state.upsert_workload(cart);
    state.link_host(&host, &id);
    assert_eq!(state.host_workloads(&host).count(), 1);

    state.remove_workload(&id, Some(&host));
    assert!(!state.by_host.contains(&host), "the host goes with it");
    // The next workload takes the freed id; it must not appear under the old host.
    let other = workload("shop", "pay", "pay", "prod");
    let other_host: Host = other.host("global").unwrap();
    let other_id = (other.kind, other.key.clone());
    state.upsert_workload(other);
    state.link_host(&other_host, &other_id);
    assert_eq!(state.host_workloads(&host).count(), 0);
    let names: Vec<&str> = state
        .host_workloads(&other_host)
        .map(|w| w.key.name.as_str())
        .collect();
    assert_eq!(names, ["pay"]);
}

#[test]
fn backends_share_their_only_slice_s_endpoints_and_follow_its_nodes() {
    use std::sync::Arc;

    use crate::fixtures::{node, service, workload};

    let mut state = ClusterState::new(ClusterInfo::new(ClusterName::new("east")), true);
    let mut localities = Interner::default();
    let cart = workload("shop", "cart", "cart", "prod");
    let host = cart.host("global").unwrap();
    let id = (cart.kind, cart.key.clone());
    state.upsert_workload(cart);
    state.link_host(&host, &id);
    state.upsert_service(service("shop", "cart").port("http", 80));
    state.upsert_slice(
        slice("shop", "cart-1", "cart", &[("n1", ""), ("n2", "")]),
        &mut localities,
    );
    let stored = |state: &ClusterState| {
        let key = ObjectKey::new("shop", "cart-1");
        Arc::clone(state.slices.get(&key).unwrap().shared_endpoints())
    };
    let backends = state.compute_backends(&host, &mut localities);
    assert!(Arc::ptr_eq(&backends[0].endpoints, &stored(&state)));
    assert!(
        backends[0]
            .endpoints
            .iter()
            .all(|ep| ep.locality.zone.is_none())
    );

    // A node's labels arrive after the slice: its endpoint is placed again, and the slice
    // keeps the new list for its backends to share.
    state.upsert_node(node("n1", "us-east-1", "us-east-1a", "10.0.0.1"));
    let backends = state.compute_backends(&host, &mut localities);
    let zones: Vec<Option<&str>> = backends[0]
        .endpoints
        .iter()
        .map(|ep| ep.locality.zone.as_deref())
        .collect();
    assert!(zones.contains(&Some("us-east-1a")) && zones.contains(&None));
    assert!(Arc::ptr_eq(&backends[0].endpoints, &stored(&state)));
}
