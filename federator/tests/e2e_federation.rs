//! End to end against real API servers: federator registered clusters from Secrets, follows
//! workloads, and writes the right ServiceEntries and DestinationRules everywhere.

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use federator::istio::DestinationRule;
use kube::Api;
use support::live::*;
use support::writes::{assert_nothing_written, record_writes_in};
use testenv::TestEnv;

const HOST: &str = "prod.greeting.global";
/// The pod `deploy(.., 1, 0)` gives greeting: local clients reach it directly.
const LOCAL: &str = "10.1.0.10";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_are_federated_to_every_cluster() {
    let env = TestEnv::start(&["config", "east", "west"]).await.unwrap();
    for c in env.clusters() {
        prepare(c).await;
    }
    // The config cluster registers itself too.
    register(&env, &["config", "east", "west"]).await;
    let federator = Federator::start(&env, Duration::from_secs(600)).await;
    // Without an election it is the only writer, and says it leads.
    assert_eq!(federator.metric("federator_leader", &[]).await, 1.0);
    let (config, east, west) = (
        env.cluster("config"),
        env.cluster("east"),
        env.cluster("west"),
    );
    let (_, east_gw) = topology("east");
    let (_, west_gw) = topology("west");

    // greeting in east: every cluster gets it, east pod by pod, the others via east's gateway.
    deploy(east, "greeting", 2, 0).await;
    let east_pods = [LOCAL, "10.1.0.11"];
    eventually("greeting in every cluster", || async {
        endpoints(east, HOST).await == east_pods
            && endpoints(west, HOST).await == [east_gw]
            && endpoints(config, HOST).await == [east_gw]
    })
    .await;
    let se = service_entry(west, HOST).await.unwrap();
    let ep = &se.spec.endpoints[0];
    assert_eq!(ep.ports.get("http"), Some(&15443));
    assert_eq!(
        ep.locality.as_deref(),
        Some("us-east-1"),
        "the gateway's locality"
    );
    assert_eq!(ep.network.as_deref(), Some("east"));
    assert_eq!(ep.weight, Some(2));
    let vip = se.spec.addresses.clone();
    assert_eq!(
        service_entry(east, HOST).await.unwrap().spec.addresses,
        vip,
        "one VIP everywhere"
    );
    let drs: Api<DestinationRule> = Api::namespaced(west.client(), "federator-sync");
    eventually("west has the DestinationRule", || async {
        drs.get_opt(HOST).await.unwrap().is_some()
    })
    .await;
    let dr = drs.get(HOST).await.unwrap();
    assert!(dr.spec.traffic_policy.unwrap().outlier_detection.is_some());

    // The same identity in west: both clusters serve it.
    deploy(west, "greeting", 1, 0).await;
    eventually("greeting served from east and west", || async {
        endpoints(east, HOST).await == [LOCAL, "10.1.0.11", west_gw]
            && endpoints(west, HOST).await == [LOCAL, east_gw]
            && endpoints(config, HOST).await == [east_gw, west_gw]
    })
    .await;

    // west loses its ready endpoints: nobody is sent there.
    scale(west, "greeting", 0, 1, "us-west-2").await;
    eventually("west withdrawn", || async {
        endpoints(east, HOST).await == east_pods
            && endpoints(config, HOST).await == [east_gw]
            && endpoints(west, HOST).await == [east_gw]
    })
    .await;

    // east's deployment goes; west has no ready endpoint: the objects go everywhere.
    east.delete(&testenv::objects::deployment(
        "sample", "greeting", "greeting", "prod",
    ))
    .await
    .unwrap();
    eventually("greeting gone everywhere", || async {
        service_entry(east, HOST).await.is_none()
            && service_entry(west, HOST).await.is_none()
            && service_entry(config, HOST).await.is_none()
    })
    .await;
    eventually("both kinds deleted in all three clusters", || async {
        federator
            .metric("federator_writes_total", &[("operation", "delete")])
            .await
            == 6.0
    })
    .await;
    assert!(
        federator
            .metric("federator_propagation_seconds_count", &[])
            .await
            > 0.0
    );
    federator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_are_added_and_removed_at_run_time() {
    let env = fleet(&["config", "east", "west"], &["east"]).await;
    let federator = Federator::start(&env, Duration::from_secs(600)).await;
    let (east, west) = (env.cluster("east"), env.cluster("west"));
    deploy(east, "greeting", 1, 0).await;
    deploy(west, "greeting", 1, 0).await;
    eventually("east federated alone", || async {
        endpoints(east, HOST).await == [LOCAL]
    })
    .await;
    assert!(
        service_entry(west, HOST).await.is_none(),
        "west is not registered yet"
    );

    // Register west at run time: it gets the full config and its backends join.
    register(&env, &["west"]).await;
    let (_, east_gw) = topology("east");
    let (_, west_gw) = topology("west");
    eventually("west joined", || async {
        endpoints(west, HOST).await == [LOCAL, east_gw]
            && endpoints(east, HOST).await == [LOCAL, west_gw]
    })
    .await;

    // Delete west's Secret: its backends leave east's config.
    env.cluster("config")
        .delete(&cluster_secret("cluster-west", &[]))
        .await
        .unwrap();
    eventually("west's backends withdrawn", || async {
        endpoints(east, HOST).await == [LOCAL]
    })
    .await;
    federator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_without_its_vip_store_keeps_the_vips_its_service_entries_hold() {
    let env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    deploy(env.cluster("east"), "greeting", 1, 0).await;
    // An address no fresh allocation starts with: the first run takes it from the store.
    let state: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(env.cluster("config").client(), NAMESPACE);
    env.cluster("config")
        .apply_json(&serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "federator-state", "namespace": NAMESPACE},
            "data": {"vips": format!("{HOST} 240.0.0.77\n")},
        }))
        .await
        .unwrap();
    let first = Federator::start(&env, Duration::from_secs(600)).await;
    let west = env.cluster("west");
    eventually("west's ServiceEntry with the stored VIP", || async {
        service_entry(west, HOST)
            .await
            .is_some_and(|se| se.spec.addresses == ["240.0.0.77"])
    })
    .await;
    first.fully_reconciled(&["east", "west"]).await;
    first.stop().await;

    // The store is lost; the ServiceEntries remain. They are read back beside the clusters'
    // first lists, and no cluster's objects reach the registry before them: the host must
    // not get a fresh address first.
    state
        .delete("federator-state", &Default::default())
        .await
        .unwrap();
    let seen = record_writes_in(&[env.cluster("east"), west]).await;
    let second = Federator::start(&env, Duration::from_secs(600)).await;
    second.fully_reconciled(&["east", "west"]).await;
    assert_nothing_written(&seen);
    assert_eq!(
        service_entry(west, HOST).await.unwrap().spec.addresses,
        ["240.0.0.77"],
        "the VIP read back from the ServiceEntries"
    );
    assert_eq!(
        second.metric("federator_writes_total", &[]).await,
        0.0,
        "nothing rewritten"
    );
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_against_unchanged_clusters_writes_nothing() {
    let env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    deploy(env.cluster("east"), "greeting", 2, 0).await;
    deploy(env.cluster("west"), "catalog", 1, 0).await;
    let first = Federator::start(&env, Duration::from_secs(600)).await;
    eventually("converged", || async {
        endpoints(env.cluster("west"), HOST).await.len() == 1
            && endpoints(env.cluster("east"), "prod.catalog.global")
                .await
                .len()
                == 1
    })
    .await;
    first.fully_reconciled(&["east", "west"]).await;
    let vip = service_entry(env.cluster("west"), HOST)
        .await
        .unwrap()
        .spec
        .addresses;
    first.stop().await;

    let seen = record_writes_in(&[env.cluster("east"), env.cluster("west")]).await;
    let second = Federator::start(&env, Duration::from_secs(600)).await;
    // Once both writers finished a full pass (read everything, compared, converged), nothing
    // may have been written.
    second.fully_reconciled(&["east", "west"]).await;
    assert_nothing_written(&seen);
    assert_eq!(
        second.metric("federator_writes_total", &[]).await,
        0.0,
        "a no-op restart writes nothing"
    );
    assert_eq!(
        service_entry(env.cluster("west"), HOST)
            .await
            .unwrap()
            .spec
            .addresses,
        vip,
        "VIPs survive restarts"
    );
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_names_resolve_with_dig() {
    let env = TestEnv::start(&["config", "east"]).await.unwrap();
    prepare(env.cluster("east")).await;
    register(&env, &["east"]).await;
    let federator = Federator::start(&env, Duration::from_secs(600)).await;
    let east = env.cluster("east");
    deploy(east, "greeting", 1, 0).await;
    eventually("greeting federated", || async {
        endpoints(east, HOST).await == [LOCAL]
    })
    .await;
    let vip = service_entry(east, HOST).await.unwrap().spec.addresses;

    // The same VIP the ServiceEntries carry, over UDP and TCP, whatever the case.
    eventually("dig answers the VIP", || async {
        dig(federator.dns, HOST, &[]).await == ("NOERROR".into(), vip.clone())
    })
    .await;
    assert_eq!(
        dig(federator.dns, "PROD.Greeting.GLOBAL", &["+tcp"]).await,
        ("NOERROR".into(), vip.clone())
    );
    let (status, srv) = dig(federator.dns, &format!("_http._tcp.{HOST}"), &["SRV"]).await;
    assert_eq!(status, "NOERROR");
    assert_eq!(srv.len(), 1);
    assert!(srv[0].starts_with(HOST), "SRV target is the host: {srv:?}");

    // Not a resolver: other names are refused; unknown global names do not exist.
    assert_eq!(dig(federator.dns, "example.com", &[]).await.0, "REFUSED");
    assert_eq!(
        dig(federator.dns, "prod.nothing.global", &[]).await.0,
        "NXDOMAIN"
    );

    // The workload goes: the name goes.
    east.delete(&testenv::objects::deployment(
        "sample", "greeting", "greeting", "prod",
    ))
    .await
    .unwrap();
    eventually("NXDOMAIN once gone", || async {
        dig(federator.dns, HOST, &[]).await.0 == "NXDOMAIN"
    })
    .await;
    eventually("and the objects are withdrawn", || async {
        service_entry(east, HOST).await.is_none()
    })
    .await;
    assert!(
        federator
            .metric("federator_dns_queries_total", &[("rcode", "REFUSED")])
            .await
            >= 1.0
    );
    federator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_api_answers_what_was_written() {
    use federator::api::pb::registry_client::RegistryClient;
    use federator::api::pb::{
        ClusterState, ClusterStatusRequest, GetServiceRequest, ListServicesRequest,
    };
    use tonic::Code;

    let env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    let federator = Federator::start(&env, Duration::from_secs(600)).await;
    let (east, west) = (env.cluster("east"), env.cluster("west"));
    deploy(west, "greeting", 2, 0).await;
    eventually("greeting federated to east", || async {
        service_entry(east, HOST).await.is_some()
    })
    .await;
    let written = service_entry(east, HOST).await.unwrap().spec;
    let mut client = RegistryClient::connect(format!("http://{}", federator.grpc))
        .await
        .unwrap();

    // The service as written into east: same VIP, same ports; its backends are west's pods.
    let service = client
        .get_service(GetServiceRequest {
            host: "Prod.Greeting.GLOBAL.".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(service.host, HOST);
    assert_eq!(vec![service.vip.clone()], written.addresses);
    let ports: Vec<(String, u32)> = service
        .ports
        .iter()
        .map(|p| (p.name.clone(), p.number))
        .collect();
    let written_ports: Vec<(String, u32)> = written
        .ports
        .iter()
        .map(|p| (p.name.clone(), p.number))
        .collect();
    assert_eq!(ports, written_ports);
    assert!(service.serving);
    assert_eq!(service.backends.len(), 1, "{service:?}");
    assert_eq!(service.backends[0].cluster, "west");
    assert_eq!(service.backends[0].endpoints.len(), 2);

    // Filters: by cluster, identity and namespace; every field set must match.
    let lister = client.clone();
    let list = |filter: ListServicesRequest| {
        let mut client = lister.clone();
        async move { client.list_services(filter).await }
    };
    let hosts = |r: Result<tonic::Response<federator::api::pb::ListServicesResponse>, _>| {
        let r: tonic::Response<_> = r.unwrap();
        r.into_inner()
            .services
            .into_iter()
            .map(|s| s.host)
            .collect::<Vec<_>>()
    };
    let all = ListServicesRequest::default();
    assert_eq!(hosts(list(all.clone()).await), [HOST]);
    let west_only = ListServicesRequest {
        cluster: "west".into(),
        namespace: "sample".into(),
        identity: "Greeting".into(),
        ..all.clone()
    };
    assert_eq!(hosts(list(west_only).await), [HOST]);
    let in_east = ListServicesRequest {
        cluster: "east".into(),
        ..all.clone()
    };
    assert!(hosts(list(in_east).await).is_empty());

    // Unknown hosts and malformed filters are the caller's to fix, and say which field.
    let missing = client
        .get_service(GetServiceRequest {
            host: "prod.nothing.global".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert!(
        missing.message().contains("prod.nothing.global"),
        "{missing:?}"
    );
    let malformed = list(ListServicesRequest {
        cluster: "east_1".into(),
        ..all
    })
    .await
    .unwrap_err();
    assert_eq!(malformed.code(), Code::InvalidArgument);
    assert!(
        malformed.message().starts_with("cluster: "),
        "{malformed:?}"
    );

    // Every registered cluster's state, and what federator has of it.
    let clusters = client
        .cluster_status(ClusterStatusRequest::default())
        .await
        .unwrap()
        .into_inner()
        .clusters;
    let names: Vec<&str> = clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["east", "west"]);
    for cluster in &clusters {
        assert_eq!(cluster.state(), ClusterState::Synced, "{cluster:?}");
        assert!(cluster.last_error.is_empty() && cluster.degraded.is_empty());
        let (_, gateway) = topology(&cluster.name);
        assert_eq!(cluster.gateway_addresses, [format!("{gateway}:15443")]);
    }
    assert_eq!((clusters[0].hosts, clusters[0].ready_endpoints), (0, 0));
    assert_eq!((clusters[1].hosts, clusters[1].ready_endpoints), (1, 2));
    let unknown = client
        .cluster_status(ClusterStatusRequest {
            cluster: "north".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let malformed = client
        .cluster_status(ClusterStatusRequest {
            cluster: "East".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(malformed.code(), Code::InvalidArgument);

    // The standard health service says the API serves; reflection lists it (for grpcurl).
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", federator.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = tonic_health::pb::health_client::HealthClient::new(channel.clone())
        .check(tonic_health::pb::HealthCheckRequest {
            service: "federator.v1.Registry".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        health.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    assert!(
        reflected_services(channel)
            .await
            .contains(&"federator.v1.Registry".to_owned()),
        "reflection lists the API"
    );
    federator.stop().await;
}

/// The services a gRPC server lists through reflection.
async fn reflected_services(channel: tonic::transport::Channel) -> Vec<String> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sends_every_change_once_and_resumes_where_the_client_left() {
    use federator::api::pb::registry_client::RegistryClient;
    use federator::api::pb::{GetServiceRequest, WatchEvent, WatchRequest};
    use tonic::Code;

    let env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    // A history of three publications: resuming after more changes than that starts over.
    let federator = Federator::start_with(&env, |o| o.settings.registry.change_history = 3).await;
    let west = env.cluster("west");
    let (region, _) = topology("west");
    deploy(west, "greeting", 1, 0).await;
    deploy(west, "second", 1, 0).await;
    let client = RegistryClient::connect(format!("http://{}", federator.grpc))
        .await
        .unwrap();
    let ready_in_registry = |count: usize| {
        let mut client = client.clone();
        async move {
            let request = GetServiceRequest { host: HOST.into() };
            client.get_service(request).await.is_ok_and(|s| {
                let s = s.into_inner();
                s.backends.iter().map(|b| b.endpoints.len()).sum::<usize>() == count
            })
        }
    };
    eventually("both hosts in the registry", || async {
        ready_in_registry(1).await
            && client
                .clone()
                .get_service(GetServiceRequest {
                    host: "prod.second.global".into(),
                })
                .await
                .is_ok()
    })
    .await;
    let hosts = |event: &WatchEvent| -> Vec<String> {
        let mut out: Vec<String> = event.upserted.iter().map(|s| s.host.clone()).collect();
        out.extend(event.removed.iter().cloned());
        out
    };
    let watch = |from: String| {
        let mut client = client.clone();
        async move {
            client
                .watch(WatchRequest { from_version: from })
                .await
                .map(tonic::Response::into_inner)
        }
    };
    // Listing a page at a time: each token leads on, the last page has none.
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .clone()
            .list_services(federator::api::pb::ListServicesRequest {
                page_size: 1,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        pages.push(
            page.services
                .iter()
                .map(|s| s.host.clone())
                .collect::<Vec<_>>(),
        );
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(pages, [[HOST], ["prod.second.global"]]);

    // A snapshot first: it resets, and its last event carries the version.
    let mut stream = watch(String::new()).await.unwrap();
    let first = next_event(&mut stream).await;
    assert!(first.reset);
    assert!(!first.version.is_empty(), "one event holds both hosts");
    assert_eq!(hosts(&first), [HOST, "prod.second.global"]);

    // One change: only the host that changed, whole.
    scale(west, "greeting", 2, 0, region).await;
    let event = next_event(&mut stream).await;
    assert!(!event.reset);
    assert_eq!(hosts(&event), [HOST]);
    let endpoints: usize = event.upserted[0]
        .backends
        .iter()
        .map(|b| b.endpoints.len())
        .sum();
    assert_eq!(endpoints, 2);
    let left_at = event.version.clone();
    drop(stream);

    // A change while disconnected: resuming sends it, and only it.
    scale(west, "greeting", 3, 0, region).await;
    eventually("3 ready in the registry", || ready_in_registry(3)).await;
    let mut stream = watch(left_at.clone()).await.unwrap();
    let resumed = next_event(&mut stream).await;
    assert!(!resumed.reset, "{resumed:?}");
    assert_eq!(hosts(&resumed), [HOST], "second did not change");
    drop(stream);

    // More changes than the history holds while disconnected: a fresh snapshot instead.
    for ready in [1, 2, 1, 2] {
        scale(west, "greeting", ready, 0, region).await;
        eventually("the change in the registry", || ready_in_registry(ready)).await;
    }
    let mut stream = watch(left_at).await.unwrap();
    let again = next_event(&mut stream).await;
    assert!(again.reset, "too old: a snapshot");
    assert_eq!(hosts(&again), [HOST, "prod.second.global"]);

    // A version this API never gave out is the client's to fix.
    let bad = watch("nonsense".into()).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().starts_with("from_version: "), "{bad:?}");
    federator.stop().await;
}

/// The next event of a Watch stream (which must go on).
async fn next_event(
    stream: &mut tonic::Streaming<federator::api::pb::WatchEvent>,
) -> federator::api::pb::WatchEvent {
    tokio::time::timeout(Duration::from_secs(30), stream.message())
        .await
        .expect("an event within 30 s")
        .unwrap()
        .expect("the stream goes on")
}
