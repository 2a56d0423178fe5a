//! A host's life: made from a workload, its Service and endpoints; backed by the right
//! Services; changed, scaled to zero and withdrawn.

use super::*;

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

#[test]
fn equal_port_lists_are_held_once() {
    let target_ports = |mut s: crate::model::EndpointSliceInfo| {
        s.ports = std::collections::BTreeMap::from([("http".to_owned(), 9080)]).into();
        s
    };
    let mut deltas = vec![cluster("east")];
    for name in ["cart", "pay"] {
        let mut app = app(
            "east",
            "shop",
            name,
            name,
            "prod",
            &[("http", 8080)],
            &[("", "")],
        );
        if let Some(Delta::Upsert(_, crate::model::Object::EndpointSlice(s))) = app.pop() {
            app.push(upsert("east", target_ports(s)));
        }
        deltas.extend(app);
    }
    let r = registry(deltas);
    let backend = |identity: &str| {
        r.get(&host(&format!("prod.{identity}"))).unwrap().backends[&name("east")][0].clone()
    };
    let (cart, pay) = (backend("cart"), backend("pay"));
    assert_eq!(cart.ports, pay.ports);
    assert!(
        Arc::ptr_eq(&cart.ports, &pay.ports),
        "one copy of the Service ports"
    );
    let (a, b) = (
        &cart.endpoints[0].target_ports,
        &pay.endpoints[0].target_ports,
    );
    assert_eq!(a.get("http"), Some(9080));
    assert!(a.shares_with(b), "one copy of the target ports");
}

#[test]
fn a_service_with_several_slices_has_each_address_once() {
    let mut deltas = vec![cluster("east")];
    deltas.extend(greeting("east", &[("", ""), ("", "")]));
    // The slice rolled over: a second slice lists one of the first's addresses and one more.
    let first = slice("sample", "greeting-1", "greeting", &[("", ""), ("", "")]);
    let mut second = slice("sample", "greeting-2", "greeting", &[("", ""), ("", "")]);
    second.ready[0].address = first.ready[1].address.clone();
    let (kept, new) = (
        first.ready[1].address.clone(),
        second.ready[1].address.clone(),
    );
    deltas.push(upsert("east", second));
    let r = registry(deltas);
    let svc = r.get(&host("prod.greeting")).unwrap();
    let addresses: Vec<&str> = svc.backends[&name("east")][0]
        .endpoints
        .iter()
        .map(|ep| ep.address.as_str())
        .collect();
    let mut expected = vec![first.ready[0].address.as_str(), kept.as_str(), new.as_str()];
    expected.sort();
    assert_eq!(addresses, expected, "sorted, the shared address once");
}
