//! Replicas sharing clusters, against a real etcd: they register and see each other come and
//! go; one with other settings, or another's name, refuses to join and says why; a corrupt
//! record under the members' prefix is ignored.

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use federator::leader::ElectionTiming;
use federator::shard::membership::{JoinError, MemberOptions, Members, Membership};
use federator::state::etcd::{EtcdClient, EtcdOptions, pb};
use testenv::TestEnv;

const PREFIX: &str = "/shards/";

fn client(env: &TestEnv) -> EtcdClient {
    EtcdClient::new(&EtcdOptions {
        endpoints: vec![env.etcd_endpoint()],
        prefix: PREFIX.to_owned(),
        ca_file: None,
        client_cert: None,
    })
    .unwrap()
}

fn options(replica: &str, vip_range: &str) -> MemberOptions {
    MemberOptions {
        replica: replica.to_owned(),
        settings: BTreeMap::from([
            ("host-suffix".to_owned(), "global".to_owned()),
            ("vip-range".to_owned(), vip_range.to_owned()),
        ]),
        timing: ElectionTiming::new(
            Duration::from_secs(3),
            Duration::from_secs(2),
            Duration::from_millis(500),
        )
        .unwrap(),
    }
}

/// Waits until `members` lists exactly `replicas`.
async fn until_members(members: &mut tokio::sync::watch::Receiver<Members>, replicas: &[&str]) {
    let wanted: Vec<String> = replicas.iter().map(|r| (*r).to_owned()).collect();
    let last = members.clone();
    tokio::time::timeout(
        Duration::from_secs(20),
        members.wait_for(|m| m.replicas == wanted),
    )
    .await
    .unwrap_or_else(|_| panic!("members never became {wanted:?}: {:?}", *last.borrow()))
    .unwrap();
}

#[tokio::test]
async fn replicas_see_each_other_come_and_go_and_a_mismatch_or_a_taken_name_is_refused() {
    let env = TestEnv::start(&[]).await.unwrap();
    let a = Membership::join(client(&env), PREFIX, options("federator-a", "240.0.0.0/16"))
        .await
        .unwrap();
    let b = Membership::join(client(&env), PREFIX, options("federator-b", "240.0.0.0/16"))
        .await
        .unwrap();
    let mut seen_by_a = a.members.clone();
    until_members(&mut seen_by_a, &["federator-a", "federator-b"]).await;
    assert!(
        a.term.borrow().is_some_and(|until| until > Instant::now()),
        "a member's term runs"
    );

    // Another VIP range: refused, naming the setting and a replica that has the other value.
    let err = Membership::join(client(&env), PREFIX, options("federator-c", "10.0.0.0/16"))
        .await
        .err()
        .expect("refused");
    let shown = err.to_string();
    assert!(matches!(err, JoinError::Settings { .. }), "{shown}");
    assert!(
        shown.contains("setting vip-range differs")
            && shown.contains("\"10.0.0.0/16\"")
            && shown.contains("federator-a has \"240.0.0.0/16\""),
        "{shown}"
    );
    // A live replica's name: refused.
    let err = Membership::join(client(&env), PREFIX, options("federator-b", "240.0.0.0/16"))
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, JoinError::NameTaken { .. }), "{err}");

    // A record that is not a replica's is ignored; the others still count.
    client(&env)
        .txn(pb::TxnRequest {
            success: vec![pb::RequestOp {
                request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
                    key: format!("{PREFIX}members/garbage").into_bytes(),
                    value: b"{not a record".to_vec(),
                    ..Default::default()
                })),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    // b leaves: a sees it go (the garbage record never counted).
    b.leave().await.unwrap();
    until_members(&mut seen_by_a, &["federator-a"]).await;
    // Neither refused replica left a record behind.
    let listed = client(&env)
        .range(pb::RangeRequest {
            key: format!("{PREFIX}members/").into_bytes(),
            range_end: federator::state::etcd::prefix_end(format!("{PREFIX}members/").as_bytes()),
            ..Default::default()
        })
        .await
        .unwrap();
    let keys: Vec<String> = listed
        .kvs
        .iter()
        .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
        .collect();
    assert_eq!(
        keys,
        [
            format!("{PREFIX}members/federator-a"),
            format!("{PREFIX}members/garbage")
        ]
    );
    a.leave().await.unwrap();
}

#[tokio::test]
async fn a_replica_that_stops_renewing_drops_out_within_its_lease() {
    let env = TestEnv::start(&[]).await.unwrap();
    let a = Membership::join(client(&env), PREFIX, options("federator-a", "240.0.0.0/16"))
        .await
        .unwrap();
    let b = Membership::join(client(&env), PREFIX, options("federator-b", "240.0.0.0/16"))
        .await
        .unwrap();
    let mut seen_by_a = a.members.clone();
    until_members(&mut seen_by_a, &["federator-a", "federator-b"]).await;
    // b dies without leaving (as under kill -9): its renewals stop, its lease expires.
    drop(b);
    until_members(&mut seen_by_a, &["federator-a"]).await;
    a.leave().await.unwrap();
}

mod claims {
    use std::collections::{BTreeMap, BTreeSet};

    use federator::shard::claims::{ClaimInputs, ClaimOptions, Claimed, run};
    use federator_core::model::ClusterName;
    use federator_core::planner::shards;
    use tokio::sync::watch;

    use super::*;

    /// A replica: its membership and its claims loop, with writers that stop at once.
    struct Replica {
        name: String,
        membership: Membership,
        claimed: watch::Receiver<Claimed>,
    }

    async fn replica(
        env: &TestEnv,
        name: &str,
        clusters: &watch::Receiver<BTreeSet<ClusterName>>,
    ) -> Replica {
        let membership = Membership::join(client(env), PREFIX, options(name, "240.0.0.0/16"))
            .await
            .unwrap();
        let (claimed_tx, claimed) = watch::channel(Claimed::default());
        let (writing_tx, writing) = watch::channel(BTreeSet::new());
        // The runtime's part: writers run exactly for the writable clusters.
        let mut follow = claimed.clone();
        tokio::spawn(async move {
            while follow.changed().await.is_ok() {
                let writable = follow.borrow().writable.clone();
                writing_tx.send_replace(writable);
            }
        });
        let options = ClaimOptions {
            replica: name.to_owned(),
            prefix: PREFIX.to_owned(),
            lease: membership.lease(),
            retry: Duration::from_millis(500),
        };
        let inputs = ClaimInputs {
            members: membership.members.clone(),
            clusters: clusters.clone(),
            writing,
        };
        tokio::spawn(run(client(env), options, inputs, claimed_tx));
        Replica {
            name: name.to_owned(),
            membership,
            claimed,
        }
    }

    /// Waits until the claims in etcd, as every replica reads them, are `expected`, each
    /// replica writing to exactly the clusters it holds; fails at once if two replicas ever
    /// may write to one cluster.
    async fn until_claimed(replicas: &[&Replica], expected: &BTreeMap<ClusterName, String>) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut writers: BTreeMap<ClusterName, Vec<String>> = BTreeMap::new();
            let mut settled = true;
            for r in replicas {
                let claimed = r.claimed.borrow().clone();
                for cluster in &claimed.writable {
                    writers
                        .entry(cluster.clone())
                        .or_default()
                        .push(r.name.clone());
                }
                settled &= claimed.holders == *expected;
            }
            for (cluster, who) in &writers {
                assert!(who.len() <= 1, "{cluster} written by {who:?}");
            }
            let writable: BTreeMap<ClusterName, String> = writers
                .into_iter()
                .map(|(c, mut who)| (c, who.remove(0)))
                .collect();
            if settled && writable == *expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "claims never became {expected:?}: {:?}",
                replicas
                    .iter()
                    .map(|r| r.claimed.borrow().clone())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn each_cluster_is_claimed_by_its_owner_and_a_dead_replica_s_clusters_move_to_the_others()
    {
        let env = TestEnv::start(&[]).await.unwrap();
        let names: BTreeSet<ClusterName> = (0..6)
            .map(|i| ClusterName::new(format!("cluster-{i}")))
            .collect();
        let (_clusters_tx, clusters) = watch::channel(names.clone());
        let a = replica(&env, "federator-a", &clusters).await;
        let b = replica(&env, "federator-b", &clusters).await;
        let c = replica(&env, "federator-c", &clusters).await;
        let all: Vec<String> = ["federator-a", "federator-b", "federator-c"]
            .map(String::from)
            .to_vec();
        let owners = shards::assign(&names, &all);
        assert!(
            owners.values().collect::<BTreeSet<_>>().len() > 1,
            "the test spreads clusters: {owners:?}"
        );
        until_claimed(&[&a, &b, &c], &owners).await;

        // b dies without releasing anything (as under kill -9): its claims go with its lease,
        // and its clusters move to their owners among the others; no other cluster moves.
        let mut moves = client(&env)
            .watch(
                format!("{PREFIX}claims/").into_bytes(),
                federator::state::etcd::prefix_end(format!("{PREFIX}claims/").as_bytes()),
                0,
            )
            .await
            .unwrap();
        let sentinel = format!("{PREFIX}claims/end-of-test");
        let end = sentinel.clone();
        let seen = tokio::spawn(async move {
            let mut keys = BTreeSet::new();
            loop {
                for change in moves.next().await.unwrap() {
                    let (federator::state::etcd::Change::Put { key, .. }
                    | federator::state::etcd::Change::Delete { key, .. }) = change;
                    let key = String::from_utf8(key).unwrap();
                    if key == end {
                        return keys;
                    }
                    keys.insert(key);
                }
            }
        });
        let before = b.claimed.borrow().revisions.clone();
        drop(b);
        let rest: Vec<String> = ["federator-a", "federator-c"].map(String::from).to_vec();
        let after = shards::assign(&names, &rest);
        for (cluster, owner) in &owners {
            if owner != "federator-b" {
                assert_eq!(&after[cluster], owner, "{cluster} stays where it was");
            }
        }
        until_claimed(&[&a, &c], &after).await;
        // A moved cluster's term grows: its new holder's writes outrank the old one's.
        let now = a.claimed.borrow().revisions.clone();
        for (cluster, owner) in &owners {
            if owner == "federator-b" {
                assert!(now[cluster] > before[cluster], "{cluster}: {now:?} after {before:?}");
            } else {
                assert_eq!(now[cluster], before[cluster], "{cluster} kept its claim");
            }
        }
        // What etcd saw: only b's clusters' claims changed (went with its lease, then came
        // back under their new owners).
        client(&env)
            .txn(pb::TxnRequest {
                success: vec![pb::RequestOp {
                    request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
                        key: sentinel.into_bytes(),
                        value: b"nobody".to_vec(),
                        ..Default::default()
                    })),
                }],
                ..Default::default()
            })
            .await
            .unwrap();
        let changed = seen.await.unwrap();
        let b_s: BTreeSet<String> = owners
            .iter()
            .filter(|(_, owner)| *owner == "federator-b")
            .map(|(cluster, _)| format!("{PREFIX}claims/{cluster}"))
            .collect();
        assert_eq!(changed, b_s);
        a.membership.leave().await.unwrap();
        c.membership.leave().await.unwrap();
    }
}

mod objects {
    use std::collections::BTreeSet;

    use federator::shard::objects::{PublishError, Publisher, SharedUpdate, follow};
    use federator_core::fixtures::{app, cluster, greeting, upsert};
    use federator_core::model::{ClusterName, ObjectKey, ObjectRef};
    use federator_core::registry::{Delta, Registry, RegistryConfig};
    use tokio::sync::{mpsc, watch};

    use super::*;

    async fn put(env: &TestEnv, key: &str, value: &[u8]) {
        client(env)
            .txn(pb::TxnRequest {
                success: vec![pb::RequestOp {
                    request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
                        key: key.as_bytes().to_vec(),
                        value: value.to_vec(),
                        ..Default::default()
                    })),
                }],
                ..Default::default()
            })
            .await
            .unwrap();
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
                    .flat_map(|(c, list)| {
                        list.iter().map(move |b| (c.to_string(), b.ready_count()))
                    })
                    .collect();
                (s.host.to_string(), backends)
            })
            .collect()
    }

    #[tokio::test]
    async fn another_replica_builds_the_same_registry_from_what_the_owner_publishes() {
        let env = TestEnv::start(&[]).await.unwrap();
        for c in ["east", "west"] {
            put(&env, &format!("{PREFIX}claims/{c}"), b"federator-a").await;
        }
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
        let mut publisher = Publisher::new(client(&env), "federator-a", PREFIX);
        for delta in &seen {
            publisher.record(delta);
        }
        assert!(publisher.flush().await.is_empty());
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
        while listed.len() < 2 {
            match next(&mut rx).await {
                SharedUpdate::Delta(delta) => {
                    other.apply(*delta);
                }
                SharedUpdate::Listed(c) => {
                    listed.insert(c);
                }
            }
        }
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

        // A replica whose claim on a cluster is gone publishes nothing for it.
        put(&env, &format!("{PREFIX}claims/east"), b"federator-b").await;
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
        put(&env, &format!("{PREFIX}claims/east"), b"federator-a").await;
        let mut publisher = Publisher::new(client(&env), "federator-a", PREFIX);
        // What a previous owner left: greeting and a workload since deleted.
        for delta in greeting("east", &[("n1", "z1")]).into_iter().chain(app(
            "east",
            "shop",
            "cart",
            "cart",
            "prod",
            &[("http", 80)],
            &[],
        )) {
            publisher.record(&delta);
        }
        assert!(publisher.flush().await.is_empty());
        // What this owner's watchers see now: greeting only, with another endpoint.
        let now: Vec<_> = greeting("east", &[("n1", "z1"), ("n2", "z2")])
            .into_iter()
            .filter_map(|d| match d {
                Delta::Upsert(_, object) => Some(object),
                _ => None,
            })
            .collect();
        publisher
            .reconcile(&ClusterName::new("east"), &now)
            .await
            .unwrap();
        let listed = client(&env)
            .range(pb::RangeRequest {
                key: format!("{PREFIX}objects/east/").into_bytes(),
                range_end: federator::state::etcd::prefix_end(
                    format!("{PREFIX}objects/east/").as_bytes(),
                ),
                ..Default::default()
            })
            .await
            .unwrap();
        let published: Vec<federator_core::model::Object> = listed
            .kvs
            .iter()
            .map(|kv| {
                let key = String::from_utf8_lossy(&kv.key).into_owned();
                let below = key
                    .strip_prefix(&format!("{PREFIX}objects/"))
                    .unwrap()
                    .to_owned();
                federator_core::planner::shared_objects::decode(&below, &kv.value)
                    .unwrap()
                    .1
            })
            .collect();
        let mut expected = now.clone();
        expected.sort_by_key(|o| o.reference());
        let mut published = published;
        published.sort_by_key(|o| o.reference());
        assert_eq!(published, expected);
    }
}
