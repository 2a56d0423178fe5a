//! Dependencies: a source's hosts learn what they call and which of their workloads need a
//! Sidecar; a destination's hosts learn where their callers run.

use super::*;

/// `web` (env prod) in `cluster`, namespace `team`.
fn web(cluster: &str) -> Vec<Delta> {
    app(
        cluster,
        "team",
        "web",
        "web",
        "prod",
        &[("http", 80)],
        &[("", "a")],
    )
}

fn catalog(cluster: &str) -> Vec<Delta> {
    app(
        cluster,
        "shop",
        "catalog",
        "catalog",
        "prod",
        &[("http", 80)],
        &[("", "a")],
    )
}

fn deps(r: &Registry, h: &str) -> HostDependencies {
    r.get(&host(h)).unwrap().dependencies.clone()
}

fn names(clusters: &std::collections::BTreeSet<ClusterName>) -> Vec<&str> {
    clusters.iter().map(ClusterName::as_str).collect()
}

#[test]
fn without_a_dependency_nothing_is_declared() {
    let r = registry([web("east"), catalog("west")].concat());
    assert_eq!(deps(&r, "prod.web"), HostDependencies::default());
    assert_eq!(deps(&r, "prod.catalog"), HostDependencies::default());
}

#[test]
fn a_dependency_gives_the_source_its_calls_and_workloads_and_the_destination_its_callers() {
    let mut r = registry([web("east"), web("north"), catalog("west")].concat());
    let changes = r.apply(upsert(
        "east",
        dependency("web", "web", &["catalog", "payments"]),
    ));
    assert!(changes.hosts.contains(&host("prod.web")));
    assert!(changes.hosts.contains(&host("prod.catalog")));
    let source = deps(&r, "prod.web");
    assert_eq!(
        source.calls,
        Some(vec!["catalog".into(), "payments".into()])
    );
    assert_eq!(
        source
            .workloads
            .keys()
            .map(ClusterName::as_str)
            .collect::<Vec<_>>(),
        ["east", "north"]
    );
    let east = &source.workloads[&name("east")];
    assert_eq!(east.len(), 1);
    assert_eq!(east[0].key, ObjectKey::new("team", "web"));
    assert_eq!(east[0].pod_labels["app"], "web");
    assert_eq!(
        names(&deps(&r, "prod.catalog").dependent_clusters),
        ["east", "north"]
    );

    // Deleting it takes everything back.
    let changes = r.apply(remove(
        "east",
        ObjectRef::Dependency(ObjectKey::new("team", "web")),
    ));
    assert!(changes.hosts.contains(&host("prod.catalog")));
    assert_eq!(deps(&r, "prod.web"), HostDependencies::default());
    assert_eq!(deps(&r, "prod.catalog"), HostDependencies::default());
}

#[test]
fn callers_coming_and_going_move_the_destinations_dependents() {
    let mut r = registry([web("east"), catalog("west")].concat());
    r.apply(upsert("west", dependency("web", "web", &["catalog"])));
    assert_eq!(
        names(&deps(&r, "prod.catalog").dependent_clusters),
        ["east"]
    );
    let mut changes = ChangeSet::default();
    for d in web("south") {
        changes.extend(r.apply(d));
    }
    assert!(changes.hosts.contains(&host("prod.catalog")), "{changes:?}");
    assert_eq!(
        names(&deps(&r, "prod.catalog").dependent_clusters),
        ["east", "south"]
    );
    assert!(deps(&r, "prod.web").workloads.contains_key(&name("south")));

    r.apply(remove(
        "east",
        ObjectRef::Workload(WorkloadKind::Deployment, ObjectKey::new("team", "web")),
    ));
    assert_eq!(
        names(&deps(&r, "prod.catalog").dependent_clusters),
        ["south"]
    );
    assert!(!deps(&r, "prod.web").workloads.contains_key(&name("east")));

    r.apply(Delta::RemoveCluster(name("south")));
    assert!(deps(&r, "prod.catalog").dependent_clusters.is_empty());
}

#[test]
fn a_relabelled_caller_changes_its_sidecar_selector() {
    let mut r = registry([web("east"), catalog("west")].concat());
    r.apply(upsert("east", dependency("web", "web", &["catalog"])));
    let mut relabelled = workload("team", "web", "web", "prod");
    relabelled.pod_labels.insert("version".into(), "v2".into());
    let changes = r.apply(upsert("east", relabelled));
    assert!(changes.hosts.contains(&host("prod.web")));
    let east = &deps(&r, "prod.web").workloads[&name("east")];
    assert_eq!(east[0].pod_labels["version"], "v2");
}

#[test]
fn several_dependencies_of_one_source_add_up_and_a_changed_one_moves_its_destinations() {
    let mut r = registry([web("east"), catalog("west")].concat());
    r.apply(upsert("east", dependency("a", "web", &["payments"])));
    r.apply(upsert(
        "west",
        dependency("b", "web", &["catalog", "payments"]),
    ));
    assert_eq!(
        deps(&r, "prod.web").calls,
        Some(vec!["catalog".into(), "payments".into()])
    );
    // `b` no longer names catalog: catalog loses its caller, web keeps payments from `a`.
    let changes = r.apply(upsert("west", dependency("b", "web", &["payments"])));
    assert!(changes.hosts.contains(&host("prod.catalog")));
    assert!(deps(&r, "prod.catalog").dependent_clusters.is_empty());
    assert_eq!(deps(&r, "prod.web").calls, Some(vec!["payments".into()]));
    // Unregistering west drops `b` only.
    r.apply(Delta::RemoveCluster(name("west")));
    assert_eq!(deps(&r, "prod.web").calls, Some(vec!["payments".into()]));
}

#[test]
fn the_order_of_deltas_does_not_matter() {
    let dependency = upsert("west", dependency("web", "web", &["catalog"]));
    let all: Vec<Delta> = [web("east"), catalog("west"), vec![dependency]].concat();
    let forward = registry(all.clone());
    let backward = registry(all.into_iter().rev());
    for h in ["prod.web", "prod.catalog"] {
        assert_eq!(deps(&forward, h), deps(&backward, h), "{h}");
    }
    assert_eq!(
        names(&deps(&forward, "prod.catalog").dependent_clusters),
        ["east"]
    );
}

#[test]
fn a_dependency_turned_invalid_keeps_its_last_valid_version_in_force() {
    let mut r = registry([web("east"), catalog("west")].concat());
    r.apply(upsert("north", dependency("web", "web", &["catalog"])));
    assert_eq!(names(&deps(&r, "prod.web").declared_in), ["north"]);
    assert_eq!(names(&deps(&r, "prod.catalog").declared_in), ["north"]);
    let rejected = crate::model::RejectedInfo {
        reference: ObjectRef::Dependency(ObjectKey::new("team", "web")),
        generation: Some(2),
        reason: "spec.source \"\": must not be empty".into(),
    };
    r.apply(upsert("north", crate::model::Object::Rejected(rejected)));
    assert_eq!(deps(&r, "prod.web").calls, Some(vec!["catalog".into()]));
    let statuses = r.object_statuses();
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert!(
        statuses[0]
            .conditions
            .iter()
            .any(|c| c.type_ == "Accepted" && !c.status)
    );
    // Deleted: gone for good.
    r.apply(remove(
        "north",
        ObjectRef::Dependency(ObjectKey::new("team", "web")),
    ));
    assert_eq!(deps(&r, "prod.web").calls, None);
    assert!(r.object_statuses().is_empty());
}

#[test]
fn no_sidecar_for_a_caller_whose_labels_another_workloads_pods_carry_too() {
    let mut r = registry([web("east"), catalog("west")].concat());
    r.apply(upsert("east", dependency("web", "web", &["catalog"])));
    assert!(deps(&r, "prod.web").workloads.contains_key(&name("east")));
    // Another identity's pods in the same namespace carry `app: web` too.
    let mut batch = workload("team", "batch", "batch", "prod");
    batch.pod_labels.insert("app".into(), "web".into());
    let changes = r.apply(upsert("east", batch));
    assert!(changes.hosts.contains(&host("prod.web")), "{changes:?}");
    assert!(!deps(&r, "prod.web").workloads.contains_key(&name("east")));
    // It goes: web's Sidecar is back.
    r.apply(remove(
        "east",
        ObjectRef::Workload(WorkloadKind::Deployment, ObjectKey::new("team", "batch")),
    ));
    assert!(deps(&r, "prod.web").workloads.contains_key(&name("east")));
}
