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
