use super::*;
use crate::fixtures::*;
use crate::istio::{OutlierDetection, Resolution, TlsMode};
use crate::model::{ClusterInfo, Host, LocalityMode, ObjectKey, PolicyInfo, TrafficPolicy};
use crate::registry::{Delta, RegistryConfig};

fn build(deltas: impl IntoIterator<Item = Delta>) -> Registry {
    let mut r = Registry::new(RegistryConfig::default());
    for d in deltas {
        r.apply(d);
    }
    r
}

fn greeting_host() -> Host {
    Host::build("prod", "greeting", "global").unwrap()
}

/// greeting in `cluster` loses all its ready endpoints.
fn scaled_to_zero(cluster: &str) -> Delta {
    upsert(cluster, slice("sample", "greeting-1", "greeting", &[]))
}

/// The endpoint addresses of the greeting ServiceEntry in `cluster`.
fn addresses(r: &Registry, cluster: &str) -> Vec<String> {
    let se = render(r, cluster).unwrap().service_entry;
    se.spec.endpoints.into_iter().map(|e| e.address).collect()
}

fn render(r: &Registry, cluster: &str) -> Option<RenderedHost> {
    let service = r.get(&greeting_host())?;
    render_host(
        r,
        service,
        &ClusterName::new(cluster),
        &RenderOptions::default(),
    )
}

/// east and west run greeting; south only calls it. Every cluster has a gateway.
fn three_clusters() -> Vec<Delta> {
    let mut d = vec![cluster("east"), cluster("west"), cluster("south")];
    for (c, region, ip) in [
        ("east", "us-east-1", "203.0.113.1"),
        ("west", "us-west-2", "203.0.113.2"),
        ("south", "sa-east-1", "203.0.113.3"),
    ] {
        d.push(upsert(
            c,
            node("n1", region, &format!("{region}a"), "10.0.0.1"),
        ));
        d.push(upsert(c, gateway(&[ip])));
    }
    d.extend(app(
        "east",
        "sample",
        "greeting",
        "greeting",
        "prod",
        &[("http", 8080), ("grpc", 9090)],
        &[("n1", ""), ("n1", "")],
    ));
    d.extend(app(
        "west",
        "sample",
        "greeting",
        "greeting",
        "prod",
        &[("http", 8080), ("grpc", 9090)],
        &[("n1", "")],
    ));
    d
}

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
    pods.ports = [("http".to_owned(), 8081)].into();
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
    assert!(render_cluster(&r, &ClusterName::new("east"), &RenderOptions::default()).is_empty());
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
fn destination_rule_defaults_to_mtls_topology_and_outlier_detection() {
    let r = build(three_clusters());
    let dr = render(&r, "east").unwrap().destination_rule;
    assert_eq!(dr.metadata.name, "prod.greeting.global");
    assert_eq!(dr.spec.host, "prod.greeting.global");
    let tp = dr.spec.traffic_policy.unwrap();
    assert_eq!(tp.tls.unwrap().mode, TlsMode::IstioMutual);
    let lb = tp.load_balancer.unwrap().locality_lb_setting.unwrap();
    assert_eq!(lb.enabled, Some(true));
    assert!(lb.failover.is_empty() && lb.distribute.is_empty());
    assert_eq!(
        tp.outlier_detection,
        Some(RenderOptions::default().outlier_detection)
    );
}

fn with_policy(mode: LocalityMode, outlier: OutlierDetection) -> Registry {
    let mut d = three_clusters();
    d.push(upsert(
        "east",
        PolicyInfo {
            key: ObjectKey::new("sample", "greeting"),
            identity: "greeting".into(),
            env: Some("prod".into()),
            policy: TrafficPolicy { mode, outlier },
            created: None,
        },
    ));
    build(d)
}

#[test]
fn failover_policy_chains_regions_in_order() {
    let r = with_policy(
        LocalityMode::Failover(vec![
            "us-east-1".into(),
            "us-west-2".into(),
            "sa-east-1".into(),
        ]),
        OutlierDetection::default(),
    );
    let lb = render(&r, "south")
        .unwrap()
        .destination_rule
        .spec
        .traffic_policy
        .unwrap()
        .load_balancer
        .unwrap()
        .locality_lb_setting
        .unwrap();
    let pairs: Vec<_> = lb
        .failover
        .iter()
        .map(|f| (f.from.as_str(), f.to.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("us-east-1", "us-west-2"),
            ("us-west-2", "sa-east-1"),
            ("sa-east-1", "us-east-1")
        ]
    );
}

#[test]
fn distribute_policy_sets_weights_and_outlier_overrides_merge() {
    let r = with_policy(
        LocalityMode::Distribute(vec![("us-east-1".into(), 80), ("us-west-2".into(), 20)]),
        OutlierDetection {
            consecutive_5xx_errors: Some(2),
            base_ejection_time: Some("1m".into()),
            ..Default::default()
        },
    );
    let tp = render(&r, "east")
        .unwrap()
        .destination_rule
        .spec
        .traffic_policy
        .unwrap();
    let lb = tp.load_balancer.unwrap().locality_lb_setting.unwrap();
    assert_eq!(lb.distribute.len(), 1);
    assert_eq!(lb.distribute[0].from, "*");
    assert_eq!(lb.distribute[0].to.get("us-east-1/*"), Some(&80));
    assert_eq!(lb.distribute[0].to.get("us-west-2/*"), Some(&20));
    let od = tp.outlier_detection.unwrap();
    assert_eq!(od.consecutive_5xx_errors, Some(2));
    assert_eq!(od.base_ejection_time.as_deref(), Some("1m"));
    assert_eq!(
        od.interval.as_deref(),
        Some("5s"),
        "unset fields keep the default"
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
fn rendering_is_deterministic() {
    let mut d = three_clusters();
    let a = build(d.clone());
    d.reverse();
    let b = build(d);
    for c in ["east", "west", "south"] {
        let name = ClusterName::new(c);
        let opts = RenderOptions::default();
        assert_eq!(
            render_cluster(&a, &name, &opts),
            render_cluster(&b, &name, &opts)
        );
    }
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
