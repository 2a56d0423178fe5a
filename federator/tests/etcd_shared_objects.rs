//! Clusters' objects shared between replicas through a real etcd: a replica that follows
//! what the owner publishes builds the same registry, rejected versions included; the
//! owner reconciles a claimed cluster's published objects; a replica without the claim
//! publishes nothing.

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use federator::state::etcd::{EtcdClient, pb};
use testenv::TestEnv;

const PREFIX: &str = "/shared/";

fn client(env: &TestEnv) -> EtcdClient {
    support::etcd::client(env, PREFIX)
}

use std::collections::BTreeSet;

use federator::shard::follow::{SharedUpdate, follow, follow_shared};
use federator::shard::objects::{PublishError, Publisher};
use federator_core::fixtures::{app, cluster, greeting, upsert};
use federator_core::model::{ClusterName, Object, ObjectKey, ObjectRef};
use federator_core::registry::{Delta, Registry, RegistryConfig};
use tokio::sync::{mpsc, watch};

async fn put(env: &TestEnv, key: &str, value: &[u8]) {
    put_leased(env, key, value, 0).await;
}

async fn put_leased(env: &TestEnv, key: &str, value: &[u8], lease: i64) {
    client(env)
        .txn(pb::TxnRequest {
            success: vec![pb::RequestOp {
                request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
                    key: key.as_bytes().to_vec(),
                    value: value.to_vec(),
                    lease,
                    ..Default::default()
                })),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
}

/// Claims `clusters` for federator-a under a lease of its own; the lease.
async fn claim(env: &TestEnv, clusters: &[&str]) -> i64 {
    let lease = client(env).grant(60).await.unwrap();
    for c in clusters {
        put_leased(env, &format!("{PREFIX}claims/{c}"), b"federator-a", lease).await;
    }
    lease
}

async fn next(rx: &mut mpsc::Receiver<SharedUpdate>) -> SharedUpdate {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("an update within 20 s")
        .unwrap()
}

/// What a registry serves: every host with its backends' clusters and ready counts.
fn served(registry: &Registry) -> Vec<(String, Vec<(String, u32)>)> {
    registry
        .services()
        .iter()
        .map(|s| {
            let backends = s
                .backends
                .iter()
                .flat_map(|(c, list)| list.iter().map(move |b| (c.to_string(), b.ready_count())))
                .collect();
            (s.host.to_string(), backends)
        })
        .collect()
}

#[tokio::test]
async fn another_replica_builds_the_same_registry_from_what_the_owner_publishes() {
    let env = TestEnv::start(&[]).await.unwrap();
    let lease = claim(&env, &["east", "west"]).await;
    // What the owner's watchers saw, applied to its own registry and published.
    let mut seen: Vec<Delta> = Vec::new();
    seen.extend(greeting("east", &[("n1", "z1"), ("n2", "z2")]));
    seen.extend(greeting("west", &[("n3", "z3")]));
    seen.extend(app(
        "west",
        "shop",
        "cart",
        "cart",
        "prod",
        &[("http", 80)],
        &[("n3", "z3")],
    ));
    let mut owner = Registry::new(RegistryConfig::default());
    for delta in [cluster("east"), cluster("west")]
        .into_iter()
        .chain(seen.clone())
    {
        owner.apply(delta);
    }
    let mut publisher = Publisher::new(client(&env), "federator-a", lease, PREFIX);
    for delta in &seen {
        publisher.record(delta);
    }
    // Nothing is published before the cluster is published whole under its claim.
    assert!(publisher.flush().await.is_empty());
    assert!(list(&env, "east").await.is_empty());
    for c in ["east", "west"] {
        publisher.publish(&ClusterName::new(c), 1).await.unwrap();
    }
    // A corrupt value under the prefix: reported and skipped.
    put(
        &env,
        &format!("{PREFIX}objects/east/service/sample/broken"),
        b"{",
    )
    .await;

    // The other replica: its clusters from the Secrets, the objects from etcd.
    let (tx, mut rx) = mpsc::channel(64);
    let (_local_tx, local) = watch::channel(BTreeSet::new());
    let follower = client(&env);
    let following = tokio::spawn(async move { follow(&follower, PREFIX, &local, &tx).await });
    let mut other = Registry::new(RegistryConfig::default());
    other.apply(cluster("east"));
    other.apply(cluster("west"));
    let mut listed = BTreeSet::new();
    loop {
        match next(&mut rx).await {
            SharedUpdate::Delta(delta) => {
                other.apply(*delta);
            }
            SharedUpdate::Listed(c) => {
                listed.insert(c.to_string());
            }
            SharedUpdate::ListDone => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        listed,
        BTreeSet::from(["east".to_owned(), "west".to_owned()])
    );
    assert_eq!(served(&other), served(&owner));
    assert!(!served(&owner).is_empty());

    // A deletion follows too.
    let gone = Delta::Remove(
        ClusterName::new("west"),
        ObjectRef::Workload(
            federator_core::model::WorkloadKind::Deployment,
            ObjectKey::new("shop", "cart"),
        ),
    );
    owner.apply(gone.clone());
    publisher.record(&gone);
    assert!(publisher.flush().await.is_empty());
    match next(&mut rx).await {
        SharedUpdate::Delta(delta) => {
            assert_eq!(*delta, gone);
            other.apply(*delta);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(served(&other), served(&owner));

    // A replica whose claim on a cluster is gone publishes nothing for it, even under the
    // same name: the claim is now held under another lease.
    put(&env, &format!("{PREFIX}claims/east"), b"federator-a").await;
    publisher.record(&upsert(
        "east",
        federator_core::fixtures::node("n9", "r", "z", "10.0.0.9"),
    ));
    let errors = publisher.flush().await;
    assert!(
        matches!(&errors[..], [PublishError::NotClaimed { cluster, .. }] if cluster.as_str() == "east"),
        "{errors:?}"
    );
    following.abort();
}

#[tokio::test]
async fn on_claiming_a_cluster_its_published_objects_are_made_exactly_what_the_owner_sees() {
    let env = TestEnv::start(&[]).await.unwrap();
    let lease = claim(&env, &["east"]).await;
    let east = ClusterName::new("east");
    // What a previous owner left: greeting and a workload since deleted.
    let mut previous = Publisher::new(client(&env), "federator-a", lease, PREFIX);
    for delta in greeting("east", &[("n1", "z1")]).into_iter().chain(app(
        "east",
        "shop",
        "cart",
        "cart",
        "prod",
        &[("http", 80)],
        &[],
    )) {
        previous.record(&delta);
    }
    previous.publish(&east, 1).await.unwrap();
    // What this owner's watchers see now: greeting only, with another endpoint.
    let now: Vec<Delta> = greeting("east", &[("n1", "z1"), ("n2", "z2")]);
    let mut publisher = Publisher::new(client(&env), "federator-a", lease, PREFIX);
    for delta in &now {
        publisher.record(delta);
    }
    publisher.publish(&east, 2).await.unwrap();
    assert_eq!(publisher.published(&east), Some(2));
    let mut expected: Vec<Object> = now
        .into_iter()
        .filter_map(|d| match d {
            Delta::Upsert(_, object) => Some(object),
            _ => None,
        })
        .collect();
    expected.sort_by_key(|o| o.reference());
    assert_eq!(list(&env, "east").await, expected);
    // Marked as published whole.
    let mark = client(&env)
        .list_prefix(&format!("{PREFIX}objects/east/listed"))
        .await
        .unwrap()
        .0;
    assert_eq!(mark.len(), 1);

    // Withdrawn: every object goes, the mark stays.
    publisher.record(&Delta::RemoveCluster(east.clone()));
    assert!(publisher.flush().await.is_empty());
    assert!(list(&env, "east").await.is_empty());
    assert_eq!(
        client(&env)
            .list_prefix(&format!("{PREFIX}objects/east/"))
            .await
            .unwrap()
            .0
            .len(),
        1
    );
    // Unregistered: everything goes, the mark too.
    publisher.forget(&east).await.unwrap();
    assert!(
        client(&env)
            .list_prefix(&format!("{PREFIX}objects/east/"))
            .await
            .unwrap()
            .0
            .is_empty()
    );
}

/// The objects published for `cluster` (its listed mark left out), by reference.
async fn list(env: &TestEnv, cluster: &str) -> Vec<Object> {
    let dir = format!("{PREFIX}objects/");
    let (kvs, _) = client(env)
        .list_prefix(&format!("{dir}{cluster}/"))
        .await
        .unwrap();
    let mut objects: Vec<Object> = kvs
        .iter()
        .filter_map(|kv| {
            let key = String::from_utf8_lossy(&kv.key).into_owned();
            let below = key.strip_prefix(&dir).unwrap().to_owned();
            federator_core::planner::shared_objects::listed_cluster(&below)
                .is_none()
                .then(|| {
                    federator_core::planner::shared_objects::decode(&below, &kv.value)
                        .unwrap()
                        .1
                })
        })
        .collect();
    objects.sort_by_key(|o| o.reference());
    objects
}

/// Everything a registry serves but the VIPs (which depend on the order hosts came in).
fn fingerprint(registry: &Registry) -> String {
    let services: Vec<_> = registry
        .services()
        .into_iter()
        .map(|s| {
            let mut s = s.clone();
            s.vip = None;
            s
        })
        .collect();
    format!("{services:?}")
}

/// Applies what `rx` brings to `other` up to the Node `mark` (published last: a watch
/// brings changes in order, so everything before it has come).
async fn until_mark(rx: &mut mpsc::Receiver<SharedUpdate>, other: &mut Registry, mark: &str) {
    loop {
        if let SharedUpdate::Delta(delta) = next(rx).await {
            let marked = matches!(&*delta, Delta::Upsert(_, Object::Node(n)) if n.name == mark);
            other.apply(*delta);
            if marked {
                return;
            }
        }
    }
}

#[tokio::test]
async fn rejected_versions_of_policies_and_dependencies_are_shared_beside_the_valid_ones() {
    use federator_core::fixtures::{dependency, node};
    use federator_core::model::{PolicyInfo, PolicySource, RejectedInfo, TrafficPolicy};

    let env = TestEnv::start(&[]).await.unwrap();
    let lease = claim(&env, &["east"]).await;
    let mut publisher = Publisher::new(client(&env), "federator-a", lease, PREFIX);
    let mut owner = Registry::new(RegistryConfig::default());
    let mut other = Registry::new(RegistryConfig::default());
    owner.apply(cluster("east"));
    other.apply(cluster("east"));
    let (tx, mut rx) = mpsc::channel(256);
    let (_local_tx, local) = watch::channel(BTreeSet::new());
    let follower = client(&env);
    let following = tokio::spawn(async move { follow(&follower, PREFIX, &local, &tx).await });
    publisher
        .publish(&ClusterName::new("east"), 1)
        .await
        .unwrap();

    let policy = PolicyInfo {
        api: PolicySource::Federator,
        key: ObjectKey::new("team", "gtp"),
        identity: "greeting".into(),
        env: None,
        policy: TrafficPolicy::default(),
        created: Some(1),
        generation: Some(1),
        ignored: Vec::new(),
    };
    let rejected = |reference: ObjectRef| {
        upsert(
            "east",
            Object::Rejected(RejectedInfo {
                reference,
                generation: Some(2),
                reason: "invalid".into(),
            }),
        )
    };
    let steps: Vec<Vec<Delta>> = vec![
        greeting("east", &[("n1", "z1")])
            .into_iter()
            .chain(app(
                "east",
                "team",
                "cart",
                "cart",
                "prod",
                &[("http", 80)],
                &[("n1", "z1")],
            ))
            .chain([
                upsert("east", dependency("deps", "greeting", &["cart"])),
                upsert("east", policy.clone()),
            ])
            .collect(),
        // Both turn invalid: the Dependency's last valid version stays, the policy goes.
        vec![
            rejected(ObjectRef::Dependency(ObjectKey::new("team", "deps"))),
            rejected(policy.reference()),
        ],
        // The Dependency is fixed; the policy is deleted.
        vec![
            upsert(
                "east",
                dependency("deps", "greeting", &["cart", "greeting"]),
            ),
            Delta::Remove(ClusterName::new("east"), policy.reference()),
        ],
    ];
    for (i, step) in steps.into_iter().enumerate() {
        let mark = format!("mark-{i}");
        let marked = upsert("east", node(&mark, "r", "z", "10.9.9.9"));
        // The mark in a transaction of its own, after the step's.
        for batch in [step, vec![marked]] {
            for delta in batch {
                owner.apply(delta.clone());
                publisher.record(&delta);
            }
            assert!(publisher.flush().await.is_empty());
        }
        until_mark(&mut rx, &mut other, &mark).await;
        assert_eq!(fingerprint(&other), fingerprint(&owner), "after step {i}");
    }
    following.abort();

    // A replica that lists afresh builds the same registry.
    let (tx, mut rx) = mpsc::channel(256);
    let (_local_tx, local) = watch::channel(BTreeSet::new());
    let follower = client(&env);
    let following = tokio::spawn(async move { follow(&follower, PREFIX, &local, &tx).await });
    let mut fresh = Registry::new(RegistryConfig::default());
    fresh.apply(cluster("east"));
    while let SharedUpdate::Delta(delta) = next(&mut rx).await {
        fresh.apply(*delta);
    }
    assert_eq!(fingerprint(&fresh), fingerprint(&owner));
    following.abort();
}

#[tokio::test]
async fn a_cluster_handed_back_to_another_replica_is_listed_again_from_what_it_publishes() {
    let env = TestEnv::start(&[]).await.unwrap();
    let lease = claim(&env, &["east"]).await;
    let east = ClusterName::new("east");
    let mut publisher = Publisher::new(client(&env), "federator-a", lease, PREFIX);
    for delta in greeting("east", &[("n1", "z1")]) {
        publisher.record(&delta);
    }
    publisher.publish(&east, 1).await.unwrap();

    // This replica watches east itself: nothing of it is sent, but its mark is.
    let (local_tx, local) = watch::channel(BTreeSet::from([east.clone()]));
    let (tx, mut rx) = mpsc::channel(256);
    let following = tokio::spawn(follow_shared(client(&env), PREFIX.to_owned(), local, tx));
    assert_eq!(
        next(&mut rx).await,
        SharedUpdate::Relisting(BTreeSet::new())
    );
    assert_eq!(next(&mut rx).await, SharedUpdate::Listed(east.clone()));
    assert_eq!(next(&mut rx).await, SharedUpdate::ListDone);

    // Handed to another replica: following starts over, and east comes whole.
    local_tx.send_replace(BTreeSet::new());
    assert_eq!(
        next(&mut rx).await,
        SharedUpdate::Relisting(BTreeSet::from([east.clone()]))
    );
    let mut other = Registry::new(RegistryConfig::default());
    other.apply(cluster("east"));
    let mut owner = Registry::new(RegistryConfig::default());
    owner.apply(cluster("east"));
    for delta in greeting("east", &[("n1", "z1")]) {
        owner.apply(delta);
    }
    loop {
        match next(&mut rx).await {
            SharedUpdate::Delta(delta) => {
                other.apply(*delta);
            }
            SharedUpdate::Listed(c) => assert_eq!(c, east),
            SharedUpdate::ListDone => break,
            update => panic!("{update:?}"),
        }
    }
    assert_eq!(served(&other), served(&owner));
    assert!(!served(&owner).is_empty());
    following.abort();
}
