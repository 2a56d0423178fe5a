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
