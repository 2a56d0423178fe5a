//! A real istiod per cluster and real Envoys: a client sidecar in east reaches the global host
//! `prod.demo.global` at east's backend, and through west's east-west gateway (mTLS
//! passthrough) at west's backend once east's backend dies. Every Istio object is written by
//! hand here, as federator would write them.

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testenv::TestEnv;
use testenv::istio::{Envoy, Istiod, IstiodOptions, MeshPki, Workload, cluster_hosts, objects};

const HOST: &str = "prod.demo.global";
const CLUSTER: &str = "outbound|8080||prod.demo.global";
const WAIT: Duration = Duration::from_secs(90);

struct Endpoint<'a> {
    ip: Ipv4Addr,
    port: u16,
    network: &'a str,
    locality: String,
}

fn service_entry(endpoints: &[Endpoint<'_>]) -> Value {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|ep| {
            json!({
                "address": ep.ip.to_string(),
                "ports": {"http": ep.port},
                "labels": {"security.istio.io/tlsMode": "istio"},
                "network": ep.network,
                "locality": ep.locality,
            })
        })
        .collect();
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "prod-demo-global", "namespace": "demo"},
        "spec": {
            "hosts": [HOST],
            "addresses": ["240.0.0.10"],
            "ports": [{"number": 8080, "protocol": "HTTP", "name": "http"}],
            "location": "MESH_INTERNAL",
            "resolution": "STATIC",
            "endpoints": endpoints,
        },
    })
}

fn destination_rule() -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "prod-demo-global", "namespace": "demo"},
        "spec": {
            "host": HOST,
            "trafficPolicy": {
                "tls": {"mode": "ISTIO_MUTUAL"},
                "outlierDetection": {
                    "consecutive5xxErrors": 1,
                    "interval": "1s",
                    "baseEjectionTime": "5m",
                    "maxEjectionPercent": 100,
                },
                "loadBalancer": {"localityLbSetting": {"enabled": true}},
            },
        },
    })
}

/// Polls `GET http://prod.demo.global/` through the client's egress listener until a backend
/// named `backend` answers 200; returns how many requests that took.
async fn wait_for_answer_from(client: &Envoy, backend: &str) -> usize {
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let answer = client.get(8080, HOST, "/").await;
        if let Ok(response) = &answer
            && response.status == 200
            && response.body.trim() == backend
        {
            return attempts;
        }
        assert!(
            started.elapsed() < WAIT,
            "no answer from {backend} after {attempts} requests; last: {answer:?}\nclient log:\n{}",
            client.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn east_fails_over_to_west_through_the_eastwest_gateway() {
    let started = Instant::now();
    let env = TestEnv::start(&["east", "west"]).await.unwrap();
    let (east, west) = (env.cluster("east"), env.cluster("west"));
    let pki = MeshPki::new().unwrap();
    // East's istiod also analyses config and writes its findings into objects' status.
    let mut east_options = IstiodOptions::new("network-east", pki.cluster_ca("east").unwrap());
    east_options.analysis = true;
    let west_options = IstiodOptions::new("network-west", pki.cluster_ca("west").unwrap());
    let (istiod_east, istiod_west) = tokio::try_join!(
        Istiod::start(east, east_options),
        Istiod::start(west, west_options),
    )
    .unwrap();
    eprintln!("clusters and istiods ready after {:?}", started.elapsed());

    for cluster in [east, west] {
        cluster.create_namespace("demo").await.unwrap();
    }
    // istiod's validation webhook guards Istio config in both clusters.
    tokio::try_join!(
        istiod_east.register_validation_webhook(),
        istiod_west.register_validation_webhook()
    )
    .unwrap();
    let mut broken = service_entry(&[]);
    broken["spec"]["endpoints"] = json!([{"address": "not-an-ip.example"}]);
    let denied = east.dry_run_create(&broken).await.unwrap_err();
    assert!(denied.contains("denied the request"), "{denied}");
    let reason = istiod_east.validate(&broken).await.unwrap_err();
    assert!(!reason.is_empty());
    assert_eq!(istiod_west.validate(&destination_rule()).await, Ok(()));
    eprintln!("istiod's webhook says: {denied}");

    // istiod's analysis flags a VirtualService bound to a Gateway that does not exist.
    let dangling = json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "dangling", "namespace": "demo"},
        "spec": {
            "hosts": [HOST],
            "gateways": ["istio-system/missing"],
            "http": [{"route": [{"destination": {"host": HOST}}]}],
        },
    });
    east.apply_json(&dangling).await.unwrap();
    let analysed = Instant::now();
    loop {
        let messages = istiod_east.validation_messages(&dangling).await.unwrap();
        if messages.iter().any(|m| m["type"]["code"] == "IST0101") {
            break;
        }
        assert!(
            analysed.elapsed() < WAIT,
            "no IST0101 on the VirtualService: {messages:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    east.delete_json(&dangling).await.unwrap();

    let client = Workload::new("demo", "client", Ipv4Addr::new(127, 0, 1, 1))
        .in_locality("us-east-1", "us-east-1a");
    let backend_east = Workload::new("demo", "backend-east", Ipv4Addr::new(127, 0, 3, 1))
        .with_service_account("prod")
        .in_locality("us-east-1", "us-east-1a");
    let backend_west = Workload::new("demo", "backend-west", Ipv4Addr::new(127, 0, 4, 1))
        .with_service_account("prod")
        .in_locality("us-west-2", "us-west-2a");
    let gateway_ip = Ipv4Addr::new(127, 0, 2, 1);
    let gateway = objects::eastwest_gateway_workload(gateway_ip, "us-west-2", "us-west-2a");

    let east_se = service_entry(&[
        Endpoint {
            ip: backend_east.ip,
            port: 8080,
            network: "network-east",
            locality: backend_east.locality(),
        },
        Endpoint {
            ip: gateway_ip,
            port: objects::EASTWEST_PORT,
            network: "network-west",
            locality: "us-west-2".into(),
        },
    ]);
    let west_se = service_entry(&[Endpoint {
        ip: backend_west.ip,
        port: 8080,
        network: "network-west",
        locality: backend_west.locality(),
    }]);
    for (cluster, se) in [(east, &east_se), (west, &west_se)] {
        cluster.apply_json(se).await.unwrap();
        cluster.apply_json(&destination_rule()).await.unwrap();
    }
    east.apply_json(&objects::sidecar_egress(&client, 8080))
        .await
        .unwrap();
    west.apply_json(&objects::eastwest_gateway(&["*.global"], Some(gateway_ip)))
        .await
        .unwrap();

    let (mut east_backend, west_backend, gateway, client) = tokio::try_join!(
        Envoy::backend(&istiod_east, &backend_east, 8080),
        Envoy::backend(&istiod_west, &backend_west, 8080),
        Envoy::gateway(&istiod_west, &gateway),
        Envoy::sidecar(&istiod_east, &client),
    )
    .unwrap();
    eprintln!("envoys ready after {:?}", started.elapsed());

    // The client sees both endpoints: east's backend first (same zone), west's gateway as
    // the failover priority.
    let clusters = client
        .wait_for("/clusters?format=json", WAIT, |json| {
            cluster_hosts(json, CLUSTER).len() == 2
        })
        .await
        .unwrap();
    let hosts = cluster_hosts(&clusters, CLUSTER);
    let host = |ip: &str| {
        *hosts
            .iter()
            .find(|h| h["address"]["socket_address"]["address"] == ip)
            .unwrap_or_else(|| panic!("no host {ip} in {hosts:?}"))
    };
    let (local, remote) = (host("127.0.3.1"), host("127.0.2.1"));
    assert_eq!(local["address"]["socket_address"]["port_value"], 8080);
    assert_eq!(remote["address"]["socket_address"]["port_value"], 15443);
    assert_eq!(local["locality"]["region"], "us-east-1");
    assert_eq!(local["locality"]["zone"], "us-east-1a");
    assert_eq!(remote["locality"]["region"], "us-west-2");
    assert_eq!(local["priority"].as_u64().unwrap_or(0), 0, "{local}");
    assert!(remote["priority"].as_u64().unwrap_or(0) > 0, "{remote}");

    // The gateway forwards SNI outbound_.8080_._.prod.demo.global to west's backend.
    gateway
        .wait_for("/clusters?format=json", WAIT, |json| {
            cluster_hosts(json, "outbound_.8080_._.prod.demo.global")
                .iter()
                .any(|h| h["address"]["socket_address"]["address"] == "127.0.4.1")
        })
        .await
        .unwrap();
    gateway
        .wait_for_listener("127.0.2.1_15443", WAIT)
        .await
        .unwrap();

    // Real requests: east's backend answers while it lives ...
    wait_for_answer_from(&client, "backend-east").await;
    for _ in 0..5 {
        let response = client.get(8080, HOST, "/").await.unwrap();
        assert_eq!(
            (response.status, response.body.trim()),
            (200, "backend-east")
        );
    }
    // ... and once it is dead, west's answers through west's gateway (mTLS passthrough).
    east_backend.kill();
    let attempts = wait_for_answer_from(&client, "backend-west").await;
    eprintln!("failover after {attempts} requests");
    for _ in 0..5 {
        let response = client.get(8080, HOST, "/").await.unwrap();
        assert_eq!(
            (response.status, response.body.trim()),
            (200, "backend-west")
        );
    }

    // Those answers crossed west's gateway, over mTLS from the client to west's backend.
    let through_gateway = gateway
        .stat("cluster.outbound_.8080_._.prod.demo.global;.upstream_cx_total")
        .await
        .unwrap();
    assert!(through_gateway > 0, "the gateway forwarded no connection");
    let handshakes = client
        .stat("cluster.outbound|8080||prod.demo.global;.ssl.handshake")
        .await
        .unwrap();
    assert!(
        handshakes >= 2,
        "{handshakes} mTLS handshakes from the client"
    );

    let mib = |bytes: Option<u64>| bytes.unwrap_or(0) / (1024 * 1024);
    eprintln!(
        "RSS MiB: istiod east {} west {}; envoy client {} gateway {} backend {}; total run {:?}",
        mib(istiod_east.rss_bytes()),
        mib(istiod_west.rss_bytes()),
        mib(client.rss_bytes()),
        mib(gateway.rss_bytes()),
        mib(west_backend.rss_bytes()),
        started.elapsed()
    );
}
