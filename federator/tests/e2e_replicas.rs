//! Several replicas against real API servers, as processes: one leader writes, followers
//! stay warm; a killed or frozen leader is replaced within the lease and never writes again
//! after its successor; VIPs do not move. Every assertion is on what the API servers saw:
//! each write carries the leader term that made it (`federator.io/leader-term`).

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use support::live::{NAMESPACE, deploy, dig, eventually, fleet, service_entry};
use support::replica::Replica;
use support::writes::{Events, record_objects, term};
use testenv::{TestCluster, TestEnv};

/// A range of 14 addresses for 10 hosts: most hosts' preferred address collides, so a
/// follower allocating on its own would hand out different VIPs than the leader.
const VIP_RANGE: &[&str] = &["--vip-range", "240.0.0.0/28"];

const WORKLOADS: usize = 10;

fn host(i: usize) -> String {
    format!("prod.app-{i}.global")
}

/// Every workload in east, and the VIP each ServiceEntry carries, by cluster and host.
async fn vips(env: &TestEnv) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for cluster in ["east", "west"] {
        for i in 0..WORKLOADS {
            if let Some(se) = service_entry(env.cluster(cluster), &host(i)).await {
                out.insert(
                    (cluster.to_owned(), host(i)),
                    se.spec.addresses.first().cloned().unwrap_or_default(),
                );
            }
        }
    }
    out
}

/// Each object's writes, in the order the API server made them, come from terms that never
/// go back: no replica wrote after its successor did.
fn assert_terms_never_go_back(events: &Events, cluster: &str) -> u64 {
    let events = events.lock().unwrap().clone();
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    let mut highest = 0;
    for event in &events {
        let name = event.1.metadata.name.clone().unwrap_or_default();
        let term = term(event);
        let before = last.insert(name.clone(), term).unwrap_or(0);
        assert!(
            term >= before,
            "{cluster}: {name} written in term {term} after term {before}: two writers"
        );
        highest = highest.max(term);
    }
    highest
}

async fn lease_holder(env: &TestEnv) -> Option<String> {
    let api: Api<Lease> = Api::namespaced(env.cluster("config").client(), NAMESPACE);
    api.get_opt("federator-leader")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec?.holder_identity)
}

/// Starts replica-a, waits until it wrote everything, then starts replica-b, both with
/// `flags` and the test VIP range.
async fn start_pair(env: &TestEnv, flags: &[&str]) -> (Replica, Replica) {
    let a = Replica::start(env, "replica-a", &[VIP_RANGE, flags].concat());
    eventually("replica-a leads", || a.leads()).await;
    eventually("replica-a wrote every host to both clusters", || async {
        vips(env).await.len() == 2 * WORKLOADS
    })
    .await;
    let b = Replica::start(env, "replica-b", &[VIP_RANGE, flags].concat());
    eventually("replica-b ready", || async {
        b.get("/readyz").await.0 == 200
    })
    .await;
    (a, b)
}

async fn deploy_all(east: &TestCluster) {
    for i in 0..WORKLOADS {
        deploy(east, &format!("app-{i}"), 1, 0).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_within_the_lease_and_no_vip_moves() {
    let env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    a_killed_leader_is_replaced(&env, &[]).await;
    assert_eq!(lease_holder(&env).await.as_deref(), Some("replica-b"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_etcd_store_a_killed_leader_is_replaced_and_no_vip_moves() {
    let env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    let store = format!("etcd://{}", env.etcd_endpoint());
    a_killed_leader_is_replaced(&env, &["--store", &store, "--etcd-prefix", "/e2e/"]).await;
    // The election ran on etcd: no Lease in the config cluster.
    assert_eq!(lease_holder(&env).await, None);
}

/// Two replicas with `flags`; the leader is killed; the follower takes over, writes what
/// changed since, rewrites nothing else, and no VIP moves.
async fn a_killed_leader_is_replaced(env: &TestEnv, flags: &[&str]) {
    deploy_all(env.cluster("east")).await;
    let (mut a, b) = start_pair(env, flags).await;
    let before = vips(env).await;
    // The follower answers DNS with the leader's VIPs (it adopted them from the store),
    // though most hosts' preferred addresses collide in this small range.
    for i in 0..WORKLOADS {
        let wanted = before[&("west".to_owned(), host(i))].clone();
        eventually(
            &format!("replica-b's DNS gives {} {wanted}", host(i)),
            || async { dig(b.dns, &host(i), &[]).await.1 == [wanted.clone()] },
        )
        .await;
    }
    assert!(!b.leads().await, "two leaders");
    let (east_events, west_events) = (
        record_objects(env.cluster("east")).await,
        record_objects(env.cluster("west")).await,
    );

    a.kill().await;
    eventually("replica-b takes over", || b.leads()).await;
    // A change after the takeover is written by the new leader.
    deploy(env.cluster("east"), "late", 1, 0).await;
    eventually("the new leader writes the new host", || async {
        service_entry(env.cluster("west"), "prod.late.global")
            .await
            .is_some()
    })
    .await;
    assert_eq!(vips(env).await, before, "VIPs moved in the takeover");
    let highest = assert_terms_never_go_back(&west_events, "west");
    assert_terms_never_go_back(&east_events, "east");
    assert!(highest >= 2, "the new host was written in term {highest}");
    // No object was rewritten for the takeover alone: only the new host's.
    let rewritten: Vec<String> = west_events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| e.1.metadata.name.clone())
        .filter(|n| n != "prod.late.global")
        .collect();
    assert!(
        rewritten.is_empty(),
        "rewritten on takeover: {rewritten:?}\n{}",
        b.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_leader_never_writes_after_its_successor() {
    let env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    deploy_all(env.cluster("east")).await;
    // replica-b writes into a namespace of its own: every write to replica-a's from the
    // moment it froze would be replica-a's, and there must be none.
    let a = Replica::start(&env, "replica-a", VIP_RANGE);
    eventually("replica-a leads", || a.leads()).await;
    eventually("replica-a wrote every host", || async {
        vips(&env).await.len() == 2 * WORKLOADS
    })
    .await;
    a.settle().await;
    let b_flags = ["--sync-namespace", "federator-sync-b"];
    let b = Replica::start(&env, "replica-b", &[VIP_RANGE, &b_flags].concat());
    eventually("replica-b ready", || async {
        b.get("/readyz").await.0 == 200
    })
    .await;
    let a_writes = record_objects(env.cluster("west")).await;

    // A long pause (or a partition): the lease runs out while the leader is frozen.
    a.pause();
    eventually("replica-b takes over from the frozen leader", || b.leads()).await;
    deploy(env.cluster("east"), "during", 1, 0).await;
    eventually("the new leader writes", || {
        b_wrote(&env, "prod.during.global")
    })
    .await;
    // The old leader wakes up with a host to write: its term is over, it must not.
    a.resume();
    eventually("the old leader knows it follows", || async {
        a.get("/metrics").await.0 == 200 && !a.leads().await
    })
    .await;
    deploy(env.cluster("east"), "after", 1, 0).await;
    eventually("the leader writes the next host", || {
        b_wrote(&env, "prod.after.global")
    })
    .await;
    // The old leader has both hosts in its registry (it answers them)...
    for name in ["prod.during.global", "prod.after.global"] {
        eventually(&format!("replica-a knows {name}"), || async {
            dig(a.dns, name, &[]).await.0 == "NOERROR"
        })
        .await;
    }
    // ...and a writer that ignored its fence would have written them by the next probe.
    a.settle().await;
    assert!(b.leads().await);
    let written: Vec<String> = a_writes
        .lock()
        .unwrap()
        .iter()
        .map(|e| format!("{} {}", e.0, e.1.metadata.name.clone().unwrap_or_default()))
        .collect();
    assert!(
        written.is_empty(),
        "the frozen leader wrote after it lost the lease: {written:?}\n{}",
        a.log_text()
    );
}

/// Whether replica-b (writing into `federator-sync-b`) wrote `host` into west.
async fn b_wrote(env: &TestEnv, host: &str) -> bool {
    let api: Api<federator::istio::ServiceEntry> =
        Api::namespaced(env.cluster("west").client(), "federator-sync-b");
    api.get_opt(host).await.ok().flatten().is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_edited_lease_still_ends_with_one_leader() {
    let env = fleet(&["config", "east"], &["east"]).await;
    let a = Replica::start(&env, "replica-a", &[]);
    let b = Replica::start(&env, "replica-b", &[]);
    eventually("one replica leads", || async {
        u8::from(a.leads().await) + u8::from(b.leads().await) == 1
    })
    .await;
    // Someone names a replica that does not exist, with a fresh renewal.
    let api: Api<Lease> = Api::namespaced(env.cluster("config").client(), NAMESPACE);
    let mut lease = api.get("federator-leader").await.unwrap();
    let spec = lease.spec.as_mut().unwrap();
    spec.holder_identity = Some("somebody-else".into());
    spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        jiff::Timestamp::now(),
    ));
    api.replace("federator-leader", &Default::default(), &lease)
        .await
        .unwrap();
    eventually("nobody leads while the stranger's lease lasts", || async {
        !a.leads().await && !b.leads().await
    })
    .await;
    eventually(
        "one replica leads again, and the lease names it",
        || async {
            let holder = lease_holder(&env).await;
            match (a.leads().await, b.leads().await) {
                (true, false) => holder.as_deref() == Some("replica-a"),
                (false, true) => holder.as_deref() == Some("replica-b"),
                _ => false,
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etcd_unreachable_at_start_is_reported_and_retried_until_it_answers() {
    let env = fleet(&["config", "east"], &["east"]).await;
    deploy(env.cluster("east"), "app", 1, 0).await;
    // etcd will answer on this port, but not yet.
    let port = support::replica::free_port();
    let store = format!("etcd://127.0.0.1:{port}");
    let a = Replica::start(&env, "replica-a", &["--store", &store]);
    eventually("the error names the etcd endpoint", || async {
        a.log_text().contains(&format!("127.0.0.1:{port}"))
    })
    .await;
    eventually("the process runs on and its registry is ready", || async {
        a.get("/readyz").await.0 == 200
    })
    .await;
    assert!(!a.leads().await, "led without an election");
    assert!(
        service_entry(env.cluster("east"), "prod.app.global")
            .await
            .is_none()
    );

    // etcd comes up on that port (a forwarder to the test environment's etcd).
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let etcd = env.etcd_endpoint();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let etcd = etcd.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(etcd).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    eventually("it leads once etcd answers", || a.leads()).await;
    eventually("and writes", || async {
        service_entry(env.cluster("east"), "prod.app.global")
            .await
            .is_some()
    })
    .await;
}
