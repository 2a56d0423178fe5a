//! End to end against real API servers: what goes wrong stays contained. A dead API server,
//! an object federator does not own, Secrets that are not usable.

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use federator::istio::{ServiceEntry, ServiceEntrySpec};
use support::live::*;
use testenv::TestEnv;

const HOST: &str = "prod.greeting.global";
/// The pod `deploy(.., 1, 0)` gives greeting: local clients reach it directly.
const LOCAL: &str = "10.1.0.10";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_cluster_keeps_its_backends_until_stale_after_and_comes_back() {
    let mut env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    deploy(env.cluster("east"), "greeting", 1, 0).await;
    deploy(env.cluster("west"), "greeting", 1, 0).await;
    let stale_after = Duration::from_secs(6);
    let federator = Federator::start(&env, stale_after).await;
    let (_, west_gw) = topology("west");
    eventually("both serve", || async {
        endpoints(env.cluster("east"), HOST).await == [LOCAL, west_gw]
    })
    .await;

    // west's API server dies. east keeps west's backends for a while...
    env.cluster_mut("west").stop();
    let died = Instant::now();
    eventually("west seen unreachable", || async {
        federator.metric("federator_clusters_connected", &[]).await == 1.0
    })
    .await;
    assert_eq!(
        endpoints(env.cluster("east"), HOST).await,
        [LOCAL, west_gw],
        "kept while not stale"
    );
    // ...and withdraws them once it has been unreachable for stale-after.
    eventually("west's backends withdrawn", || async {
        endpoints(env.cluster("east"), HOST).await == [LOCAL]
    })
    .await;
    assert!(
        died.elapsed() >= stale_after,
        "withdrawn only after stale-after"
    );

    // west comes back: federator reconverges.
    env.cluster_mut("west").restart().await.unwrap();
    eventually("west back", || async {
        endpoints(env.cluster("east"), HOST).await == [LOCAL, west_gw]
    })
    .await;
    federator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_federator_does_not_own_is_left_alone_and_reported() {
    let env = TestEnv::start(&["config", "east", "west"]).await.unwrap();
    for c in env.clusters() {
        prepare(c).await;
    }
    let west = env.cluster("west");
    west.create_namespace("federator-sync").await.unwrap();
    let mut theirs = ServiceEntry::new(
        HOST,
        ServiceEntrySpec {
            hosts: vec!["somebody.else.example".into()],
            addresses: vec![],
            ports: vec![],
            location: None,
            resolution: None,
            endpoints: vec![],
            export_to: vec![],
        },
    );
    theirs.metadata.namespace = Some("federator-sync".into());
    west.apply(&theirs).await.unwrap();

    register(&env, &["east", "west"]).await;
    deploy(env.cluster("east"), "greeting", 1, 0).await;
    let federator = Federator::start(&env, Duration::from_secs(600)).await;
    eventually("east federated", || async {
        endpoints(env.cluster("east"), HOST).await == [LOCAL]
    })
    .await;
    eventually("conflict reported", || async {
        federator
            .metric("federator_conflicts", &[("cluster", "west")])
            .await
            == 1.0
    })
    .await;
    let still = service_entry(west, HOST).await.unwrap();
    assert_eq!(still.spec.hosts, ["somebody.else.example"], "untouched");
    assert!(
        still
            .metadata
            .labels
            .is_none_or(|l| !l.contains_key("app.kubernetes.io/managed-by"))
    );
    eventually("an Event names the object", || {
        has_event(
            west,
            "federator-sync",
            HOST,
            "OwnershipConflict",
            "not labelled",
        )
    })
    .await;
    federator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_secrets_are_reported_and_the_rest_keeps_working() {
    let env = TestEnv::start(&["config", "east"]).await.unwrap();
    prepare(env.cluster("east")).await;
    register(&env, &["east"]).await;
    let config = env.cluster("config");
    let good = env.cluster("east").kubeconfig_text().unwrap();
    let unreachable = good.replace(
        &format!("127.0.0.1:{}", env.cluster("east").port()),
        "127.0.0.1:1",
    );
    let wrong_token = {
        let token = good
            .lines()
            .find_map(|l| l.trim().strip_prefix("token: "))
            .unwrap()
            .to_owned();
        good.replace(&token, "not-the-token")
    };
    config
        .apply(&cluster_secret(
            "garbage",
            &[("garbage", "this is not a kubeconfig".into())],
        ))
        .await
        .unwrap();
    config
        .apply(&cluster_secret("unreachable", &[("faraway", unreachable)]))
        .await
        .unwrap();
    config
        .apply(&cluster_secret("badcreds", &[("locked", wrong_token)]))
        .await
        .unwrap();
    deploy(env.cluster("east"), "greeting", 1, 0).await;

    let federator = Federator::start(&env, Duration::from_secs(600)).await;
    eventually("the good cluster is federated", || async {
        endpoints(env.cluster("east"), HOST).await == [LOCAL]
    })
    .await;
    let event_for = |secret: &'static str, reason: &'static str, words: &'static str| {
        has_event(config, NAMESPACE, secret, reason, words)
    };
    eventually("garbage reported", || {
        event_for("garbage", "InvalidClusterKubeconfig", "not a kubeconfig")
    })
    .await;
    eventually("unreachable reported", || {
        event_for("unreachable", "ClusterUnreachable", "faraway")
    })
    .await;
    eventually("bad credentials reported", || {
        event_for("badcreds", "ClusterUnreachable", "401")
    })
    .await;
    assert_eq!(
        federator.metric("federator_clusters_registered", &[]).await,
        3.0
    );
    assert_eq!(
        federator.metric("federator_clusters_connected", &[]).await,
        1.0
    );
    federator.stop().await;
}
