//! Where endpoints are and how clusters are reached: localities, gateway addresses and what
//! is reported when a gateway has none.

use super::*;

#[test]
fn locality_comes_from_slice_zone_node_labels_and_overrides() {
    let mut r = registry([
        cluster("east"),
        upsert("east", node("n1", "us-east-1", "us-east-1a", "10.0.0.1")),
        upsert("east", node("n2", "us-east-1", "us-east-1b", "10.0.0.2")),
    ]);
    for d in greeting(
        "east",
        &[("n1", ""), ("n2", "us-east-1b"), ("", "us-east-1c")],
    ) {
        r.apply(d);
    }
    let h = host("prod.greeting");
    let ready = r.get(&h).unwrap().ready_in(&name("east"));
    assert_eq!(
        ready,
        BTreeMap::from([
            (locality("us-east-1", "us-east-1a"), 1),
            (locality("us-east-1", "us-east-1b"), 1),
            // No node: the region most nodes are in.
            (locality("us-east-1", "us-east-1c"), 1),
        ])
    );
    // A node moving zone moves its endpoints and reports the host.
    let changes = r.apply(upsert(
        "east",
        node("n1", "us-east-1", "us-east-1d", "10.0.0.1"),
    ));
    assert!(changes.hosts.contains(&h));
    assert!(
        r.get(&h)
            .unwrap()
            .ready_in(&name("east"))
            .contains_key(&locality("us-east-1", "us-east-1d"))
    );
    // A region override on the cluster wins over node labels.
    r.apply(Delta::UpsertCluster(crate::model::ClusterInfo {
        region: Some("override".into()),
        ..crate::model::ClusterInfo::new("east")
    }));
    let ready = r.get(&h).unwrap().ready_in(&name("east"));
    assert!(
        ready
            .keys()
            .all(|l| l.region.as_deref() == Some("override")),
        "{ready:?}"
    );
}

#[test]
fn gateway_changes_report_every_host_of_the_cluster() {
    let mut deltas = vec![cluster("east")];
    deltas.extend(greeting("east", &[("", "a")]));
    deltas.extend(app(
        "east",
        "shop",
        "cart",
        "cart",
        "prod",
        &[("http", 80)],
        &[("", "a")],
    ));
    let mut r = registry(deltas);
    let changes = r.apply(upsert("east", gateway(&["203.0.113.1"])));
    assert_eq!(changes.hosts.len(), 2);
    assert_eq!(r.gateway_addresses(&name("east"))[0].address, "203.0.113.1");
    assert!(
        r.apply(upsert("east", gateway(&["203.0.113.1"])))
            .is_empty()
    );
}

#[test]
fn nodeport_gateway_falls_back_to_node_addresses() {
    let mut gw = gateway(&[]);
    gw.node_port = Some(31443);
    let r = registry([
        cluster("east"),
        upsert("east", gw),
        upsert("east", node("n2", "r", "b", "198.51.100.2")),
        upsert("east", node("n1", "r", "a", "198.51.100.1")),
    ]);
    let addrs: Vec<_> = r
        .gateway_addresses(&name("east"))
        .iter()
        .map(|g| format!("{}:{}", g.address, g.port))
        .collect();
    assert_eq!(addrs, ["198.51.100.1:31443", "198.51.100.2:31443"]);
}

#[test]
fn a_serving_cluster_without_gateway_address_is_reported() {
    let mut deltas = vec![cluster("east"), upsert("east", gateway(&[]))];
    deltas.extend(greeting("east", &[("", "a")]));
    let r = registry(deltas);
    let diags = r.diagnostics();
    assert!(
        diags
            .iter()
            .any(|d| d.object == "Service istio-system/istio-eastwestgateway"
                && d.message.contains("has no address")),
        "{diags:#?}"
    );
    assert!(
        diags.iter().any(|d| d.object == "east-west gateway"),
        "{diags:#?}"
    );
}
