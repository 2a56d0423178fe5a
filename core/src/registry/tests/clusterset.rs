//! The MCS API: a ServiceExport makes its Service a clusterset service, folded like a
//! global host, with the oldest export deciding its ports and type.

use super::*;
use crate::model::{ClusterIdInfo, Object};
use crate::render::render_service_import;

fn web(cluster: &str, created: i64, port: u16) -> Vec<Delta> {
    vec![
        upsert(cluster, export("shop", "web", created)),
        // No pod selects it: an export names its Service whatever the selector says.
        upsert(cluster, service("shop", "web").port("http", port)),
        upsert(cluster, slice("shop", "web-1", "web", &[("", "a")])),
    ]
}

fn clusterset_host() -> Host {
    Host::clusterset("web", "shop").unwrap()
}

fn conditions(r: &Registry, cluster: &str) -> Vec<(&'static str, bool, &'static str)> {
    r.object_statuses()
        .into_iter()
        .find(|s| s.kind == StatusKind::ServiceExport && s.cluster.as_str() == cluster)
        .map(|s| {
            s.conditions
                .iter()
                .map(|c| (c.type_, c.status, c.reason))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn an_export_in_two_clusters_is_one_clusterset_service_with_both_backends() {
    let mut deltas = vec![cluster("east"), cluster("west")];
    deltas.extend(web("east", 100, 80));
    deltas.extend(web("west", 200, 80));
    let mut r = registry(deltas);
    let view = r.publish();
    let service = view.get(&clusterset_host()).expect("a clusterset host");
    assert_eq!(
        service
            .backends
            .keys()
            .map(ClusterName::as_str)
            .collect::<Vec<_>>(),
        ["east", "west"]
    );
    assert!(service.vip.is_some());
    let info = service.clusterset.as_ref().unwrap();
    assert!(!info.headless);
    assert_eq!(info.cluster_ids[&ClusterName::new("east")], "east");
    let import = render_service_import(service).unwrap();
    assert_eq!(
        (
            import.metadata.namespace.as_str(),
            import.metadata.name.as_str()
        ),
        ("shop", "web")
    );
    assert_eq!(
        serde_json::to_value(&import.spec).unwrap(),
        serde_json::json!({
            "type": "ClusterSetIP",
            "ports": [{"name": "http", "protocol": "TCP", "port": 80}],
            "ips": [service.vip.unwrap().to_string()],
        })
    );
    assert_eq!(
        conditions(&r, "west"),
        [
            ("Valid", true, "Valid"),
            ("Ready", true, "Exported"),
            ("Conflict", false, "NoConflicts")
        ]
    );
}

#[test]
fn the_oldest_export_decides_the_ports_and_the_other_is_reported_conflicting() {
    let mut deltas = vec![cluster("east"), cluster("west")];
    // West's export is older although its Service was made later.
    deltas.extend(web("east", 200, 80));
    deltas.extend(web("west", 100, 8080));
    let mut r = registry(deltas);
    let view = r.publish();
    let service = view.get(&clusterset_host()).unwrap();
    assert_eq!(service.ports[0].number, 8080);
    assert_eq!(service.rejected[0].cluster.as_str(), "east");
    assert_eq!(
        conditions(&r, "east"),
        [
            ("Valid", true, "Valid"),
            ("Ready", false, "Failed"),
            ("Conflict", true, "PortConflict")
        ]
    );
    // The winner is told too, as the specification recommends.
    assert_eq!(
        conditions(&r, "west")[2],
        ("Conflict", true, "PortConflict")
    );
}

#[test]
fn a_headless_export_beside_a_clusterset_ip_one_is_a_type_conflict() {
    let mut deltas = vec![cluster("east"), cluster("west")];
    deltas.extend(web("east", 100, 80));
    deltas.extend(web("west", 200, 80));
    deltas.push(upsert(
        "west",
        service("shop", "web").port("http", 80).headless(),
    ));
    let mut r = registry(deltas);
    let view = r.publish();
    let service = view.get(&clusterset_host()).unwrap();
    assert_eq!(service.rejected.len(), 1);
    assert_eq!(
        conditions(&r, "west")[2],
        ("Conflict", true, "TypeConflict")
    );
}

#[test]
fn an_export_without_its_service_says_so_and_serves_once_the_service_comes() {
    let mut r = registry([cluster("east"), upsert("east", export("shop", "web", 1))]);
    assert_eq!(conditions(&r, "east")[0], ("Valid", false, "NoService"));
    let view = r.publish();
    assert!(
        view.get(&clusterset_host())
            .is_none_or(|s| s.backends.is_empty())
    );
    for d in web("east", 1, 80) {
        r.apply(d);
    }
    assert_eq!(conditions(&r, "east")[1], ("Ready", true, "Exported"));
    assert!(r.publish().get(&clusterset_host()).unwrap().is_serving());
}

#[test]
fn the_service_goes_when_its_last_export_goes() {
    let mut deltas = vec![cluster("east"), cluster("west")];
    deltas.extend(web("east", 100, 80));
    deltas.extend(web("west", 200, 80));
    let mut r = registry(deltas);
    let export_ref = |c: &str| {
        Delta::Remove(
            ClusterName::new(c),
            ObjectRef::Workload(WorkloadKind::ServiceExport, ObjectKey::new("shop", "web")),
        )
    };
    r.apply(export_ref("east"));
    let view = r.publish();
    let service = view.get(&clusterset_host()).unwrap();
    assert_eq!(
        service
            .backends
            .keys()
            .map(ClusterName::as_str)
            .collect::<Vec<_>>(),
        ["west"]
    );
    r.apply(export_ref("west"));
    assert!(r.publish().get(&clusterset_host()).is_none());
}

#[test]
fn the_cluster_id_property_renames_the_cluster_in_the_clusterset() {
    let mut deltas = vec![cluster("east")];
    deltas.extend(web("east", 100, 80));
    let mut r = registry(deltas);
    let id = |r: &mut Registry| {
        r.publish()
            .get(&clusterset_host())
            .unwrap()
            .clusterset
            .as_ref()
            .unwrap()
            .cluster_ids[&ClusterName::new("east")]
            .clone()
    };
    assert_eq!(id(&mut r), "east");
    r.apply(upsert(
        "east",
        Object::ClusterId(ClusterIdInfo {
            value: "east-1a".into(),
        }),
    ));
    assert_eq!(id(&mut r), "east-1a");
    r.apply(Delta::Remove(
        ClusterName::new("east"),
        ObjectRef::ClusterId,
    ));
    assert_eq!(id(&mut r), "east");
}

#[test]
fn clusters_that_would_share_an_id_go_by_their_registered_names() {
    let mut deltas = vec![cluster("east"), cluster("west")];
    deltas.extend(web("east", 100, 80));
    deltas.extend(web("west", 200, 80));
    let id = |value: &str| {
        Object::ClusterId(ClusterIdInfo {
            value: value.into(),
        })
    };
    // East names itself after west.
    deltas.push(upsert("east", id("west")));
    let mut r = registry(deltas);
    let ids = |r: &mut Registry| {
        let view = r.publish();
        let info = view
            .get(&clusterset_host())
            .unwrap()
            .clusterset
            .clone()
            .unwrap();
        info.cluster_ids.into_values().collect::<Vec<_>>()
    };
    assert_eq!(ids(&mut r), ["east", "west"]);
    r.apply(upsert("east", id("east-1")));
    assert_eq!(ids(&mut r), ["east-1", "west"]);
}

#[test]
fn global_hosts_of_the_same_namespace_are_untouched_by_exports() {
    let mut deltas = vec![cluster("east")];
    deltas.extend(greeting("east", &[("", "a")]));
    deltas.push(upsert("east", export("sample", "greeting", 1)));
    let mut r = registry(deltas);
    let view = r.publish();
    let global = view.get(&host("prod.greeting.global")).unwrap();
    assert!(global.clusterset.is_none());
    let clusterset = view
        .get(&Host::clusterset("greeting", "sample").unwrap())
        .unwrap();
    let endpoints = |s: &GlobalService| s.backends[&ClusterName::new("east")][0].endpoints.clone();
    assert_eq!(endpoints(global), endpoints(clusterset));
    assert_eq!(global.identity, "greeting");
}
