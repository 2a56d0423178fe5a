//! VIPs: exhaustion of the range, healing, and restoring a saved table.

use super::*;

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
fn adopting_the_stores_table_moves_vips_and_never_leaves_two_hosts_on_one() {
    let mut registry = Registry::new(RegistryConfig::default());
    registry.apply(upsert("east", workload("sample", "a", "a", "prod")));
    registry.apply(upsert("east", workload("sample", "c", "c", "prod")));
    let (a, c) = (host("prod.a"), host("prod.c"));
    assert!(registry.vip(&a).is_some());
    let x: std::net::IpAddr = "240.0.99.99".parse().unwrap();
    // A store that (wrongly) lists one address twice: the later entry wins, the other host
    // gets a new address, and the view shows exactly what the allocator holds.
    let (changes, errors) = registry.adopt_vips([(a.clone(), x), (c.clone(), x)]);
    assert!(errors.is_empty());
    assert!(changes.hosts.contains(&a) && changes.hosts.contains(&c));
    let view = registry.publish();
    let shown = |h: &Host| view.get(h).and_then(|s| s.vip);
    assert_eq!(shown(&c), Some(x));
    assert_ne!(shown(&a), Some(x));
    assert_eq!(shown(&a), registry.vip(&a));
    assert!(shown(&a).is_some());
    // Adopting what is already held changes nothing.
    let (again, _) = registry.adopt_vips([(c.clone(), x)]);
    assert!(again.is_empty());
}
