//! Quota and spelling rules, whatever the order objects arrive in.

use super::*;
use crate::fixtures::*;
use crate::model::{ObjectKey, ObjectRef, WorkloadKind};
use crate::registry::{ClusterFinding, Delta, RegistryConfig};

fn capped(cap: usize) -> Registry {
    Registry::new(RegistryConfig {
        max_hosts_per_cluster: cap,
        ..RegistryConfig::default()
    })
}

fn apply(r: &mut Registry, deltas: impl IntoIterator<Item = Delta>) {
    for d in deltas {
        r.apply(d);
    }
}

fn hosts(r: &Registry) -> Vec<String> {
    r.services().iter().map(|s| s.host.to_string()).collect()
}

fn remove_workload(cluster: &str, ns: &str, name: &str) -> Delta {
    Delta::Remove(
        ClusterName::new(cluster),
        ObjectRef::Workload(WorkloadKind::Deployment, ObjectKey::new(ns, name)),
    )
}

/// The clusters whose backends `prod.payments.global` exports.
fn payments_exporters(r: &Registry) -> Vec<String> {
    let host = Host::build("prod", "payments", "global").unwrap();
    r.get(&host)
        .map(|s| s.backends.keys().map(ToString::to_string).collect())
        .unwrap_or_default()
}

fn app_of(cluster: &str, name: &str, identity: &str, env: &str) -> Vec<Delta> {
    app(
        cluster,
        "ns",
        name,
        identity,
        env,
        &[("http", 80)],
        &[("n1", "z1")],
    )
}

/// `deltas` with their workload created at `created`.
fn aged(deltas: Vec<Delta>, created: i64) -> Vec<Delta> {
    deltas
        .into_iter()
        .map(|d| match d {
            Delta::Upsert(c, crate::model::Object::Workload(mut w)) => {
                w.created = Some(created);
                Delta::Upsert(c, crate::model::Object::Workload(w))
            }
            other => other,
        })
        .collect()
}

#[test]
fn a_cluster_past_its_quota_holds_new_hosts_and_takes_nothing_from_others() {
    let mut r = capped(2);
    apply(&mut r, [cluster("west"), cluster("runaway")]);
    apply(&mut r, app_of("west", "shared", "shared", "prod"));
    apply(&mut r, app_of("west", "w1", "w1", "prod"));
    let west_before = r
        .get(&Host::build("prod", "shared", "global").unwrap())
        .cloned();
    for i in 0..5 {
        apply(
            &mut r,
            app_of("runaway", &format!("r{i}"), &format!("r{i}"), "prod"),
        );
    }
    // runaway also has the shared host: an existing host of another cluster.
    apply(&mut r, app_of("runaway", "shared", "shared", "prod"));
    assert_eq!(
        r.hosts_over_quota(&ClusterName::new("runaway")),
        4,
        "{:?}",
        hosts(&r)
    );
    assert_eq!(r.hosts_over_quota(&ClusterName::new("west")), 0);
    assert_eq!(
        hosts(&r),
        [
            "prod.r0.global",
            "prod.r1.global",
            "prod.shared.global",
            "prod.w1.global"
        ]
    );
    // West's host is as before: runaway's backends for it are held (it is a third host).
    assert_eq!(
        r.get(&Host::build("prod", "shared", "global").unwrap())
            .cloned(),
        west_before
    );
    assert!(
        r.diagnostics().iter().any(|d| d.object == "host quota"
            && d.cluster.as_ref().is_some_and(|c| c.as_str() == "runaway"))
    );
    // Room again: the first held workload (by kind, namespace, name) gets in.
    r.apply(remove_workload("runaway", "ns", "r0"));
    assert_eq!(r.hosts_over_quota(&ClusterName::new("runaway")), 3);
    assert!(
        hosts(&r).contains(&"prod.r2.global".to_owned()),
        "{:?}",
        hosts(&r)
    );
}

#[test]
fn two_spellings_of_one_host_are_never_merged_and_lower_case_wins_in_any_order() {
    let lower = app_of("east", "pay-a", "payments", "prod");
    let upper = app_of("west", "pay-b", "Payments", "prod");
    for order in [
        [lower.clone(), upper.clone()],
        [upper.clone(), lower.clone()],
    ] {
        let mut r = Registry::new(RegistryConfig::default());
        apply(&mut r, [cluster("east"), cluster("west")]);
        for deltas in order {
            apply(&mut r, deltas);
        }
        let clusters = payments_exporters(&r);
        assert_eq!(clusters, ["east"]);
        let findings = r.cluster_findings(&ClusterName::new("west"));
        assert!(
            matches!(&findings[..], [ClusterFinding::SpellingConflict { spelling, exported, .. }]
                if spelling == "prod.Payments" && exported.is_empty()),
            "{findings:?}"
        );
        assert!(r.cluster_findings(&ClusterName::new("east")).is_empty());
    }
}

#[test]
fn when_the_exported_spelling_goes_the_next_one_takes_over() {
    let mut r = Registry::new(RegistryConfig::default());
    apply(&mut r, [cluster("east"), cluster("west")]);
    apply(&mut r, app_of("west", "pay-b", "Payments", "prod"));
    apply(&mut r, app_of("east", "pay-a", "payments", "prod"));
    r.apply(remove_workload("east", "ns", "pay-a"));
    let clusters = payments_exporters(&r);
    assert_eq!(clusters, ["west"]);
    assert!(r.cluster_findings(&ClusterName::new("west")).is_empty());
    r.apply(remove_workload("west", "ns", "pay-b"));
    assert!(r.is_empty());
}

#[test]
fn the_older_spelling_keeps_its_host_against_a_newcomer_in_any_order() {
    let old_upper = aged(app_of("west", "pay-b", "Payments", "prod"), 100);
    let new_lower = aged(app_of("east", "pay-a", "payments", "prod"), 200);
    for order in [
        [old_upper.clone(), new_lower.clone()],
        [new_lower.clone(), old_upper.clone()],
    ] {
        let mut r = Registry::new(RegistryConfig::default());
        apply(&mut r, [cluster("east"), cluster("west")]);
        for deltas in order {
            apply(&mut r, deltas);
        }
        let clusters = payments_exporters(&r);
        assert_eq!(
            clusters,
            ["west"],
            "the newcomer does not take the host over"
        );
        assert_eq!(r.cluster_findings(&ClusterName::new("east")).len(), 1);
    }
}

#[test]
fn when_a_spelling_takes_over_the_old_one_s_other_workloads_leave_the_host() {
    let mut r = Registry::new(RegistryConfig::default());
    apply(&mut r, [cluster("east"), cluster("west"), cluster("south")]);
    // `Payments` is oldest (east), so its spelling is exported, by south's workload too;
    // west's `payments` is held for the conflict.
    apply(
        &mut r,
        aged(app_of("east", "pay-a", "Payments", "prod"), 100),
    );
    apply(
        &mut r,
        aged(app_of("west", "pay-c", "payments", "prod"), 200),
    );
    apply(
        &mut r,
        aged(app_of("south", "pay-b", "Payments", "prod"), 300),
    );
    assert_eq!(payments_exporters(&r), ["east", "south"]);

    // The oldest goes: `payments` (west, older than south's) takes over, and south's
    // `Payments` is held, its backends gone from the host.
    r.apply(remove_workload("east", "ns", "pay-a"));
    assert_eq!(payments_exporters(&r), ["west"]);
    let findings = r.cluster_findings(&ClusterName::new("south"));
    assert!(
        matches!(&findings[..], [ClusterFinding::SpellingConflict { spelling, exported, .. }]
            if spelling == "prod.Payments" && exported.is_empty()),
        "{findings:?}"
    );
    assert!(r.cluster_findings(&ClusterName::new("west")).is_empty());

    // And south's goes without leaving anything behind.
    r.apply(remove_workload("south", "ns", "pay-b"));
    assert_eq!(payments_exporters(&r), ["west"]);
}

#[test]
fn a_removed_cluster_hands_its_spelling_over() {
    let mut r = Registry::new(RegistryConfig::default());
    apply(&mut r, [cluster("east"), cluster("west")]);
    apply(&mut r, app_of("east", "pay-a", "payments", "prod"));
    apply(&mut r, app_of("west", "pay-b", "Payments", "prod"));
    r.apply(Delta::RemoveCluster(ClusterName::new("east")));
    let clusters = payments_exporters(&r);
    assert_eq!(clusters, ["west"]);
    assert!(r.cluster_findings(&ClusterName::new("west")).is_empty());
    assert!(r.cluster_findings(&ClusterName::new("east")).is_empty());
}
