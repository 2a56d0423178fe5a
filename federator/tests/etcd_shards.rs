//! Replicas sharing clusters, against a real etcd: they register and see each other come and
//! go; one with other settings, or another's name, refuses to join and says why; a corrupt
//! record under the members' prefix is ignored.

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use federator::leader::ElectionTiming;
use federator::shard::membership::{JoinError, MemberOptions, Members, Membership};
use federator::state::etcd::{EtcdClient, pb};
use testenv::TestEnv;

const PREFIX: &str = "/shards/";

fn client(env: &TestEnv) -> EtcdClient {
    support::etcd::client(env, PREFIX)
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

/// Replicas a and b, joined, and the membership as a sees it (both listed).
async fn two_members(
    env: &TestEnv,
) -> (
    Membership,
    Membership,
    tokio::sync::watch::Receiver<Members>,
) {
    let a = Membership::join(client(env), PREFIX, options("federator-a", "240.0.0.0/16"))
        .await
        .unwrap();
    let b = Membership::join(client(env), PREFIX, options("federator-b", "240.0.0.0/16"))
        .await
        .unwrap();
    let mut seen_by_a = a.members.clone();
    until_members(&mut seen_by_a, &["federator-a", "federator-b"]).await;
    (a, b, seen_by_a)
}

#[tokio::test]
async fn replicas_see_each_other_come_and_go_and_a_mismatch_or_a_taken_name_is_refused() {
    let env = TestEnv::start(&[]).await.unwrap();
    let (a, b, mut seen_by_a) = two_members(&env).await;
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
async fn a_replica_that_stops_renewing_drops_out() {
    let env = TestEnv::start(&[]).await.unwrap();
    let (a, b, mut seen_by_a) = two_members(&env).await;
    // b dies without leaving (as under kill -9): its renewals stop, its lease expires.
    drop(b);
    until_members(&mut seen_by_a, &["federator-a"]).await;
    a.leave().await.unwrap();
}

mod claims {
    use std::collections::{BTreeMap, BTreeSet};

    use federator::shard::claims::{ClaimInputs, ClaimOptions, Claimed, Writing, run};
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
        let (writing_tx, writing) = watch::channel(Writing::default());
        // The runtime's part: writers run exactly for the writable clusters, and say which
        // generation they reflect.
        let mut follow = claimed.clone();
        tokio::spawn(async move {
            while follow.changed().await.is_ok() {
                let claimed = follow.borrow().clone();
                writing_tx.send_replace(Writing {
                    generation: claimed.generation,
                    clusters: claimed.writable,
                });
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
                assert!(
                    now[cluster] > before[cluster],
                    "{cluster}: {now:?} after {before:?}"
                );
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
