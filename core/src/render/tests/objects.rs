//! Which clusters get a host's objects at all, and what every object carries: the same VIP
//! and ports everywhere, ownership labels, deterministic output.

use super::*;

#[test]
fn every_cluster_sees_the_same_vip_and_ports() {
    let r = build(three_clusters());
    let specs: Vec<_> = ["east", "west", "south"]
        .iter()
        .map(|c| render(&r, c).unwrap().service_entry.spec)
        .collect();
    for spec in &specs[1..] {
        assert_eq!(spec.addresses, specs[0].addresses);
        assert_eq!(spec.ports, specs[0].ports);
    }
}

#[test]
fn clusters_without_ready_endpoints_or_gateway_are_left_out() {
    // west scales to zero: south reaches only east.
    let mut d = three_clusters();
    d.push(scaled_to_zero("west"));
    let r = build(d);
    assert_eq!(addresses(&r, "south"), ["203.0.113.1"]);

    // west's gateway loses its address: nobody is sent there.
    let mut d = three_clusters();
    d.push(upsert("west", gateway(&[])));
    let r = build(d);
    assert!(addresses(&r, "east").iter().all(|a| a != "203.0.113.2"));
    assert_eq!(addresses(&r, "south"), ["203.0.113.1"]);
}

#[test]
fn nothing_is_rendered_without_a_ready_backend_anywhere() {
    let mut d = three_clusters();
    d.push(scaled_to_zero("east"));
    d.push(scaled_to_zero("west"));
    let r = build(d);
    for c in ["east", "west", "south"] {
        assert!(render(&r, c).is_none(), "{c}");
    }
    assert!(
        render_cluster(
            &r.full_view(),
            &ClusterName::new("east"),
            &RenderOptions::default()
        )
        .is_empty()
    );
}

#[test]
fn nothing_is_rendered_where_no_endpoint_is_reachable() {
    let mut d = vec![cluster("east"), cluster("south")];
    d.extend(greeting("east", &[("", "a")]));
    let r = build(d);
    assert!(render(&r, "east").is_some());
    assert!(
        render(&r, "south").is_none(),
        "east has no gateway, so south cannot reach it"
    );
}

#[test]
fn objects_carry_ownership_labels_and_host_annotation() {
    let r = build(three_clusters());
    let rendered = render(&r, "east").unwrap();
    for meta in [
        &rendered.service_entry.metadata,
        &rendered.destination_rule.metadata,
    ] {
        let labels = &meta.labels;
        assert_eq!(
            labels.get(MANAGED_BY_LABEL).map(String::as_str),
            Some(MANAGED_BY_VALUE)
        );
        assert_eq!(
            labels.get("federator.io/identity").map(String::as_str),
            Some("greeting")
        );
        assert_eq!(
            labels.get("federator.io/env").map(String::as_str),
            Some("prod")
        );
        assert_eq!(
            meta.annotations.get(HOST_ANNOTATION).map(String::as_str),
            Some("prod.greeting.global")
        );
    }
}

#[test]
fn rendering_is_deterministic() {
    let mut d = three_clusters();
    let a = build(d.clone());
    d.reverse();
    let b = build(d);
    for c in ["east", "west", "south"] {
        let name = ClusterName::new(c);
        let opts = RenderOptions::default();
        assert_eq!(
            render_cluster(&a.full_view(), &name, &opts),
            render_cluster(&b.full_view(), &name, &opts)
        );
    }
}
