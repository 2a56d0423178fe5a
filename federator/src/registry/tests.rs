use std::collections::BTreeMap;

use super::*;
use crate::fixtures::*;
use crate::model::{LocalityMode, ObjectKey, PolicyInfo, TrafficPolicy, WorkloadKind};

fn host(s: &str) -> Host {
    let mut parts = s.splitn(2, '.');
    let env = parts.next().unwrap();
    let identity = parts.next().unwrap().trim_end_matches(".global");
    Host::build(env, identity, "global").unwrap()
}

fn registry(deltas: impl IntoIterator<Item = Delta>) -> Registry {
    let mut r = Registry::new(RegistryConfig::default());
    for d in deltas {
        r.apply(d);
    }
    r
}

fn name(s: &str) -> ClusterName {
    ClusterName::new(s)
}

fn locality(region: &str, zone: &str) -> crate::model::Locality {
    crate::model::Locality {
        region: (!region.is_empty()).then(|| region.to_owned()),
        zone: (!zone.is_empty()).then(|| zone.to_owned()),
    }
}

fn remove(cluster: &str, object: ObjectRef) -> Delta {
    Delta::Remove(name(cluster), object)
}

#[test]
fn a_workload_with_service_and_endpoints_becomes_a_global_host() {
    let mut r = registry([
        cluster("east"),
        upsert("east", node("n1", "us-east-1", "us-east-1a", "10.0.0.1")),
    ]);
    let mut changes = ChangeSet::default();
    for d in greeting("east", &[("n1", "us-east-1a"), ("n1", "us-east-1a")]) {
        changes.extend(r.apply(d));
    }
    let h = host("prod.greeting");
    assert_eq!(changes.hosts, BTreeSet::from([h.clone()]));
    let svc = r.get(&h).unwrap();
    assert_eq!(
        (svc.identity.as_str(), svc.env.as_str()),
        ("greeting", "prod")
    );
    assert_eq!(
        svc.ports,
        vec![crate::model::MeshPort::new(
            "http",
            8080,
            crate::model::Protocol::Http
        )]
    );
    assert!(svc.vip.is_some());
    let backends = &svc.backends[&name("east")];
    assert_eq!(backends.len(), 1);
    assert_eq!(backends[0].service, ObjectKey::new("sample", "greeting"));
    assert_eq!(
        svc.ready_in(&name("east")),
        BTreeMap::from([(locality("us-east-1", "us-east-1a"), 2)])
    );
    assert_eq!(backends[0].endpoints.len(), 2);
    assert!(svc.is_serving());
}

#[test]
fn the_order_of_objects_does_not_matter() {
    let mut deltas = vec![
        cluster("east"),
        upsert("east", node("n1", "r", "z", "10.0.0.1")),
    ];
    deltas.extend(greeting("east", &[("n1", "z")]));
    let forward = registry(deltas.clone());
    deltas.reverse();
    let backward = registry(deltas);
    let strip = |r: &Registry| {
        r.services()
            .into_iter()
            .cloned()
            .map(|mut s| {
                s.vip = None;
                s
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&forward), strip(&backward));
    assert_eq!(forward.len(), 1);
}

#[test]
fn scaling_to_zero_keeps_the_host_but_stops_serving_it() {
    let mut r = registry(greeting("east", &[("", "a")]));
    let h = host("prod.greeting");
    let vip = r.get(&h).unwrap().vip;
    let changes = r.apply(upsert(
        "east",
        slice("sample", "greeting-1", "greeting", &[]),
    ));
    assert!(changes.hosts.contains(&h));
    let svc = r.get(&h).unwrap();
    assert!(!svc.is_serving());
    assert_eq!(svc.vip, vip, "the VIP survives a scale to zero");
}

#[test]
fn deleting_the_last_workload_removes_the_host_and_frees_its_vip() {
    let mut r = registry(greeting("east", &[("", "a")]));
    let h = host("prod.greeting");
    let changes = r.apply(remove(
        "east",
        ObjectRef::Workload(
            WorkloadKind::Deployment,
            ObjectKey::new("sample", "greeting"),
        ),
    ));
    assert!(changes.hosts.contains(&h));
    assert!(r.get(&h).is_none());
    assert!(r.vip_table().is_empty());
}

#[test]
fn a_host_spans_clusters_and_disagreeing_ports_are_reported() {
    let mut deltas = vec![cluster("east"), cluster("west"), cluster("south")];
    deltas.extend(greeting("east", &[("", "a")]));
    deltas.extend(greeting("west", &[("", "b")]));
    let mut r = registry(deltas);
    let h = host("prod.greeting");
    assert_eq!(r.get(&h).unwrap().backends.len(), 2);

    // An older Service in south with other ports wins; the others are left out.
    let odd = service("sample", "greeting").port("grpc", 9090).created(1);
    r.apply(upsert(
        "south",
        workload("sample", "greeting", "greeting", "prod"),
    ));
    r.apply(upsert("south", odd));
    r.apply(upsert(
        "south",
        slice("sample", "greeting-1", "greeting", &[("", "c")]),
    ));
    let svc = r.get(&h).unwrap();
    assert_eq!(svc.ports[0].number, 9090);
    assert_eq!(svc.backends.keys().collect::<Vec<_>>(), [&name("south")]);
    assert_eq!(svc.rejected.len(), 2);
    let diags = r.diagnostics();
    let conflicts: Vec<_> = diags
        .iter()
        .filter(|d| d.message.contains("conflict"))
        .collect();
    assert_eq!(conflicts.len(), 2, "{diags:#?}");
    assert_eq!(conflicts[0].cluster, Some(name("east")));
    assert_eq!(conflicts[0].object, "Service sample/greeting");
    assert!(conflicts[0].message.contains("9090"), "{}", conflicts[0]);
}

#[test]
fn headless_service_is_used_only_without_a_regular_one() {
    let mut r = registry(greeting("east", &[("", "a")]));
    let h = host("prod.greeting");
    let headless = service("sample", "greeting-headless")
        .selector(&[("app", "greeting")])
        .port("http", 8080)
        .headless();
    r.apply(upsert("east", headless));
    let services: Vec<_> = r.get(&h).unwrap().backends[&name("east")]
        .iter()
        .map(|b| b.service.name.clone())
        .collect();
    assert_eq!(services, ["greeting"]);
    r.apply(remove(
        "east",
        ObjectRef::Service(ObjectKey::new("sample", "greeting")),
    ));
    let services: Vec<_> = r.get(&h).unwrap().backends[&name("east")]
        .iter()
        .map(|b| b.service.name.clone())
        .collect();
    assert_eq!(services, ["greeting-headless"]);
}

#[test]
fn a_service_that_selects_nothing_of_ours_changes_nothing() {
    let mut r = registry(greeting("east", &[("", "a")]));
    let changes = r.apply(upsert("east", service("sample", "other").port("http", 80)));
    assert!(changes.is_empty(), "{changes:?}");
    let changes = r.apply(upsert(
        "east",
        slice("sample", "other-1", "other", &[("", "a")]),
    ));
    assert!(changes.is_empty(), "{changes:?}");
}

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

fn gtp(
    name: &str,
    identity: &str,
    env: Option<&str>,
    mode: LocalityMode,
    created: i64,
) -> PolicyInfo {
    PolicyInfo {
        key: ObjectKey::new("sample", name),
        identity: identity.into(),
        env: env.map(Into::into),
        policy: TrafficPolicy {
            mode,
            ..Default::default()
        },
        created: Some(created),
    }
}

#[test]
fn policies_apply_by_identity_and_env_with_clear_precedence() {
    let mut r = registry(greeting("east", &[("", "a")]));
    let h = host("prod.greeting");
    let any_env = gtp(
        "all",
        "greeting",
        None,
        LocalityMode::Failover(vec!["a".into(), "b".into()]),
        1,
    );
    let changes = r.apply(upsert("east", any_env));
    assert!(changes.hosts.contains(&h));
    assert_eq!(
        r.get(&h).unwrap().policy.as_ref().unwrap().info.key.name,
        "all"
    );

    // One naming the env wins even though it is newer; the other is reported as ignored.
    let prod = gtp("prod", "greeting", Some("prod"), LocalityMode::Topology, 5);
    r.apply(upsert("west", prod));
    let applied = r.get(&h).unwrap().policy.clone().unwrap();
    assert_eq!(
        (applied.cluster.as_str(), applied.info.key.name.as_str()),
        ("west", "prod")
    );
    let diags = r.diagnostics();
    assert!(
        diags
            .iter()
            .any(|d| d.object == "GlobalTrafficPolicy sample/all" && d.message.contains("ignored"))
    );

    // A policy for another env does not apply.
    r.apply(upsert(
        "east",
        gtp(
            "stage",
            "greeting",
            Some("stage"),
            LocalityMode::Topology,
            0,
        ),
    ));
    assert_eq!(
        r.get(&h).unwrap().policy.as_ref().unwrap().info.key.name,
        "prod"
    );

    r.apply(remove(
        "west",
        ObjectRef::Policy(ObjectKey::new("sample", "prod")),
    ));
    assert_eq!(
        r.get(&h).unwrap().policy.as_ref().unwrap().info.key.name,
        "all"
    );
}

#[test]
fn removing_a_cluster_withdraws_its_backends() {
    let mut deltas = vec![cluster("east"), cluster("west")];
    deltas.extend(greeting("east", &[("", "a")]));
    deltas.extend(greeting("west", &[("", "b")]));
    let mut r = registry(deltas);
    let h = host("prod.greeting");
    let changes = r.apply(Delta::RemoveCluster(name("west")));
    assert!(changes.clusters.contains(&name("west")));
    assert!(changes.hosts.contains(&h));
    assert_eq!(
        r.get(&h).unwrap().backends.keys().collect::<Vec<_>>(),
        [&name("east")]
    );
    assert!(r.cluster(&name("west")).is_none());
}

#[test]
fn relabelling_a_workload_keeps_its_host_and_vip() {
    let mut r = registry(greeting("east", &[("", "a")]));
    let h = host("prod.greeting");
    let vip = r.get(&h).unwrap().vip;
    let mut w = workload("sample", "greeting", "greeting", "prod");
    w.pod_labels.insert("version".into(), "v2".into());
    r.apply(upsert("east", w));
    assert_eq!(r.get(&h).unwrap().vip, vip);
    // Changing its env moves it to another host.
    r.apply(upsert(
        "east",
        workload("sample", "greeting", "greeting", "stage"),
    ));
    assert!(r.get(&h).is_none());
    assert!(r.get(&host("stage.greeting")).is_some());
}

#[test]
fn vip_exhaustion_fails_only_new_hosts_and_heals() {
    let config = RegistryConfig {
        vip_range: "10.9.0.0/30".parse().unwrap(),
        ..RegistryConfig::default()
    };
    let mut r = Registry::new(config);
    for id in ["a", "b", "c"] {
        for d in app("east", "ns", id, id, "prod", &[("http", 80)], &[("", "z")]) {
            r.apply(d);
        }
    }
    let vips: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|i| r.get(&host(&format!("prod.{i}"))).unwrap().vip)
        .collect();
    assert!(vips[0].is_some() && vips[1].is_some());
    assert_eq!(vips[2], None);
    let diags = r.diagnostics();
    assert!(
        diags
            .iter()
            .any(|d| d.object == "host prod.c.global" && d.message.contains("no free VIP")),
        "{diags:#?}"
    );
    let changes = r.apply(remove(
        "east",
        ObjectRef::Workload(WorkloadKind::Deployment, ObjectKey::new("ns", "a")),
    ));
    assert!(
        changes.hosts.contains(&host("prod.c")),
        "the waiting host is reported once it has a VIP"
    );
    assert!(r.get(&host("prod.c")).unwrap().vip.is_some());
}

#[test]
fn saved_vips_are_restored_and_unused_ones_pruned() {
    let mut first = registry(greeting("east", &[("", "a")]));
    first.apply(upsert("east", workload("sample", "gone", "gone", "prod")));
    let table = first.vip_table();
    let mut second = Registry::new(RegistryConfig::default());
    assert!(second.restore_vips(table.clone()).is_empty());
    for d in greeting("east", &[("", "a")]) {
        second.apply(d);
    }
    let h = host("prod.greeting");
    assert_eq!(second.get(&h).unwrap().vip, Some(table[&h]));
    second.prune_vips();
    assert_eq!(second.vip_table().keys().collect::<Vec<_>>(), [&h]);
}

#[test]
fn workload_whose_host_is_invalid_is_reported() {
    let long = "a".repeat(63);
    let config = RegistryConfig {
        host_suffix: format!("{long}.{long}.{long}"),
        ..RegistryConfig::default()
    };
    let mut r = Registry::new(config);
    r.apply(upsert("east", workload("ns", "w", &long, "prod")));
    assert!(r.is_empty());
    let findings = r.cluster_findings(&name("east"));
    assert!(
        matches!(&findings[..], [ClusterFinding::InvalidHost { workload, .. }] if workload.name == "w"),
        "{findings:?}"
    );
    let diags = r.diagnostics();
    assert!(
        diags
            .iter()
            .any(|d| d.object == "Deployment ns/w" && d.message.starts_with("not exported")),
        "{diags:#?}"
    );
}

#[test]
fn relabelling_pods_out_of_their_service_drops_the_backend() {
    let mut r = registry(greeting("east", &[("", "a")]));
    let h = host("prod.greeting");
    let mut w = workload("sample", "greeting", "greeting", "prod");
    w.pod_labels.insert("app".into(), "renamed".into());
    let changes = r.apply(upsert("east", w));
    assert!(changes.hosts.contains(&h));
    assert!(r.get(&h).unwrap().backends.is_empty());
    assert!(!r.get(&h).unwrap().is_serving());
}

#[test]
fn a_policy_that_changes_identity_leaves_the_old_one() {
    let mut r = registry(greeting("east", &[("", "a")]));
    let h = host("prod.greeting");
    r.apply(upsert(
        "east",
        gtp("p", "greeting", None, LocalityMode::Topology, 1),
    ));
    assert!(r.get(&h).unwrap().policy.is_some());
    let changes = r.apply(upsert(
        "east",
        gtp("p", "other", None, LocalityMode::Topology, 1),
    ));
    assert!(changes.hosts.contains(&h));
    assert!(r.get(&h).unwrap().policy.is_none());
}

#[test]
fn an_upsert_or_remove_sent_again_changes_nothing() {
    // The watch tracker sends a step again when its task was aborted before committing it.
    let mut r = registry([cluster("east")]);
    let mut deltas = vec![
        upsert("east", node("n1", "us-east-1", "us-east-1a", "10.0.0.1")),
        upsert("east", gateway(&["192.0.2.1"])),
    ];
    deltas.extend(greeting("east", &[("n1", "us-east-1a")]));
    for d in &deltas {
        r.apply(d.clone());
        assert!(r.apply(d.clone()).is_empty(), "{d:?} again");
    }
    assert!(r.get(&host("prod.greeting")).is_some());
    for d in deltas.iter().rev() {
        let Delta::Upsert(cluster, object) = d else {
            continue;
        };
        let remove = Delta::Remove(cluster.clone(), object.reference());
        r.apply(remove.clone());
        assert!(r.apply(remove).is_empty(), "{d:?} removed again");
    }
    assert!(r.get(&host("prod.greeting")).is_none());
}
