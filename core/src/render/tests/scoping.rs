//! Traffic scoping by Dependency: the Sidecars of callers, and `--export-scope dependents`.

use super::*;

/// `three_clusters` plus `web` (in south) calling greeting.
fn with_caller() -> Registry {
    let mut deltas = three_clusters();
    deltas.extend(app(
        "south",
        "team",
        "web",
        "web",
        "prod",
        &[("http", 80)],
        &[("n1", "")],
    ));
    deltas.push(upsert(
        "south",
        dependency("web", "web", &["greeting", "payments"]),
    ));
    build(deltas)
}

fn scoped(scope: ExportScope) -> RenderOptions {
    RenderOptions {
        export_scope: scope,
        ..RenderOptions::default()
    }
}

fn sidecars(r: &Registry, identity: &str, cluster: &str) -> Vec<Rendered<SidecarSpec>> {
    let view = r.full_view();
    let host = Host::build("prod", identity, "global").unwrap();
    let service = view.get(&host).unwrap();
    render_sidecars(
        &view,
        service,
        &ClusterName::new(cluster),
        &RenderOptions::default(),
    )
}

#[test]
fn a_caller_gets_a_sidecar_in_its_namespace_admitting_only_what_it_calls() {
    let r = with_caller();
    let rendered = sidecars(&r, "web", "south");
    assert_eq!(rendered.len(), 1);
    let sidecar = &rendered[0];
    assert_eq!(sidecar.metadata.namespace, "team");
    assert_eq!(sidecar.metadata.name, "federator-deployment-web");
    assert_eq!(sidecar.metadata.labels[MANAGED_BY_LABEL], MANAGED_BY_VALUE);
    assert_eq!(
        sidecar.metadata.annotations[HOST_ANNOTATION],
        "prod.web.global"
    );
    assert_eq!(
        sidecar.spec.workload_selector.labels,
        BTreeMap::from([("app".to_owned(), "web".to_owned())])
    );
    assert_eq!(
        sidecar.spec.egress[0].hosts,
        [
            "./*",
            "istio-system/*",
            "federator-sync/*.greeting.global",
            "federator-sync/*.payments.global",
            "federator-sync/*.svc.clusterset.local"
        ]
    );
    // Only where the caller runs, and nothing for an identity without a Dependency.
    assert!(sidecars(&r, "web", "east").is_empty());
    assert!(sidecars(&r, "greeting", "east").is_empty());
}

#[test]
fn export_scope_all_sends_every_host_everywhere() {
    let r = with_caller();
    let view = r.full_view();
    let service = view.get(&greeting_host()).unwrap();
    for cluster in ["east", "west", "south"] {
        let destination = ClusterName::new(cluster);
        assert!(render_host(&view, service, &destination, &scoped(ExportScope::All)).is_some());
    }
}

#[test]
fn export_scope_dependents_sends_a_host_where_it_runs_and_where_its_callers_run() {
    let mut r = with_caller();
    r.apply(cluster("north"));
    let view = r.full_view();
    let options = scoped(ExportScope::Dependents);
    let greeting = view.get(&greeting_host()).unwrap();
    let got = |service, cluster: &str| {
        render_host(&view, service, &ClusterName::new(cluster), &options).is_some()
    };
    assert!(got(greeting, "east"), "it runs in east");
    assert!(got(greeting, "west"), "it runs in west");
    assert!(got(greeting, "south"), "its caller runs in south");
    assert!(!got(greeting, "north"), "nothing in north calls it");
    // web has no callers: it stays where it runs.
    let web = view
        .get(&Host::build("prod", "web", "global").unwrap())
        .unwrap();
    assert!(got(web, "south"));
    assert!(!got(web, "east"));
}
