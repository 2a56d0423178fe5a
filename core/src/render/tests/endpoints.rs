//! ServiceEntry endpoints: local pods one by one, remote clusters through their gateways or
//! directly on a shared network, with localities, ports and networks.

use super::*;

#[test]
fn local_pods_one_by_one_and_remote_clusters_through_their_gateways() {
    let r = build(three_clusters());
    let se = render(&r, "east").unwrap().service_entry;
    assert_eq!(se.metadata.name, "prod.greeting.global");
    assert_eq!(se.metadata.namespace, "federator-sync");
    let spec = &se.spec;
    assert_eq!(spec.hosts, ["prod.greeting.global"]);
    assert_eq!(
        spec.addresses,
        [r.get(&greeting_host()).unwrap().vip.unwrap().to_string()]
    );
    let ports: Vec<_> = spec
        .ports
        .iter()
        .map(|p| (p.number, p.protocol.as_str(), p.name.as_str()))
        .collect();
    assert_eq!(ports, [(8080, "HTTP", "http"), (9090, "GRPC", "grpc")]);
    // Pod and gateway addresses are all IPs: Envoy gets them as they are (EDS).
    assert_eq!(spec.resolution, Some(Resolution::Static));
    assert_eq!(
        spec.endpoints.len(),
        3,
        "two pods of east, west's gateway once"
    );

    let east = &r.get(&greeting_host()).unwrap().backends[&ClusterName::new("east")][0];
    let pods: Vec<_> = east.endpoints.iter().map(|e| e.address.as_str()).collect();
    for (local, pod) in spec.endpoints[..2].iter().zip(pods) {
        assert_eq!(local.address, pod);
        assert_eq!(local.ports.get("http"), Some(&8080));
        assert_eq!(local.ports.get("grpc"), Some(&9090));
        assert_eq!(local.locality.as_deref(), Some("us-east-1/us-east-1a"));
        assert_eq!(local.network.as_deref(), Some("net-east"));
        assert_eq!(local.weight, None, "each pod counts once");
        assert_eq!(
            local
                .labels
                .get("security.istio.io/tlsMode")
                .map(String::as_str),
            Some("istio")
        );
    }

    let remote = &spec.endpoints[2];
    assert_eq!(remote.address, "203.0.113.2");
    assert_eq!(remote.ports.get("http"), Some(&15443));
    assert_eq!(remote.ports.get("grpc"), Some(&15443));
    assert_eq!(remote.locality.as_deref(), Some("us-west-2"));
    assert_eq!(remote.network.as_deref(), Some("net-west"));
    assert_eq!(remote.weight, Some(1));
    assert_eq!(
        remote
            .labels
            .get("federator.io/cluster")
            .map(String::as_str),
        Some("west")
    );
}

/// east: greeting on port 80, its pods listening on 8081, in two zones.
fn east_in_two_zones() -> Vec<Delta> {
    let mut d = vec![cluster("east")];
    d.push(upsert(
        "east",
        node("n1", "us-east-1", "us-east-1a", "10.0.0.1"),
    ));
    d.push(upsert(
        "east",
        node("n2", "us-east-1", "us-east-1b", "10.0.0.2"),
    ));
    d.extend(app(
        "east",
        "sample",
        "greeting",
        "greeting",
        "prod",
        &[("http", 80)],
        &[],
    ));
    let mut pods = slice(
        "sample",
        "greeting-1",
        "greeting",
        &[("n1", ""), ("n2", ""), ("n2", "")],
    );
    pods.ports = std::collections::BTreeMap::from([("http".to_owned(), 8081)]).into();
    d.push(upsert("east", pods));
    d
}

#[test]
fn each_pod_is_its_own_endpoint_in_its_zone_on_its_target_port() {
    let r = build(east_in_two_zones());
    let se = render(&r, "east").unwrap().service_entry;
    let got: Vec<_> = se
        .spec
        .endpoints
        .iter()
        .map(|e| (e.locality.clone().unwrap(), e.ports["http"]))
        .collect();
    let mut want = vec![
        ("us-east-1/us-east-1a".to_owned(), 8081),
        ("us-east-1/us-east-1b".to_owned(), 8081),
        ("us-east-1/us-east-1b".to_owned(), 8081),
    ];
    let mut sorted = got.clone();
    sorted.sort();
    want.sort();
    assert_eq!(sorted, want);
    let distinct: std::collections::BTreeSet<_> =
        se.spec.endpoints.iter().map(|e| &e.address).collect();
    assert_eq!(distinct.len(), 3, "one endpoint per pod address");
}

#[test]
fn a_gateway_address_is_listed_once_weighted_by_all_ready_pods_behind_it() {
    let mut d = east_in_two_zones();
    d.push(upsert("east", gateway(&["203.0.113.1"])));
    d.push(cluster("south"));
    let r = build(d);
    let se = render(&r, "south").unwrap().service_entry;
    assert_eq!(se.spec.endpoints.len(), 1, "{:#?}", se.spec.endpoints);
    let gw = &se.spec.endpoints[0];
    assert_eq!(gw.address, "203.0.113.1");
    assert_eq!(gw.locality.as_deref(), Some("us-east-1"));
    assert_eq!(gw.weight, Some(3));

    // A zone override on the Secret gives the gateway that zone.
    let mut d = east_in_two_zones();
    d.push(upsert("east", gateway(&["203.0.113.1"])));
    d.push(Delta::UpsertCluster(ClusterInfo {
        zone: Some("us-east-1c".into()),
        network: Some("net-east".into()),
        ..ClusterInfo::new("east")
    }));
    d.push(cluster("south"));
    let r = build(d);
    let se = render(&r, "south").unwrap().service_entry;
    assert_eq!(
        se.spec.endpoints[0].locality.as_deref(),
        Some("us-east-1/us-east-1c")
    );
}

#[test]
fn the_network_is_istios_label_unless_the_secret_overrides_it() {
    let labelled = |network: &str| {
        upsert(
            "east",
            crate::model::MeshNamespaceInfo {
                name: "istio-system".into(),
                network: Some(network.into()),
            },
        )
    };
    let network = |r: &Registry| {
        render(r, "east").unwrap().service_entry.spec.endpoints[0]
            .network
            .clone()
    };
    let east = ClusterName::new("east");
    // No override: Istio's label.
    let mut d = vec![Delta::UpsertCluster(ClusterInfo::new("east"))];
    d.extend(greeting("east", &[("", "a")]));
    let mut r = build(d.clone());
    let changes = r.apply(labelled("mesh-east"));
    assert!(changes.hosts.contains(&greeting_host()));
    assert_eq!(network(&r).as_deref(), Some("mesh-east"));
    assert!(r.cluster_findings(&east).is_empty());
    // The Secret's annotation wins, and the disagreement is reported.
    r.apply(Delta::UpsertCluster(ClusterInfo {
        network: Some("secret-east".into()),
        ..ClusterInfo::new("east")
    }));
    assert_eq!(network(&r).as_deref(), Some("secret-east"));
    assert_eq!(
        r.cluster_findings(&east),
        [crate::registry::ClusterFinding::NetworkMismatch {
            namespace: "istio-system".into(),
            labelled: "mesh-east".into(),
            configured: "secret-east".into(),
        }]
    );
    // Agreeing names: nothing to report.
    r.apply(labelled("secret-east"));
    assert!(r.cluster_findings(&east).is_empty());
}

#[test]
fn a_cluster_without_local_backends_gets_static_gateway_endpoints() {
    let r = build(three_clusters());
    let se = render(&r, "south").unwrap().service_entry;
    assert_eq!(se.spec.resolution, Some(Resolution::Static));
    assert_eq!(addresses(&r, "south"), ["203.0.113.1", "203.0.113.2"]);
}

#[test]
fn network_defaults_to_the_cluster_name() {
    let mut d = vec![Delta::UpsertCluster(ClusterInfo::new("east"))];
    d.extend(greeting("east", &[("", "a")]));
    let r = build(d);
    let se = render(&r, "east").unwrap().service_entry;
    assert_eq!(
        se.spec.endpoints[0].network.as_deref(),
        Some("east"),
        "no label, no override"
    );
    assert_eq!(
        se.spec.endpoints[0].locality, None,
        "no region known: no locality"
    );
}

#[test]
fn clusters_on_one_network_reach_each_others_pods_directly_never_a_gateway() {
    let same_network = |name: &str| {
        Delta::UpsertCluster(ClusterInfo {
            network: Some("flat".into()),
            ..ClusterInfo::new(name)
        })
    };
    let mut d = vec![same_network("east"), same_network("east2")];
    d.push(upsert("east2", gateway(&["203.0.113.9"])));
    d.extend(greeting("east", &[("", "a")]));
    d.extend(greeting("east2", &[("", "b")]));
    let r = build(d);
    let se = render(&r, "east").unwrap().service_entry;
    let east2 = &r.get(&greeting_host()).unwrap().backends[&ClusterName::new("east2")][0];
    assert_eq!(se.spec.endpoints.len(), 2);
    assert_eq!(se.spec.endpoints[1].address, east2.endpoints[0].address);
    assert_eq!(se.spec.endpoints[1].ports.get("http"), Some(&8080));
    assert_eq!(
        se.spec.endpoints[1]
            .labels
            .get("federator.io/cluster")
            .map(String::as_str),
        Some("east2")
    );
    assert!(se.spec.endpoints.iter().all(|e| e.address != "203.0.113.9"));
}
