//! How the cluster's objects are stored: what they share.

use super::ClusterState;
use crate::fixtures::slice;
use crate::model::{ClusterInfo, ClusterName, ObjectKey};

#[test]
fn endpoints_on_one_node_share_its_name() {
    // Longer than a `SmolStr` holds inline, as cloud node names are.
    let node = "ip-10-0-1-23.us-east-2.compute.internal";
    let mut state = ClusterState::new(ClusterInfo::new(ClusterName::new("east")), true);
    for name in ["a", "b"] {
        state.upsert_slice(slice("shop", name, name, &[(node, "us-east-2a")]));
    }
    let names: Vec<&str> = ["a", "b"]
        .iter()
        .map(|name| {
            let stored = state.slices.by_key(&ObjectKey::new("shop", name)).unwrap();
            stored.ready[0].node.as_deref().unwrap()
        })
        .collect();
    assert_eq!(names, [node, node]);
    assert_eq!(
        names[0].as_ptr(),
        names[1].as_ptr(),
        "one copy of the node's name"
    );
}
