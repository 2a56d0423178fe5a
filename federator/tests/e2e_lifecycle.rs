//! The fault suite (issue 10), cluster lifecycle: outages, broken credentials at start-up and
//! Secrets replaced in place must never withdraw a cluster's backends unless the operator
//! chose so. Each test watches what the API servers saw.

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::DeleteParams;
use support::live::*;
use support::writes::*;

/// The events a recorder saw for one object name.
fn about(writes: &Writes, name: &str) -> Vec<(String, String)> {
    writes
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, n)| n == name)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_past_stale_after_keeps_the_backends_by_default_and_alerts() {
    let mut env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    deploy(env.cluster("west"), "greeting", 1, 0).await;
    let federator = Federator::start_with(&env, |o| o.stale_after = Duration::from_secs(3)).await;
    eventually("east gets west's host", || async {
        service_entry(env.cluster("east"), "prod.greeting.global")
            .await
            .is_some()
    })
    .await;
    federator.settled("east").await;
    let writes = record_writes(env.cluster("east")).await;

    env.cluster_mut("west").stop();
    let config = env.cluster("config");
    eventually("the outage is alerted on west's Secret", || {
        has_event(config, NAMESPACE, "cluster-west", "ClusterOutage", "kept")
    })
    .await;
    assert_eq!(
        federator
            .metric(
                "federator_cluster_state",
                &[("cluster", "west"), ("state", "unreachable")]
            )
            .await,
        1.0
    );
    // The gRPC API says the same, with why, and still counts west's kept backends.
    let west = federator.cluster_status("west").await;
    assert_eq!(
        west.state(),
        federator::api::pb::ClusterState::Unreachable,
        "{west:?}"
    );
    assert!(!west.last_error.is_empty(), "{west:?}");
    assert_eq!((west.hosts, west.ready_endpoints), (1, 1));
    assert!(
        !endpoints(env.cluster("east"), "prod.greeting.global")
            .await
            .is_empty(),
        "west's backends are kept"
    );
    env.cluster_mut("west").restart().await.unwrap();
    eventually("west synced again", || async {
        federator
            .metric(
                "federator_cluster_state",
                &[("cluster", "west"), ("state", "synced")],
            )
            .await
            == 1.0
    })
    .await;
    let seen = about(&writes, "prod.greeting.global");
    assert!(seen.is_empty(), "east's object was written: {seen:?}");
    federator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_cannot_connect_at_start_up_deletes_nothing_anywhere() {
    let env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    let (east, west) = (env.cluster("east"), env.cluster("west"));
    deploy(west, "greeting", 1, 0).await;
    deploy(east, "hello", 1, 0).await;
    let first = Federator::start(&env, Duration::from_secs(600)).await;
    eventually("both hosts everywhere", || async {
        service_entry(east, "prod.greeting.global").await.is_some()
            && service_entry(west, "prod.hello.global").await.is_some()
    })
    .await;
    first.stop().await;

    // West's Secret now holds credentials no client can be built from.
    let good = west.kubeconfig_text().unwrap();
    let token = good
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .unwrap()
        .to_owned();
    let broken = good.replace(
        &format!("token: {token}"),
        "client-certificate-data: UExBTlRFRA==\n    client-key-data: not-base64!!",
    );
    let config = env.cluster("config");
    config
        .apply(&cluster_secret("cluster-west", &[("west", broken)]))
        .await
        .unwrap();
    let in_east = record_writes(east).await;
    let in_west = record_writes(west).await;
    let second = Federator::start_with(&env, |o| {
        o.initial_sync_timeout = Duration::from_secs(3);
    })
    .await;
    eventually("the connect failure reported on west's Secret", || {
        has_event(
            config,
            NAMESPACE,
            "cluster-west",
            "InvalidClusterKubeconfig",
            "retrying",
        )
    })
    .await;
    // The gRPC API says why, in safe words: nothing of the Secret's contents.
    let west_status = second.cluster_status("west").await;
    assert_eq!(
        west_status.state(),
        federator::api::pb::ClusterState::Connecting,
        "{west_status:?}"
    );
    assert!(!west_status.last_error.is_empty(), "{west_status:?}");
    assert!(
        !west_status.last_error.contains("not-base64") && !west_status.last_error.contains("UExB"),
        "{west_status:?}"
    );
    eventually("east's writer passed and holds west's host", || async {
        second
            .metric("federator_full_reconciles_total", &[("cluster", "east")])
            .await
            >= 1.0
            && second
                .metric("federator_writes_held", &[("cluster", "east")])
                .await
                >= 1.0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = about(&in_east, "prod.greeting.global");
    assert!(seen.is_empty(), "west's host was written in east: {seen:?}");
    assert!(service_entry(east, "prod.greeting.global").await.is_some());
    let seen = in_west.lock().unwrap().clone();
    assert!(seen.is_empty(), "west was written to: {seen:?}");
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_replaced_within_the_grace_period_withdraws_nothing() {
    let env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    let (east, west) = (env.cluster("east"), env.cluster("west"));
    deploy(west, "greeting", 1, 0).await;
    let federator =
        Federator::start_with(&env, |o| o.removal_grace = Duration::from_secs(30)).await;
    eventually("east gets west's host", || async {
        service_entry(east, "prod.greeting.global").await.is_some()
    })
    .await;
    federator.settled("east").await;
    let writes = record_writes(east).await;

    // `kubectl replace --force`: delete, then create the same Secret.
    let config = env.cluster("config");
    let secrets: Api<Secret> = Api::namespaced(config.client(), NAMESPACE);
    let secret = secrets.get("cluster-west").await.unwrap();
    secrets
        .delete("cluster-west", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the pending removal is reported", || {
        has_event(
            config,
            NAMESPACE,
            "cluster-west",
            "ClusterRemovalPending",
            "30s",
        )
    })
    .await;
    let mut again = secret.clone();
    again.metadata = kube::api::ObjectMeta {
        name: secret.metadata.name.clone(),
        namespace: secret.metadata.namespace.clone(),
        labels: secret.metadata.labels.clone(),
        annotations: secret.metadata.annotations.clone(),
        ..Default::default()
    };
    secrets.create(&Default::default(), &again).await.unwrap();
    eventually("the removal is called off", || {
        has_event(
            config,
            NAMESPACE,
            "cluster-west",
            "ClusterRemovalCancelled",
            "nothing changes",
        )
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        federator.metric("federator_clusters_registered", &[]).await,
        2.0
    );
    let seen = about(&writes, "prod.greeting.global");
    assert!(seen.is_empty(), "east's object was written: {seen:?}");
    federator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_gone_past_the_grace_period_withdraws_the_cluster() {
    let env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    let (east, west) = (env.cluster("east"), env.cluster("west"));
    deploy(west, "greeting", 1, 0).await;
    let federator = Federator::start_with(&env, |o| o.removal_grace = Duration::from_secs(3)).await;
    eventually("east gets west's host", || async {
        service_entry(east, "prod.greeting.global").await.is_some()
    })
    .await;
    let config = env.cluster("config");
    let secrets: Api<Secret> = Api::namespaced(config.client(), NAMESPACE);
    secrets
        .delete("cluster-west", &DeleteParams::default())
        .await
        .unwrap();
    let gone = std::time::Instant::now();
    eventually("west withdrawn from east", || async {
        service_entry(east, "prod.greeting.global").await.is_none()
    })
    .await;
    assert!(
        gone.elapsed() >= Duration::from_secs(3),
        "withdrawn within the grace"
    );
    assert_eq!(
        federator.metric("federator_clusters_registered", &[]).await,
        1.0
    );
    federator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_on_remove_deletes_only_this_installations_objects_in_the_removed_cluster() {
    let env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    let (east, west) = (env.cluster("east"), env.cluster("west"));
    deploy(east, "hello", 1, 0).await;
    west.create_namespace("federator-sync").await.unwrap();
    let users = serde_json::json!({
        "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
        "metadata": {"name": "payments.example.com", "namespace": "federator-sync"},
        "spec": {"hosts": ["payments.example.com"], "location": "MESH_EXTERNAL", "resolution": "DNS"},
    });
    west.apply_json(&users).await.unwrap();
    // Another installation's object, in the same namespace.
    let staging = serde_json::json!({
        "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
        "metadata": {"name": "prod.other.global", "namespace": "federator-sync",
                     "labels": {"app.kubernetes.io/managed-by": "federator",
                                "federator.io/instance": "federator.staging"}},
        "spec": {"hosts": ["prod.other.global"], "location": "MESH_EXTERNAL", "resolution": "DNS"},
    });
    west.apply_json(&staging).await.unwrap();
    let federator = Federator::start_with(&env, |o| o.cleanup_on_remove = true).await;
    eventually("both clusters get east's host", || async {
        service_entry(west, "prod.hello.global").await.is_some()
            && service_entry(east, "prod.hello.global").await.is_some()
    })
    .await;
    let secrets: Api<Secret> = Api::namespaced(env.cluster("config").client(), NAMESPACE);
    secrets
        .delete("cluster-west", &DeleteParams::default())
        .await
        .unwrap();
    eventually("what federator wrote in west is deleted", || async {
        service_entry(west, "prod.hello.global").await.is_none()
    })
    .await;
    assert!(
        west.get_json(&users).await.unwrap().is_some(),
        "a user's object in the sync namespace was deleted"
    );
    assert!(
        west.get_json(&staging).await.unwrap().is_some(),
        "another installation's object was deleted"
    );
    assert!(service_entry(east, "prod.hello.global").await.is_some());
    federator.stop().await;
}
