//! End to end against real API servers: mistakes in a cluster's mesh setup (a network label
//! that contradicts the Secret, an east-west gateway without address, a user's Gateway that
//! already claims the global hosts) are each reported by name with an Event on the object to
//! fix, and nothing else changes for any other cluster.

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use federator::istio::Gateway;
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::ListParams;
use serde_json::json;
use support::live::*;
use testenv::{TestCluster, TestEnv};

const HOST: &str = "prod.greeting.global";

/// Whether any Event in `cluster` is about `kind` `name`, with `reason` and `words`.
async fn event_on(
    cluster: &TestCluster,
    kind: &str,
    name: &str,
    reason: &str,
    words: &str,
) -> bool {
    let events: Api<Event> = Api::all(cluster.client());
    events
        .list(&ListParams::default())
        .await
        .map(|list| {
            list.items.iter().any(|e| {
                e.involved_object.kind.as_deref() == Some(kind)
                    && e.involved_object.name.as_deref() == Some(name)
                    && e.reason.as_deref() == Some(reason)
                    && e.message.as_deref().unwrap_or_default().contains(words)
            })
        })
        .unwrap_or(false)
}

async fn eastwest_gateway(cluster: &TestCluster) -> Option<Gateway> {
    Api::<Gateway>::namespaced(cluster.client(), "federator-sync")
        .get_opt("federator-eastwest")
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_setup_mistakes_are_reported_where_they_are() {
    let env = TestEnv::start(&["config", "east", "west", "south"])
        .await
        .unwrap();
    let (east, west, south) = (
        env.cluster("east"),
        env.cluster("west"),
        env.cluster("south"),
    );
    for c in [east, west, south] {
        prepare(c).await;
    }
    // east: Istio says network-east, its Secret says otherwise.
    east.label_network("network-east").await.unwrap();
    // west: a user's Gateway already passes *.global on 15443 (with Istio's *.local).
    west.label_network("network-west").await.unwrap();
    let theirs = json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "cross-network-gateway", "namespace": "istio-system"},
        "spec": {
            "selector": {"istio": "eastwestgateway"},
            "servers": [{
                "port": {"number": 15443, "name": "tls", "protocol": "TLS"},
                "tls": {"mode": "AUTO_PASSTHROUGH"},
                "hosts": ["*.local", "*.global"],
            }],
        },
    });
    west.apply_json(&theirs).await.unwrap();
    // south: its gateway Service is a plain ClusterIP Service: no address other clusters
    // could reach (no load balancer, no external IP, no NodePort).
    let south_gw: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(south.client(), "istio-system");
    south_gw
        .patch_status(
            "istio-eastwestgateway",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"status": {"loadBalancer": {"ingress": null}}})),
        )
        .await
        .unwrap();
    south_gw
        .patch(
            "istio-eastwestgateway",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"type": "ClusterIP"}})),
        )
        .await
        .unwrap();

    let config = env.cluster("config");
    config.create_namespace(NAMESPACE).await.unwrap();
    let mut east_secret =
        cluster_secret("cluster-east", &[("east", east.kubeconfig_text().unwrap())]);
    east_secret.metadata.annotations = Some(BTreeMap::from([(
        "federator.io/network".to_owned(),
        "east-by-secret".to_owned(),
    )]));
    config.apply(&east_secret).await.unwrap();
    register(&env, &["west", "south"]).await;
    for c in [east, west, south] {
        deploy(c, "greeting", 1, 0).await;
    }
    let federator = Federator::start(&env, Duration::from_secs(600)).await;
    let (_, east_gw) = topology("east");
    let (_, west_gw) = topology("west");

    // Everything else is federated as usual; south, unreachable from elsewhere, is left out.
    eventually("greeting federated", || async {
        endpoints(west, HOST).await == ["10.1.0.10", east_gw]
            && endpoints(south, HOST).await == ["10.1.0.10", east_gw, west_gw]
    })
    .await;
    // The Secret's network wins over Istio's label, and the disagreement is reported.
    let se = service_entry(west, HOST).await.unwrap();
    assert_eq!(
        se.spec.endpoints[1].network.as_deref(),
        Some("east-by-secret")
    );
    eventually("network mismatch reported on istio-system", || {
        event_on(
            east,
            "Namespace",
            "istio-system",
            "NetworkMismatch",
            "east-by-secret",
        )
    })
    .await;
    let west_se = service_entry(south, HOST).await.unwrap();
    assert_eq!(
        west_se.spec.endpoints[2].network.as_deref(),
        Some("network-west"),
        "without an override, Istio's label names the network"
    );

    eventually("south's gateway without address reported", || {
        event_on(
            south,
            "Service",
            "istio-eastwestgateway",
            "GatewayWithoutAddress",
            "has no address",
        )
    })
    .await;
    eventually("the user's Gateway reported", || {
        event_on(
            west,
            "Gateway",
            "cross-network-gateway",
            "GlobalHostsClaimed",
            "*.global",
        )
    })
    .await;

    // federator's own Gateway: in east, not in west (the user's wins), in south (it has a
    // gateway Service, just no address yet).
    eventually("east has federator's Gateway", || async {
        eastwest_gateway(east).await.is_some()
    })
    .await;
    assert!(eastwest_gateway(south).await.is_some());
    assert!(eastwest_gateway(west).await.is_none());
    let users = west.get_json(&theirs).await.unwrap().unwrap();
    assert_eq!(
        users["spec"]["servers"][0]["hosts"],
        json!(["*.local", "*.global"])
    );
    assert_eq!(
        users["metadata"]["managedFields"].as_array().map(Vec::len),
        Some(1),
        "only its owner ever wrote the user's Gateway"
    );

    // The user narrows their Gateway to *.local: federator's takes over in west.
    let mut narrowed = theirs.clone();
    narrowed["spec"]["servers"][0]["hosts"] = json!(["*.local"]);
    west.apply_json(&narrowed).await.unwrap();
    eventually("west gets federator's Gateway", || async {
        eastwest_gateway(west).await.is_some()
    })
    .await;
    federator.stop().await;
}
