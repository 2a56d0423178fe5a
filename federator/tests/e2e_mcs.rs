//! The Multicluster Services API on real API servers (issue 13), one test per behaviour the
//! specifications require, each named after the section it checks:
//! - KEP-1645 (the MCS API): ServiceImport creation in every cluster, its type and ports,
//!   the clusterset IP, removal when the last export goes, export conflicts and the
//!   condition of an export whose Service does not exist;
//! - the MCS DNS specification (KEP-1645 `specification.md`): sections 2.2, 2.3 and 2.4.
//!
//! The CRDs are the MCS API's own (`sigs.k8s.io/mcs-api`, pinned, copied by setup.sh). What
//! each cluster's API server holds is read back; `dig` asks federator's DNS server.

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};
use support::live::*;
use testenv::TestCluster;

const HOST: &str = "web.shop.svc.clusterset.local";

fn mcs(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "multicluster.x-k8s.io",
        "v1beta1",
        kind,
    ))
}

/// The ServiceExport of `shop/<name>`.
fn export(name: &str) -> Value {
    json!({
        "apiVersion": "multicluster.x-k8s.io/v1beta1",
        "kind": "ServiceExport",
        "metadata": {"name": name, "namespace": "shop"},
    })
}

/// A Service `shop/<name>` with `ports`, and the EndpointSlice its controller would write:
/// one ready endpoint per `(address, hostname)`.
async fn service(
    cluster: &TestCluster,
    name: &str,
    ports: &[(&str, i32)],
    headless: bool,
    endpoints: &[(&str, Option<&str>)],
) {
    let ports: Vec<Value> = ports
        .iter()
        .map(|(n, p)| json!({"name": n, "port": p, "protocol": "TCP"}))
        .collect();
    let mut spec = json!({"selector": {"app": name}, "ports": ports});
    if headless {
        spec["clusterIP"] = json!("None");
    }
    cluster
        .apply_json(&json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": spec,
        }))
        .await
        .unwrap();
    let (region, _) = topology(cluster.name());
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(ip, hostname)| {
            let mut e = json!({
                "addresses": [ip], "conditions": {"ready": true},
                "nodeName": "node-1", "zone": format!("{region}a"),
            });
            if let Some(h) = hostname {
                e["hostname"] = json!(h);
            }
            e
        })
        .collect();
    cluster
        .apply_json(&json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {
                "name": format!("{name}-1"), "namespace": "shop",
                "labels": {"kubernetes.io/service-name": name},
            },
            "addressType": "IPv4",
            "ports": ports,
            "endpoints": endpoints,
        }))
        .await
        .unwrap();
}

async fn service_import(cluster: &TestCluster, name: &str) -> Option<Value> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(cluster.client(), "shop", &mcs("ServiceImport"));
    api.get_opt(name).await.unwrap().map(|o| o.data)
}

/// `(type, status, reason)` of each condition of the ServiceExport `shop/<name>`.
async fn export_conditions(cluster: &TestCluster, name: &str) -> Vec<(String, String, String)> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(cluster.client(), "shop", &mcs("ServiceExport"));
    let Some(object) = api.get_opt(name).await.unwrap() else {
        return Vec::new();
    };
    let text = |c: &Value, k: &str| c[k].as_str().unwrap_or_default().to_owned();
    object.data["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| (text(c, "type"), text(c, "status"), text(c, "reason")))
        .collect()
}

fn condition(type_: &str, status: &str, reason: &str) -> (String, String, String) {
    (type_.into(), status.into(), reason.into())
}

/// The answer section of `dig <name> <type>` as `dig +short` prints it, sorted.
async fn short(server: std::net::SocketAddr, name: &str, rtype: &str) -> Vec<String> {
    let output = tokio::process::Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), name, rtype, "+short"])
        .args(["+tries=1", "+time=5"])
        .output()
        .await
        .expect("dig (Debian package dnsutils) must be installed");
    let mut lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

/// East and west with namespace `shop`, ready for exports.
async fn clusterset() -> testenv::TestEnv {
    let env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    for cluster in ["east", "west"] {
        env.cluster(cluster).create_namespace("shop").await.unwrap();
    }
    env
}

/// `shop/web` (HTTP on 8080, gRPC on 9090, one ready pod) exported from `cluster`.
async fn export_web(cluster: &TestCluster) {
    let ports = [("http", 8080), ("grpc", 9090)];
    service(cluster, "web", &ports, false, &[("10.1.0.10", None)]).await;
    cluster.apply_json(&export("web")).await.unwrap();
}

async fn vip(cluster: &TestCluster) -> String {
    service_entry(cluster, HOST).await.unwrap().spec.addresses[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kep1645_importing_a_service_creates_a_serviceimport_in_every_cluster_with_type_ports_and_clusterset_ip()
 {
    let env = clusterset().await;
    let (east, west) = (env.cluster("east"), env.cluster("west"));
    export_web(east).await;
    // The clusterset IP is kept across restarts like any VIP: in the VIP store, where an
    // earlier run left this one.
    env.cluster("config")
        .apply_json(&json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "federator-state", "namespace": NAMESPACE},
            "data": {"vips": format!("{HOST} 240.0.0.77\n")},
        }))
        .await
        .unwrap();
    let federator = Federator::start(&env, std::time::Duration::from_secs(600)).await;

    // Every cluster, the exporting one and the other, gets the ServiceImport; its IP is the
    // clusterset service's VIP, the address of the ServiceEntry of its clusterset name.
    // The ServiceEntry too: a writer may write it in a later round of the same pass.
    eventually(
        "a ServiceImport in east and west, and west's ServiceEntry",
        || async {
            service_import(east, "web").await.is_some()
                && service_import(west, "web").await.is_some()
                && service_entry(west, HOST).await.is_some()
        },
    )
    .await;
    let vip = vip(west).await;
    assert_eq!(vip, "240.0.0.77", "the clusterset IP the VIP store holds");
    for cluster in [east, west] {
        let import = service_import(cluster, "web").await.unwrap();
        assert_eq!(
            import["spec"],
            json!({
                "type": "ClusterSetIP",
                "ips": [vip],
                "ports": [
                    {"name": "http", "port": 8080, "protocol": "TCP"},
                    {"name": "grpc", "port": 9090, "protocol": "TCP"},
                ],
            }),
            "{}",
            cluster.name()
        );
    }
    // The clusterset name routes like a global host: local pods in east, east's gateway
    // from west.
    let (_, east_gateway) = topology("east");
    eventually("the clusterset host's endpoints", || async {
        endpoints(east, HOST).await == ["10.1.0.10"]
            && endpoints(west, HOST).await == [east_gateway]
    })
    .await;
    eventually("the export's conditions", || async {
        export_conditions(east, "web").await
            == [
                condition("Valid", "True", "Valid"),
                condition("Ready", "True", "Exported"),
                condition("Conflict", "False", "NoConflicts"),
            ]
    })
    .await;
    federator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kep1645_the_serviceimport_goes_when_the_last_export_goes() {
    let env = clusterset().await;
    let (east, west) = (env.cluster("east"), env.cluster("west"));
    for cluster in [east, west] {
        service(
            cluster,
            "web",
            &[("http", 8080)],
            false,
            &[("10.1.0.10", None)],
        )
        .await;
        cluster.apply_json(&export("web")).await.unwrap();
    }
    let federator = Federator::start(&env, std::time::Duration::from_secs(600)).await;
    eventually("a ServiceImport in east and west", || async {
        service_import(east, "web").await.is_some() && service_import(west, "web").await.is_some()
    })
    .await;
    let imports = Api::<DynamicObject>::all_with(west.client(), &mcs("ServiceImport"));
    let seen = support::writes::record_names(imports).await;

    // One export left: the ServiceImport stays (its clusterset IP too).
    let exports = |c: &TestCluster| {
        Api::<DynamicObject>::namespaced_with(c.client(), "shop", &mcs("ServiceExport"))
    };
    exports(east)
        .delete("web", &Default::default())
        .await
        .unwrap();
    eventually("east's backends gone from west's ServiceEntry", || async {
        endpoints(west, HOST).await == ["10.1.0.10"]
    })
    .await;
    assert!(service_import(west, "web").await.is_some());
    assert!(
        !seen
            .lock()
            .unwrap()
            .iter()
            .any(|(kind, _)| kind == "DELETED"),
        "a ServiceImport deleted while an export remained"
    );
    // The last export goes: the ServiceImport goes everywhere, and so do the Istio objects.
    exports(west)
        .delete("web", &Default::default())
        .await
        .unwrap();
    eventually("the ServiceImports deleted", || async {
        service_import(east, "web").await.is_none() && service_import(west, "web").await.is_none()
    })
    .await;
    assert_eq!(
        seen.lock().unwrap().last().cloned(),
        Some(("DELETED".to_owned(), "shop/web".to_owned()))
    );
    eventually("the ServiceEntries deleted", || async {
        service_entry(east, HOST).await.is_none() && service_entry(west, HOST).await.is_none()
    })
    .await;
    federator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kep1645_export_conflicts_the_oldest_export_wins_and_an_export_without_service_says_so() {
    let env = clusterset().await;
    let (east, west) = (env.cluster("east"), env.cluster("west"));
    service(
        east,
        "web",
        &[("http", 8080)],
        false,
        &[("10.1.0.10", None)],
    )
    .await;
    east.apply_json(&export("web")).await.unwrap();
    // Creation timestamps have one-second resolution: west's export is the newer one.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    service(
        west,
        "web",
        &[("http", 9999)],
        false,
        &[("10.2.0.10", None)],
    )
    .await;
    west.apply_json(&export("web")).await.unwrap();
    // An export of a Service that does not exist.
    west.apply_json(&export("ghost")).await.unwrap();
    let federator = Federator::start(&env, std::time::Duration::from_secs(600)).await;

    eventually("west's export reported conflicting", || async {
        export_conditions(west, "web").await
            == [
                condition("Valid", "True", "Valid"),
                condition("Ready", "False", "Failed"),
                condition("Conflict", "True", "PortConflict"),
            ]
    })
    .await;
    // The specification recommends raising it on every export of the service.
    eventually("east's export told of the conflict", || async {
        export_conditions(east, "web").await.get(2)
            == Some(&condition("Conflict", "True", "PortConflict"))
    })
    .await;
    // The oldest export's ports are the service's; west's pods are left out.
    eventually("west's ServiceImport with east's port", || async {
        service_import(west, "web").await.is_some_and(|i| {
            i["spec"]["ports"] == json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
        })
    })
    .await;
    eventually("west's pods left out of east's ServiceEntry", || async {
        endpoints(east, HOST).await == ["10.1.0.10"]
    })
    .await;
    eventually("the export without a Service", || async {
        export_conditions(west, "ghost").await.first()
            == Some(&condition("Valid", "False", "NoService"))
    })
    .await;
    assert!(service_import(west, "ghost").await.is_none());
    // Its Service comes: it is exported.
    service(
        west,
        "ghost",
        &[("http", 8080)],
        false,
        &[("10.2.0.20", None)],
    )
    .await;
    eventually("the ghost exported once its Service exists", || async {
        service_import(east, "ghost").await.is_some()
            && export_conditions(west, "ghost").await.get(1)
                == Some(&condition("Ready", "True", "Exported"))
    })
    .await;
    federator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_spec_2_2_and_2_3_clusterset_ip_service_records() {
    let env = clusterset().await;
    let east = env.cluster("east");
    export_web(east).await;
    let federator = Federator::start(&env, std::time::Duration::from_secs(600)).await;
    eventually("the clusterset service in east", || async {
        service_entry(east, HOST).await.is_some()
    })
    .await;
    let vip = vip(east).await;
    let dns = federator.dns;
    // 2.2: the schema version.
    assert_eq!(
        short(dns, "dns-version.clusterset.local", "TXT").await,
        ["\"1.0.0\""]
    );
    // 2.3.1: A with the clusterset IP.
    eventually("the A record", || async {
        short(dns, HOST, "A").await == [vip.clone()]
    })
    .await;
    // 2.3.2: one SRV per named port, to the service's name.
    assert_eq!(
        short(dns, &format!("_http._tcp.{HOST}"), "SRV").await,
        [format!("0 0 8080 {HOST}.")]
    );
    assert_eq!(
        short(dns, &format!("_grpc._tcp.{HOST}"), "SRV").await,
        [format!("0 0 9090 {HOST}.")]
    );
    // 2.3.4: no name for one cluster's backends.
    let (status, _) = dig(dns, &format!("east.{HOST}"), &[]).await;
    assert_eq!(status, "NXDOMAIN");
    // 2.3.1 has no readiness condition: with no ready pod, still imported, still answered.
    service(east, "web", &[("http", 8080), ("grpc", 9090)], false, &[]).await;
    eventually("the ServiceEntry gone with the last ready pod", || async {
        service_entry(east, HOST).await.is_none()
    })
    .await;
    assert_eq!(short(dns, HOST, "A").await, [vip]);
    federator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_spec_2_4_headless_service_records() {
    let env = clusterset().await;
    let (east, west) = (env.cluster("east"), env.cluster("west"));
    // East names itself through its id.k8s.io ClusterProperty; west has none (its
    // registered name is used).
    east.apply_json(&foreign_crd(
        "about.k8s.io",
        "ClusterProperty",
        "clusterproperties",
        false,
    ))
    .await
    .unwrap();
    eventually("the ClusterProperty CRD is served", || async {
        east.apply_json(&json!({
            "apiVersion": "about.k8s.io/v1alpha1", "kind": "ClusterProperty",
            "metadata": {"name": "id.k8s.io"}, "spec": {"value": "east-1"},
        }))
        .await
        .is_ok()
    })
    .await;
    let pets = [("10.1.0.11", Some("pet-0")), ("10.1.0.12", Some("pet-1"))];
    service(east, "db", &[("tcp-db", 5432)], true, &pets).await;
    service(
        west,
        "db",
        &[("tcp-db", 5432)],
        true,
        &[("10.2.0.11", Some("pet-0"))],
    )
    .await;
    for cluster in [east, west] {
        cluster.apply_json(&export("db")).await.unwrap();
    }
    let federator = Federator::start(&env, std::time::Duration::from_secs(600)).await;
    let dns = federator.dns;
    let host = "db.shop.svc.clusterset.local";
    // 2.4.1: every ready endpoint of every cluster.
    eventually("the headless A records", || async {
        short(dns, host, "A").await == ["10.1.0.11", "10.1.0.12", "10.2.0.11"]
    })
    .await;
    // ... and one name per endpoint: <hostname>.<clusterid>.<svc>.<ns>.svc.clusterset.local.
    assert_eq!(
        short(dns, &format!("pet-1.east-1.{host}"), "A").await,
        ["10.1.0.12"]
    );
    assert_eq!(
        short(dns, &format!("pet-0.west.{host}"), "A").await,
        ["10.2.0.11"]
    );
    // 2.4.2: an SRV per endpoint and named port, to its own name.
    assert_eq!(
        short(dns, &format!("_tcp-db._tcp.{host}"), "SRV").await,
        [
            format!("0 1 5432 pet-0.east-1.{host}."),
            format!("0 1 5432 pet-0.west.{host}."),
            format!("0 1 5432 pet-1.east-1.{host}."),
        ]
    );
    // The ServiceImport says Headless and carries no IP.
    eventually("the ServiceImport", || async {
        service_import(west, "db").await.is_some()
    })
    .await;
    let import = service_import(west, "db").await.unwrap();
    assert_eq!(import["spec"]["type"], "Headless");
    assert!(import["spec"].get("ips").is_none());
    // No ready endpoint left: the name does not exist.
    for (cluster, name) in [(east, "db"), (west, "db")] {
        service(cluster, name, &[("tcp-db", 5432)], true, &[]).await;
    }
    eventually("NXDOMAIN once nothing is ready", || async {
        dig(dns, host, &[]).await.0 == "NXDOMAIN"
    })
    .await;
    federator.stop().await;
}
