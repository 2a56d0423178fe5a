//! End to end in a real Istio: federator's objects, written into real API servers, go
//! through istiod's validation webhook and analysis, reach real Envoys (a client sidecar in
//! east, west's east-west gateway, mTLS backends standing in for pods), and real HTTP over
//! Istio mTLS follows them: the client's own zone first, then the next zone, then west
//! through west's gateway; and west's gateway never forwards to another gateway.
//!
//! One test: istiod, Envoys and the API servers take a few seconds to start, and the
//! gateway listens on 0.0.0.0:15443 (federator's Gateway binds no address), so only one
//! gateway can run on the machine at a time.

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::live::*;
use testenv::istio::{Envoy, Istiod, IstiodOptions, MeshPki, Workload, cluster_hosts, objects};
use testenv::objects::{Ep, endpoint_slice};
use testenv::{TestCluster, TestEnv};

const HOST: &str = "prod.greeting.global";
/// The client's cluster for the host, and the gateway's (named after the SNI it routes on).
const CLIENT_CLUSTER: &str = "outbound|8080||prod.greeting.global";
const SNI: &str = "outbound_.8080_._.prod.greeting.global";
const WAIT: Duration = Duration::from_secs(90);
/// Scale-to-zero-and-back rounds whose propagation into Envoy is printed.
const PROPAGATION_ROUNDS: usize = 10;

/// The test runs in its own network namespace whose loopback device holds this range (the
/// API server refuses loopback addresses for pods).
const RANGE: &str = "10.244.0.0/16";
const EAST_A: Ipv4Addr = Ipv4Addr::new(10, 244, 3, 1);
const EAST_B: Ipv4Addr = Ipv4Addr::new(10, 244, 3, 2);
const WEST_A: Ipv4Addr = Ipv4Addr::new(10, 244, 4, 1);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 1);
const WEST_GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 244, 2, 1);
/// East's gateway address: published, but no Envoy runs there. A gateway that forwarded to
/// another gateway would send traffic to it.
const EAST_GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 244, 2, 2);

/// What a cluster's controllers and Istio's install would hold: nodes per zone, the
/// east-west gateway Service (and its pod), greeting with `pods`. (Istio's network label on
/// `istio-system` comes with its istiod.)
async fn prepare_cluster(
    cluster: &TestCluster,
    region: &str,
    gateway: Ipv4Addr,
    pods: &[(Ipv4Addr, &str)],
) {
    for zone in ["a", "b"] {
        let node = testenv::objects::node(
            &format!("node-{zone}"),
            region,
            &format!("{region}{zone}"),
            "10.0.0.1",
        );
        cluster.apply(&node).await.unwrap();
    }
    cluster
        .set_gateway_address(&gateway.to_string())
        .await
        .unwrap();
    // The gateway's pod, as its Deployment would create it: istiod's analysis checks that
    // a Gateway's selector selects something. (No controller manager: its service account
    // is created here too.)
    let account = "istio-eastwestgateway-service-account";
    cluster
        .apply_json(&json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": account, "namespace": "istio-system"},
        }))
        .await
        .unwrap();
    cluster
        .apply_json(&json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "istio-eastwestgateway-x",
                "namespace": "istio-system",
                "labels": {"istio": "eastwestgateway", "app": "istio-eastwestgateway"},
            },
            "spec": {
                "nodeName": "node-a",
                "serviceAccountName": account,
                "automountServiceAccountToken": false,
                "containers": [{"name": "istio-proxy", "image": "istio/proxyv2",
                    "ports": [{"containerPort": 15443, "name": "tls"}]}],
            },
        }))
        .await
        .unwrap();
    cluster.create_namespace("sample").await.unwrap();
    cluster
        .apply(&testenv::objects::deployment(
            "sample", "greeting", "greeting", "prod",
        ))
        .await
        .unwrap();
    cluster
        .apply(&testenv::objects::service(
            "sample",
            "greeting",
            &[("http", 8080)],
        ))
        .await
        .unwrap();
    set_pods(cluster, region, pods, true).await;
}

/// greeting's EndpointSlice: `pods` (address, zone letter), all ready or all not.
async fn set_pods(cluster: &TestCluster, region: &str, pods: &[(Ipv4Addr, &str)], ready: bool) {
    let ips: Vec<(String, String, String)> = pods
        .iter()
        .map(|(ip, zone)| {
            (
                ip.to_string(),
                format!("node-{zone}"),
                format!("{region}{zone}"),
            )
        })
        .collect();
    let eps: Vec<Ep<'_>> = ips
        .iter()
        .map(|(ip, node, zone)| Ep {
            ip,
            node,
            zone,
            ready,
        })
        .collect();
    cluster
        .apply(&endpoint_slice(
            "sample",
            "greeting",
            &[("http", 8080)],
            &eps,
        ))
        .await
        .unwrap();
}

fn federator_objects() -> [Value; 3] {
    let meta = |name: &str| json!({"name": name, "namespace": "federator-sync"});
    [
        json!({"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": meta(HOST)}),
        json!({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": meta(HOST)}),
        json!({"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": meta("federator-eastwest")}),
    ]
}

/// `(address, port, region, zone, priority)` of each host of `cluster` in `/clusters`.
fn hosts(clusters: &Value, cluster: &str) -> Vec<(String, u64, String, String, u64)> {
    let mut out: Vec<_> = cluster_hosts(clusters, cluster)
        .into_iter()
        .map(|h| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (
                text(&h["address"]["socket_address"]["address"]),
                h["address"]["socket_address"]["port_value"]
                    .as_u64()
                    .unwrap_or(0),
                text(&h["locality"]["region"]),
                text(&h["locality"]["zone"]),
                h["priority"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    out.sort_by_key(|h| (h.4, h.0.clone()));
    out
}

fn addresses(clusters: &Value, cluster: &str) -> Vec<String> {
    hosts(clusters, cluster).into_iter().map(|h| h.0).collect()
}

/// Sends requests until `backend` answers; returns how many failed before (answers from
/// another backend are not failures: they are traffic that has not moved yet).
async fn failed_until_answer_from(client: &Envoy, backend: &str) -> usize {
    let started = Instant::now();
    let mut failed = 0;
    loop {
        match client.get(8080, HOST, "/").await {
            Ok(r) if r.status == 200 && r.body.trim() == backend => return failed,
            Ok(r) if r.status == 200 => {}
            _ => failed += 1,
        }
        assert!(
            started.elapsed() < WAIT,
            "{backend} never answered ({failed} failures)\nclient log:\n{}",
            client.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The next `n` answers all come from `backend`.
async fn all_answers_from(client: &Envoy, backend: &str, n: usize) {
    for _ in 0..n {
        let response = client.get(8080, HOST, "/").await.unwrap();
        assert_eq!((response.status, response.body.trim()), (200, backend));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federated_config_routes_real_traffic_in_a_real_istio() {
    if !testenv::netns::rerun_in_private_network(
        "federated_config_routes_real_traffic_in_a_real_istio",
        RANGE,
    ) {
        return;
    }
    let env = TestEnv::start(&["config", "east", "west"]).await.unwrap();
    let (east, west) = (env.cluster("east"), env.cluster("west"));
    let pki = MeshPki::new().unwrap();
    let mut east_options = IstiodOptions::new("network-east", pki.cluster_ca("east").unwrap());
    east_options.analysis = true;
    let mut west_options = IstiodOptions::new("network-west", pki.cluster_ca("west").unwrap());
    west_options.analysis = true;
    let (istiod_east, istiod_west) = tokio::try_join!(
        Istiod::start(east, east_options),
        Istiod::start(west, west_options),
    )
    .unwrap();
    // Every write federator makes goes through istiod's validation webhook.
    tokio::try_join!(
        istiod_east.register_validation_webhook(),
        istiod_west.register_validation_webhook()
    )
    .unwrap();
    prepare_cluster(
        east,
        "us-east-1",
        EAST_GATEWAY,
        &[(EAST_A, "a"), (EAST_B, "b")],
    )
    .await;
    prepare_cluster(west, "us-west-2", WEST_GATEWAY, &[(WEST_A, "a")]).await;
    // No network annotation on the Secrets: federator takes Istio's own network names.
    register(&env, &["east", "west"]).await;
    let federator = Federator::start(&env, Duration::from_secs(600)).await;
    let west_gateway = WEST_GATEWAY.to_string();
    eventually("federated", || async {
        endpoints(east, HOST).await
            == [EAST_A.to_string(), EAST_B.to_string(), west_gateway.clone()]
    })
    .await;

    // istiod accepted every object (the webhook let them in) and its analysis, which does
    // flag a VirtualService bound to a missing Gateway, says nothing about them.
    for (cluster, istiod) in [(east, &istiod_east), (west, &istiod_west)] {
        let dangling = json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "dangling", "namespace": "sample"},
            "spec": {"hosts": ["dangling.example"], "gateways": ["istio-system/missing"],
                "http": [{"route": [{"destination": {"host": "dangling.example"}}]}]},
        });
        cluster.apply_json(&dangling).await.unwrap();
        eventually("analysis ran", || async {
            let messages = istiod.validation_messages(&dangling).await.unwrap();
            messages.iter().any(|m| m["type"]["code"] == "IST0101")
        })
        .await;
        for object in federator_objects() {
            let stored = cluster.get_json(&object).await.unwrap();
            let stored = stored.unwrap_or_else(|| panic!("{} has no {object}", cluster.name()));
            assert_eq!(istiod.validate(&stored).await, Ok(()), "{stored}");
            let messages = istiod.validation_messages(&object).await.unwrap();
            assert!(
                messages.is_empty(),
                "{}: {messages:?} on {object}",
                cluster.name()
            );
        }
    }

    let backend = |name: &str, ip, region, zone| {
        Workload::new("sample", name, ip)
            .with_service_account("greeting")
            .in_locality(region, zone)
    };
    let client = Workload::new("sample", "client", CLIENT).in_locality("us-east-1", "us-east-1a");
    east.apply_json(&objects::sidecar_egress(&client, 8080))
        .await
        .unwrap();
    let gateway = objects::eastwest_gateway_workload(WEST_GATEWAY, "us-west-2", "us-west-2a");
    let pods = [
        backend("greeting-east-a", EAST_A, "us-east-1", "us-east-1a"),
        backend("greeting-east-b", EAST_B, "us-east-1", "us-east-1b"),
        backend("greeting-west-a", WEST_A, "us-west-2", "us-west-2a"),
    ];
    let (mut east_a, mut east_b, mut west_a, gateway, client) = tokio::try_join!(
        Envoy::backend(&istiod_east, &pods[0], 8080),
        Envoy::backend(&istiod_east, &pods[1], 8080),
        Envoy::backend(&istiod_west, &pods[2], 8080),
        Envoy::gateway(&istiod_west, &gateway),
        Envoy::sidecar(&istiod_east, &client),
    )
    .unwrap();

    // The client's Envoy: each pod its own host in its own zone, the remote cluster once
    // through its gateway; priorities by locality (own zone, own region, elsewhere).
    let clusters = client
        .wait_for("/clusters?format=json", WAIT, |json| {
            cluster_hosts(json, CLIENT_CLUSTER).len() == 3
        })
        .await
        .unwrap();
    assert_eq!(
        hosts(&clusters, CLIENT_CLUSTER),
        [
            (
                EAST_A.to_string(),
                8080,
                "us-east-1".into(),
                "us-east-1a".into(),
                0
            ),
            (
                EAST_B.to_string(),
                8080,
                "us-east-1".into(),
                "us-east-1b".into(),
                1
            ),
            (
                west_gateway.clone(),
                15443,
                "us-west-2".into(),
                String::new(),
                2
            ),
        ]
    );
    let dump = client.admin_json("/config_dump").await.unwrap();
    let cluster = dump["configs"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| {
            c["dynamic_active_clusters"]
                .as_array()
                .into_iter()
                .flatten()
        })
        .find(|c| c["cluster"]["name"] == CLIENT_CLUSTER)
        .map(|c| c["cluster"].clone())
        .expect("client cluster in config_dump");
    assert_eq!(
        cluster["outlier_detection"]["consecutive_5xx"], 5,
        "{cluster}"
    );
    let text = cluster.to_string();
    assert!(text.contains(&format!("\"sni\":\"{SNI}\"")), "{text}");
    assert!(text.contains("\"istio\""), "ALPN istio: {text}");

    // West's gateway routes the SNI to west's pod only: never to another gateway.
    let gateway_clusters = gateway
        .wait_for("/clusters?format=json", WAIT, |json| {
            !cluster_hosts(json, SNI).is_empty()
        })
        .await
        .unwrap();
    assert_eq!(addresses(&gateway_clusters, SNI), [WEST_A.to_string()]);

    // A change in west reaches the client's Envoy in east: west scaled to zero leaves it,
    // scaled back it returns. Repeated for the propagation figures in BENCHMARKS.md.
    let mut samples = Vec::new();
    for _ in 0..PROPAGATION_ROUNDS {
        let changed = Instant::now();
        set_pods(west, "us-west-2", &[(WEST_A, "a")], false).await;
        client
            .wait_for("/clusters?format=json", WAIT, |json| {
                addresses(json, CLIENT_CLUSTER) == [EAST_A.to_string(), EAST_B.to_string()]
            })
            .await
            .unwrap();
        samples.push(changed.elapsed());
        let changed = Instant::now();
        set_pods(west, "us-west-2", &[(WEST_A, "a")], true).await;
        client
            .wait_for("/clusters?format=json", WAIT, |json| {
                cluster_hosts(json, CLIENT_CLUSTER).len() == 3
            })
            .await
            .unwrap();
        samples.push(changed.elapsed());
    }
    samples.sort();
    eprintln!(
        "propagation west -> east's Envoy over {} changes: p50 {:?}, p99 {:?}, max {:?}",
        samples.len(),
        samples[samples.len() / 2],
        samples[(samples.len() * 99).div_ceil(100) - 1],
        samples[samples.len() - 1]
    );

    // Real traffic: the pod in the client's own zone answers every request...
    assert_eq!(
        failed_until_answer_from(&client, "greeting-east-a").await,
        0
    );
    all_answers_from(&client, "greeting-east-a", 10).await;
    // ... its zone dies: the next zone of the same cluster, not the remote one ...
    east_a.kill();
    let failed = failed_until_answer_from(&client, "greeting-east-b").await;
    eprintln!("dead zone: {failed} failed requests before the next zone answered");
    all_answers_from(&client, "greeting-east-b", 10).await;
    // ... the whole local cluster dies: west, through west's gateway, over mTLS.
    east_b.kill();
    let failed = failed_until_answer_from(&client, "greeting-west-a").await;
    eprintln!("dead cluster: {failed} failed requests before west answered");
    all_answers_from(&client, "greeting-west-a", 10).await;
    let forwarded = gateway
        .stat(&format!("cluster.{SNI};.upstream_cx_total"))
        .await
        .unwrap();
    assert!(forwarded > 0, "west's gateway forwarded nothing");

    // West's pod dies too: the gateway has nowhere local to send it and fails the request
    // rather than forward it to east's gateway.
    west_a.kill();
    let mut refused = 0;
    for _ in 0..5 {
        let response = client.get(8080, HOST, "/").await;
        if response.as_ref().map_or(true, |r| r.status != 200) {
            refused += 1;
        }
    }
    assert_eq!(refused, 5, "no backend is alive anywhere");
    // The proof that nothing bounced: the gateway's only upstream is west's own pod.
    let gateway_clusters = gateway.clusters().await.unwrap();
    assert_eq!(addresses(&gateway_clusters, SNI), [WEST_A.to_string()]);
    let tried = gateway
        .stat(&format!("cluster.{SNI};.upstream_cx_connect_fail"))
        .await
        .unwrap();
    assert!(
        tried > 0,
        "the gateway tried west's dead pod, and only that"
    );

    // A distribute policy becomes Envoy's locality weights.
    east.apply_json(&json!({
        "apiVersion": "federator.io/v1alpha1",
        "kind": "GlobalTrafficPolicy",
        "metadata": {"name": "greeting", "namespace": "sample"},
        "spec": {"identity": "greeting", "env": "prod", "mode": "distribute",
            "distribute": [{"region": "us-east-1", "weight": 90}, {"region": "us-west-2", "weight": 10}]},
    }))
    .await
    .unwrap();
    let weights = |dump: &Value| -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = dump["configs"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| {
                c["dynamic_endpoint_configs"]
                    .as_array()
                    .into_iter()
                    .flatten()
            })
            .filter(|e| e["endpoint_config"]["cluster_name"] == CLIENT_CLUSTER)
            .flat_map(|e| {
                e["endpoint_config"]["endpoints"]
                    .as_array()
                    .into_iter()
                    .flatten()
            })
            .map(|l| {
                let locality = format!(
                    "{}/{}",
                    l["locality"]["region"].as_str().unwrap_or_default(),
                    l["locality"]["zone"].as_str().unwrap_or_default()
                );
                (locality, l["load_balancing_weight"].as_u64().unwrap_or(0))
            })
            .collect();
        out.sort();
        out
    };
    let dump = client
        .wait_for("/config_dump?include_eds", WAIT, |dump| {
            weights(dump).iter().map(|w| w.1).sum::<u64>() == 100
        })
        .await
        .unwrap();
    assert_eq!(
        weights(&dump),
        [
            ("us-east-1/us-east-1a".into(), 45),
            ("us-east-1/us-east-1b".into(), 45),
            ("us-west-2/".into(), 10),
        ]
    );
    federator.stop().await;
}
