//! The fault suite (issue 10), end to end on real API servers: what real fleets do weekly must
//! never make federator write something wrong. Each test watches what the API servers saw.

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use federator::istio::ServiceEntry;
use kube::Api;
use kube::api::DeleteParams;
use support::live::*;
use support::writes::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_moved_to_another_secret_withdraws_nothing() {
    let env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    deploy(env.cluster("west"), "greeting", 1, 0).await;
    let federator = Federator::start(&env, Duration::from_secs(600)).await;
    let east = env.cluster("east");
    eventually("east gets west's host", || async {
        service_entry(east, "prod.greeting.global").await.is_some()
    })
    .await;
    let writes = record_writes(east).await;

    // The GitOps way of moving a key: the new Secret first, then the old one goes.
    let config = env.cluster("config");
    let kubeconfig = env.cluster("west").kubeconfig_text().unwrap();
    config
        .apply(&cluster_secret("fleet-west", &[("west", kubeconfig)]))
        .await
        .unwrap();
    eventually(
        "the new key reported as a duplicate while the old Secret has it",
        || {
            has_event(
                config,
                NAMESPACE,
                "fleet-west",
                "DuplicateCluster",
                "cluster-west",
            )
        },
    )
    .await;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(config.client(), NAMESPACE);
    secrets
        .delete("cluster-west", &DeleteParams::default())
        .await
        .unwrap();
    // west now reports on its new Secret, and was never away.
    eventually("west reachable, reported on its new Secret", || async {
        federator.metric("federator_clusters_registered", &[]).await == 2.0
            && service_entry(east, "prod.greeting.global").await.is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        federator.metric("federator_clusters_registered", &[]).await,
        2.0
    );
    let seen = writes.lock().unwrap().clone();
    assert!(
        seen.iter().all(|(kind, _)| kind != "DELETED"),
        "east saw a delete: {seen:?}"
    );
    assert!(service_entry(east, "prod.greeting.global").await.is_some());
    federator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resync_repairs_a_tampered_object_under_steady_traffic() {
    let env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    deploy(env.cluster("west"), "greeting", 1, 0).await;
    deploy(env.cluster("west"), "busy", 1, 0).await;
    let federator = Federator::start_with(&env, |o| o.resync_period = Duration::from_secs(3)).await;
    let east = env.cluster("east");
    eventually("east gets west's hosts", || async {
        service_entry(east, "prod.greeting.global").await.is_some()
            && service_entry(east, "prod.busy.global").await.is_some()
    })
    .await;
    // Someone edits federator's object by hand; only a full pass repairs it.
    let mut tampered = service_entry(east, "prod.greeting.global").await.unwrap();
    tampered.spec.addresses = vec!["240.255.255.254".into()];
    tampered.metadata.managed_fields = None;
    tampered.metadata.resource_version = None;
    let api: Api<ServiceEntry> = Api::namespaced(east.client(), "federator-sync");
    api.replace("prod.greeting.global", &Default::default(), &{
        let mut t = tampered.clone();
        t.metadata.resource_version = api
            .get("prod.greeting.global")
            .await
            .unwrap()
            .metadata
            .resource_version;
        t
    })
    .await
    .unwrap();
    // Meanwhile another host changes all the time, so the writer is never idle for long.
    let (region, _) = topology("west");
    let west = env.cluster("west");
    let repaired = async {
        let mut ready = 1;
        loop {
            ready = 3 - ready;
            scale(west, "busy", ready, 0, region).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = service_entry(east, "prod.greeting.global").await.unwrap();
            if now.spec.addresses != tampered.spec.addresses {
                return now;
            }
        }
    };
    let now = tokio::time::timeout(DEADLINE, repaired)
        .await
        .expect("the resync repairs the object while another host keeps changing");
    assert_ne!(now.spec.addresses, ["240.255.255.254"]);
    federator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_a_withdrawn_clusters_credentials_keeps_its_secret_settings() {
    let mut env = fleet(&["config", "east", "west"], &["east"]).await;
    let west_secret = |kubeconfig: String| {
        let mut secret = cluster_secret("cluster-west", &[("west", kubeconfig)]);
        secret.metadata.annotations = Some(
            [(
                "federator.io/network".to_owned(),
                "net-from-secret".to_owned(),
            )]
            .into(),
        );
        secret
    };
    let kubeconfig = env.cluster("west").kubeconfig_text().unwrap();
    let config = env.cluster("config");
    config
        .apply(&west_secret(kubeconfig.clone()))
        .await
        .unwrap();
    deploy(env.cluster("west"), "greeting", 1, 0).await;
    let federator = Federator::start(&env, Duration::from_secs(4)).await;
    let east = env.cluster("east");
    let west_network = || async {
        service_entry(east, "prod.greeting.global")
            .await
            .and_then(|se| se.spec.endpoints.first().and_then(|e| e.network.clone()))
    };
    eventually(
        "west's gateway in east, on the Secret's network",
        || async { west_network().await.as_deref() == Some("net-from-secret") },
    )
    .await;

    env.cluster_mut("west").stop();
    eventually("west withdrawn", || async {
        service_entry(env.cluster("east"), "prod.greeting.global")
            .await
            .is_none_or(|se| se.spec.endpoints.is_empty())
    })
    .await;
    // New credentials (here: the same token in a reworded kubeconfig) while west is away.
    let rotated = format!("{kubeconfig}preferences: {{}}\n");
    env.cluster("config")
        .apply(&west_secret(rotated))
        .await
        .unwrap();
    env.cluster_mut("west").restart().await.unwrap();
    let east = env.cluster("east");
    eventually("west back in east", || async {
        service_entry(east, "prod.greeting.global")
            .await
            .is_some_and(|se| !se.spec.endpoints.is_empty())
    })
    .await;
    let network = service_entry(east, "prod.greeting.global")
        .await
        .and_then(|se| se.spec.endpoints.first().and_then(|e| e.network.clone()));
    assert_eq!(network.as_deref(), Some("net-from-secret"));
    federator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_back_from_an_outage_deletes_none_of_its_own_hosts() {
    let mut env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    deploy(env.cluster("east"), "greeting", 1, 0).await;
    deploy(env.cluster("west"), "solo", 1, 0).await;
    let federator = Federator::start(&env, Duration::from_secs(4)).await;
    eventually("west holds its own host", || async {
        service_entry(env.cluster("west"), "prod.solo.global")
            .await
            .is_some()
    })
    .await;
    let before = sync_version(env.cluster("west")).await;

    env.cluster_mut("west").stop();
    eventually("west withdrawn elsewhere", || async {
        service_entry(env.cluster("east"), "prod.solo.global")
            .await
            .is_none()
    })
    .await;
    env.cluster_mut("west").restart().await.unwrap();
    // Everything west's API server saw since before the outage.
    let writes = record_writes_since(env.cluster("west"), &before).await;
    eventually("west federated again", || async {
        service_entry(env.cluster("east"), "prod.solo.global")
            .await
            .is_some()
            && service_entry(env.cluster("west"), "prod.greeting.global")
                .await
                .is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = writes.lock().unwrap().clone();
    assert!(
        !seen
            .iter()
            .any(|(kind, name)| kind == "DELETED" && name == "prod.solo.global"),
        "west deleted its own host on its way back: {seen:?}"
    );
    assert!(
        service_entry(env.cluster("west"), "prod.solo.global")
            .await
            .is_some()
    );
    federator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_object_federator_cannot_read_blocks_nothing_else() {
    let env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    deploy(env.cluster("west"), "greeting", 1, 0).await;
    let east = env.cluster("east");
    east.create_namespace("federator-sync").await.unwrap();
    // Valid for Istio, beyond what federator's types model.
    let foreign = serde_json::json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "payments.example.com", "namespace": "federator-sync"},
        "spec": {"host": "payments.example.com", "trafficPolicy": {"tls": {"mode": "SIMPLE", "sni": "payments.example.com"}}}
    });
    let stored = east.apply_json(&foreign).await.unwrap();
    let federator = Federator::start(&env, Duration::from_secs(600)).await;
    eventually("east still gets west's host, both objects", || async {
        let dr = serde_json::json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": "prod.greeting.global", "namespace": "federator-sync"},
        });
        service_entry(east, "prod.greeting.global").await.is_some()
            && east.get_json(&dr).await.unwrap().is_some()
    })
    .await;
    let now = east.get_json(&foreign).await.unwrap().unwrap();
    assert_eq!(
        now["metadata"]["resourceVersion"], stored["metadata"]["resourceVersion"],
        "the foreign object is untouched"
    );
    federator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_problems_are_reported_live_on_the_object_to_fix() {
    let env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    deploy(env.cluster("east"), "greeting", 1, 0).await;
    // The oldest Service decides a host's ports (creation times count in seconds).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let west = env.cluster("west");
    deploy(west, "greeting", 1, 0).await;
    west.apply(&testenv::objects::service(
        "sample",
        "greeting",
        &[("grpc", 9090)],
    ))
    .await
    .unwrap();
    let federator = Federator::start(&env, Duration::from_secs(600)).await;
    eventually("the conflict reported on west's Service, in west", || {
        has_event(west, "sample", "greeting", "PortConflict", "left out")
    })
    .await;
    eventually("and counted", || async {
        federator
            .metric("federator_registry_problems", &[("reason", "PortConflict")])
            .await
            == 1.0
    })
    .await;
    // Fixed: the count goes back to zero.
    west.apply(&testenv::objects::service(
        "sample",
        "greeting",
        &[("http", 8080)],
    ))
    .await
    .unwrap();
    eventually("the count follows the fix", || async {
        federator
            .metric("federator_registry_problems", &[("reason", "PortConflict")])
            .await
            == 0.0
    })
    .await;
    federator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_that_may_not_list_endpoint_slices_are_reported_while_the_rest_flows() {
    let env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    let west = env.cluster("west");
    deploy(west, "greeting", 2, 0).await;
    let federator = Federator::start(&env, Duration::from_secs(600)).await;
    let east = env.cluster("east");
    // What east's ServiceEntry for west's host says: west's gateway and its weight.
    let in_east = || async {
        service_entry(east, "prod.greeting.global")
            .await
            .map(|se| {
                se.spec
                    .endpoints
                    .into_iter()
                    .map(|e| (e.address, e.weight))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let gateway = |address: &str, weight| vec![(address.to_owned(), Some(weight))];
    eventually("west's gateway in east, weighted by its 2 pods", || async {
        in_east().await == gateway("198.51.100.2", 2)
    })
    .await;

    // west's credentials are rotated to a least-privilege user that forgot EndpointSlices.
    let config = env.cluster("config");
    let kubeconfig = kubeconfig_without_endpoint_slices(west).await;
    config
        .apply(&cluster_secret("cluster-west", &[("west", kubeconfig)]))
        .await
        .unwrap();
    let reason = "EndpointSlice: list forbidden (403): grant list and watch on discovery.k8s.io endpointslices";
    let note = format!("cannot read {reason}");
    // A list that keeps failing (retried about once a second) shows after 30 s.
    eventually("west reported degraded on its Secret", || {
        has_event(
            config,
            NAMESPACE,
            "cluster-west",
            "ClusterWatchDegraded",
            &note,
        )
    })
    .await;
    let (status, body) = federator.get("/readyz").await;
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            format!("ok\ndegraded: cluster west: {reason}\n").as_str()
        ),
        "degraded, but still ready"
    );
    let running = &federator;
    let degraded = |cluster: &'static str, kind: &'static str| async move {
        let labels = [("cluster", cluster), ("kind", kind)];
        running
            .metric("federator_cluster_watch_degraded", &labels)
            .await
    };
    assert_eq!(degraded("west", "EndpointSlice").await, 1.0);
    assert_eq!(degraded("west", "Service").await, 0.0);
    assert_eq!(degraded("east", "EndpointSlice").await, 0.0);
    let (_, metrics) = federator.get("/metrics").await;
    assert!(
        metrics.contains("federator_cluster_watch_degraded{cluster=\"west\",kind=\"Service\"} 0"),
        "healthy kinds are exported as 0"
    );

    // Its EndpointSlices stay as last read (a third pod is not seen), its other kinds still
    // flow: its gateway Service's new address reaches east.
    scale(west, "greeting", 3, 0, topology("west").0).await;
    west.set_gateway_address("198.51.100.22").await.unwrap();
    eventually("west's new gateway address in east", || async {
        in_east().await.iter().any(|(a, _)| a == "198.51.100.22")
    })
    .await;
    assert_eq!(in_east().await, gateway("198.51.100.22", 2));

    // The RBAC is fixed: the next retry lists the EndpointSlices.
    grant_endpoint_slices(west).await;
    eventually("west reported recovered on its Secret", || {
        has_event(
            config,
            NAMESPACE,
            "cluster-west",
            "ClusterWatchRecovered",
            "reads EndpointSlice again",
        )
    })
    .await;
    eventually("the third pod counts in east", || async {
        in_east().await == gateway("198.51.100.22", 3)
    })
    .await;
    assert_eq!(federator.get("/readyz").await, (200, "ok".to_owned()));
    assert_eq!(degraded("west", "EndpointSlice").await, 0.0);
    federator.stop().await;
}
