//! With controllers, a simulated cluster behaves like a cluster: an applied Deployment gets
//! Pods on kwok Nodes, and the real EndpointSlice controller writes their addresses and
//! zones; scaled to zero, the endpoints go.

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::ListParams;
use testenv::{TestEnv, objects};

/// `(address, zone, ready)` of every endpoint of the Service's slices, sorted.
async fn endpoints(client: &kube::Client, service: &str) -> Vec<(String, String, bool)> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), "shop");
    let params = ListParams::default().labels(&format!("kubernetes.io/service-name={service}"));
    let mut found: Vec<_> = api
        .list(&params)
        .await
        .unwrap()
        .items
        .into_iter()
        .flat_map(|slice| slice.endpoints)
        .map(|e| {
            let ready = e.conditions.and_then(|c| c.ready).unwrap_or(false);
            (e.addresses[0].clone(), e.zone.unwrap_or_default(), ready)
        })
        .collect();
    found.sort();
    found
}

async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_gets_endpoints_from_the_real_endpointslice_controller() {
    let mut env = TestEnv::start_with_controllers(&["east"]).await.unwrap();
    let east = env.cluster("east");
    for (node, zone, cidr) in [
        ("east-a-1", "us-east-1a", "10.1.1.0/24"),
        ("east-b-1", "us-east-1b", "10.1.2.0/24"),
    ] {
        east.apply(&objects::kwok_node(node, "us-east-1", zone, cidr))
            .await
            .unwrap();
    }
    east.create_namespace("shop").await.unwrap();
    let mut deployment = objects::deployment("shop", "greeting", "greeting", "prod");
    deployment.spec.as_mut().unwrap().replicas = Some(2);
    east.apply(&deployment).await.unwrap();
    east.apply(&objects::service("shop", "greeting", &[("http", 8080)]))
        .await
        .unwrap();

    let client = east.client();
    wait_for("two ready endpoints", || async {
        let found = endpoints(&client, "greeting").await;
        found.len() == 2 && found.iter().all(|(_, _, ready)| *ready)
    })
    .await;
    for (address, zone, _) in endpoints(&client, "greeting").await {
        let in_a = address.starts_with("10.1.1.") && zone == "us-east-1a";
        let in_b = address.starts_with("10.1.2.") && zone == "us-east-1b";
        assert!(
            in_a || in_b,
            "{address} in {zone}: not from its Node's podCIDR and zone"
        );
    }

    deployment.spec.as_mut().unwrap().replicas = Some(0);
    east.apply(&deployment).await.unwrap();
    wait_for("no ready endpoint", || async {
        endpoints(&client, "greeting")
            .await
            .iter()
            .all(|(_, _, ready)| !ready)
    })
    .await;

    env.cluster_mut("east").check_controllers().unwrap();
    let pids = env.pids();
    assert_eq!(
        pids.len(),
        5,
        "apiserver, three controllers and etcd: {pids:?}"
    );
    drop(env);
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "process {pid} outlived the environment"
        );
    }
}
