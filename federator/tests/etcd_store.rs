//! The etcd store against a real etcd: replicas racing on new hosts never hand out one VIP
//! twice, corrupt or foreign values are reported by key and skipped, and an etcd that does
//! not answer is an error naming it, never a panic.

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use federator::model::Host;
use federator::registry::VipAllocator;
use federator::state::etcd::{Change, EtcdClient, EtcdOptions, EtcdStore, pb, prefix_end};
use federator::state::{StateStore, VipWrites};
use testenv::TestEnv;

fn options(env: &TestEnv, prefix: &str) -> EtcdOptions {
    EtcdOptions {
        endpoints: vec![env.etcd_endpoint()],
        prefix: prefix.to_owned(),
        ca_file: None,
        client_cert: None,
    }
}

fn host(i: usize) -> Host {
    Host::build("prod", &format!("app-{i}"), "global").unwrap()
}

/// One replica: allocates `hosts` in its own order, claims them, adopts what the store
/// answers (another replica's claims win), and claims again until the store agrees.
async fn allocate_through(store: &EtcdStore, hosts: Vec<Host>) -> BTreeMap<Host, IpAddr> {
    let mut vips = VipAllocator::new("240.0.0.0/20".parse().unwrap());
    let mut pending: Vec<Host> = hosts.clone();
    for _round in 0..50 {
        if pending.is_empty() {
            break;
        }
        let claims: BTreeMap<Host, IpAddr> = pending
            .iter()
            .map(|h| (h.clone(), vips.allocate(h).unwrap()))
            .collect();
        let answer = store
            .write(&VipWrites {
                claims: claims.clone(),
                releases: BTreeMap::new(),
            })
            .await
            .unwrap();
        let differing: Vec<(Host, IpAddr)> = answer
            .into_iter()
            .filter(|(h, a)| claims.get(h) != Some(a))
            .collect();
        let (displaced, errors) = vips.adopt(differing.clone());
        assert!(errors.is_empty(), "{errors:?}");
        // Claim again what moved or lost its address.
        pending = differing
            .into_iter()
            .map(|(h, _)| h)
            .chain(displaced)
            .filter(|h| hosts.contains(h))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
    }
    assert!(pending.is_empty(), "no agreement after 50 rounds");
    hosts
        .iter()
        .map(|h| (h.clone(), vips.get(h).unwrap()))
        .collect()
}

#[tokio::test]
async fn two_replicas_racing_on_a_thousand_hosts_never_share_a_vip() {
    let env = TestEnv::start(&[]).await.unwrap();
    let prefix = "/race/";
    let (one, two) = (
        EtcdStore::new(&options(&env, prefix), "global").unwrap(),
        EtcdStore::new(&options(&env, prefix), "global").unwrap(),
    );
    let hosts: Vec<Host> = (0..1000).map(host).collect();
    // Opposite orders: the same preferred addresses, claimed first by different replicas.
    let mut reversed = hosts.clone();
    reversed.reverse();
    let (a, b) = tokio::join!(
        allocate_through(&one, hosts.clone()),
        allocate_through(&two, reversed)
    );
    let stored = one.load().await.unwrap();
    assert!(stored.skipped.is_empty(), "{:?}", stored.skipped);
    assert_eq!(stored.table.len(), 1000);
    let distinct: HashSet<IpAddr> = stored.table.values().copied().collect();
    assert_eq!(distinct.len(), 1000, "one VIP handed out twice");
    for (replica, table) in [("one", &a), ("two", &b)] {
        for (h, address) in table {
            assert_eq!(
                stored.table.get(h),
                Some(address),
                "replica {replica} disagrees on {h}"
            );
        }
    }
}

#[tokio::test]
async fn corrupt_and_foreign_values_are_reported_by_key_and_skipped() {
    let env = TestEnv::start(&[]).await.unwrap();
    let prefix = "/corrupt/";
    let store = EtcdStore::new(&options(&env, prefix), "global").unwrap();
    let good = VipWrites {
        claims: BTreeMap::from([(host(1), "240.0.0.1".parse().unwrap())]),
        releases: BTreeMap::new(),
    };
    store.write(&good).await.unwrap();
    let client = EtcdClient::new(&options(&env, prefix)).unwrap();
    for (key, value) in [
        ("/corrupt/vips/host/prod.broken.global", "not an address"),
        ("/corrupt/vips/host/somebody.elses.key", "240.0.0.9"),
        // prod.app-1.global holds 240.0.0.1 already.
        ("/corrupt/vips/host/prod.twice.global", "240.0.0.1"),
    ] {
        let put = pb::RequestOp {
            request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
                key: key.as_bytes().to_vec(),
                value: value.as_bytes().to_vec(),
                ..Default::default()
            })),
        };
        client
            .txn(pb::TxnRequest {
                success: vec![put],
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let loaded = store.load().await.unwrap();
    assert_eq!(loaded.table.len(), 1);
    assert_eq!(loaded.skipped.len(), 3, "{:?}", loaded.skipped);
    assert!(
        loaded
            .skipped
            .iter()
            .any(|s| s.contains("prod.twice.global") && s.contains("already held"))
    );
    assert!(
        loaded
            .skipped
            .iter()
            .any(|s| s.contains("prod.broken.global") && s.contains("not an IP address"))
    );
    assert!(
        loaded
            .skipped
            .iter()
            .any(|s| s.contains("somebody.elses.key"))
    );
}

#[tokio::test]
async fn an_etcd_that_does_not_answer_is_a_clear_error() {
    let options = EtcdOptions {
        // Nothing listens on port 1.
        endpoints: vec!["127.0.0.1:1".into()],
        prefix: "/x/".into(),
        ca_file: None,
        client_cert: None,
    };
    let store = EtcdStore::new(&options, "global").unwrap();
    let err = store.load().await.unwrap_err().to_string();
    assert!(err.contains("127.0.0.1:1"), "{err}");
}

#[tokio::test]
async fn the_version_moves_with_every_change_and_only_then() {
    let env = TestEnv::start(&[]).await.unwrap();
    let store = EtcdStore::new(&options(&env, "/version/"), "global").unwrap();
    let empty = store.version().await.unwrap();
    let claim = VipWrites {
        claims: BTreeMap::from([(host(1), "240.0.0.1".parse().unwrap())]),
        releases: BTreeMap::new(),
    };
    store.write(&claim).await.unwrap();
    let claimed = store.version().await.unwrap();
    assert_ne!(claimed, empty);
    // A claim that loses (the host holds an address already) changes nothing.
    let again = VipWrites {
        claims: BTreeMap::from([(host(1), "240.0.0.2".parse().unwrap())]),
        releases: BTreeMap::new(),
    };
    store.write(&again).await.unwrap();
    assert_eq!(store.version().await.unwrap(), claimed);
    let release = VipWrites {
        claims: BTreeMap::new(),
        releases: claim.claims.clone(),
    };
    store.write(&release).await.unwrap();
    assert_ne!(store.version().await.unwrap(), claimed);
    assert!(store.load().await.unwrap().table.is_empty());
}

/// One transaction writing `puts` and deleting `deletes`; its revision.
async fn write_keys(client: &EtcdClient, puts: &[(&str, &str)], deletes: &[&str]) -> i64 {
    let puts = puts.iter().map(|(key, value)| pb::RequestOp {
        request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
            ..Default::default()
        })),
    });
    let deletes = deletes.iter().map(|key| pb::RequestOp {
        request: Some(pb::request_op::Request::RequestDeleteRange(
            pb::DeleteRangeRequest {
                key: key.as_bytes().to_vec(),
                ..Default::default()
            },
        )),
    });
    let answer = client
        .txn(pb::TxnRequest {
            success: puts.chain(deletes).collect(),
            ..Default::default()
        })
        .await
        .unwrap();
    answer.header.unwrap().revision
}

fn put(key: &str, value: &str, revision: i64) -> Change {
    Change::Put {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        revision,
    }
}

#[tokio::test]
async fn a_watch_reports_every_change_under_its_prefix_in_order_and_only_those() {
    let env = TestEnv::start(&[]).await.unwrap();
    let client = EtcdClient::new(&options(&env, "/watched/")).unwrap();
    let before = write_keys(&client, &[("/watched/a", "0")], &[]).await;

    // From a past revision: what happened since then comes first.
    let mut watch = client
        .watch(b"/watched/".to_vec(), prefix_end(b"/watched/"), before)
        .await
        .unwrap();
    assert_eq!(
        watch.next().await.unwrap(),
        [put("/watched/a", "0", before)]
    );

    let second = write_keys(&client, &[("/watched/b", "1"), ("/elsewhere/c", "2")], &[]).await;
    assert_eq!(
        watch.next().await.unwrap(),
        [put("/watched/b", "1", second)]
    );

    // Quiet for longer than a request's time limit: the stream outlives it.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let third = write_keys(&client, &[("/watched/a", "3")], &["/watched/b"]).await;
    assert_eq!(
        watch.next().await.unwrap(),
        [
            put("/watched/a", "3", third),
            Change::Delete {
                key: b"/watched/b".to_vec(),
                revision: third,
            },
        ]
    );
}

#[tokio::test]
async fn a_watch_from_compacted_history_is_refused_naming_its_range_and_what_is_left() {
    let env = TestEnv::start(&[]).await.unwrap();
    let client = EtcdClient::new(&options(&env, "/refused/")).unwrap();
    let first = write_keys(&client, &[("/refused/a", "0")], &[]).await;
    let last = write_keys(&client, &[("/refused/a", "1")], &[]).await;
    pb::kv_client::KvClient::connect(format!("http://{}", env.etcd_endpoint()))
        .await
        .unwrap()
        .compact(pb::CompactionRequest {
            revision: last,
            physical: true,
        })
        .await
        .unwrap();
    // etcd creates the watch, then cancels it.
    let mut watch = client
        .watch(b"/refused/".to_vec(), prefix_end(b"/refused/"), first)
        .await
        .unwrap();
    let err = watch.next().await.expect_err("refused");
    let shown = err.to_string();
    assert!(
        shown.contains("/refused/") && shown.contains(&format!("earliest left is {last}")),
        "{shown}"
    );
}

#[tokio::test]
async fn a_listing_comes_whole_across_pages_at_one_revision() {
    let env = TestEnv::start(&[]).await.unwrap();
    let client = EtcdClient::new(&options(&env, "/paged/")).unwrap();
    let keys: Vec<String> = (0..2500).map(|i| format!("/paged/k-{i:05}")).collect();
    for chunk in keys.chunks(100) {
        let puts: Vec<(&str, &str)> = chunk.iter().map(|k| (k.as_str(), "v")).collect();
        write_keys(&client, &puts, &[]).await;
    }
    write_keys(&client, &[("/pagedX", "outside")], &[]).await;
    let (listed, revision) = client.list_prefix("/paged/").await.unwrap();
    let listed: Vec<String> = listed
        .iter()
        .map(|kv| String::from_utf8(kv.key.clone()).unwrap())
        .collect();
    assert_eq!(listed, keys, "every key once, in order, and only those");
    assert!(revision > 0);
}
