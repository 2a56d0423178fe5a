//! Clusters sharded across replicas (`--leader-election shard`), as processes against real
//! API servers and a real etcd: three replicas and six clusters. Every cluster is claimed
//! by exactly one replica and written by it alone; each replica serves every cluster's
//! hosts (DNS from any replica); a replica killed with SIGKILL has its clusters taken over
//! by the others within the lease, and a replica joining takes over the clusters it owns
//! once their holders released them: no overlapping writers, no delete, no VIP moved.
//! Every assertion is on what the API servers and etcd saw: each write carries the claim
//! revision that made it (`federator.io/leader-term`).

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};

use federator::state::etcd::EtcdClient;
use federator_core::planner::shards;
use support::live::{deploy, dig, eventually, fleet, service_entry};
use support::replica::Replica;
use support::writes::{Events, record_objects, term};
use testenv::TestEnv;

const CLUSTERS: [&str; 6] = ["c1", "c2", "c3", "c4", "c5", "c6"];
const PREFIX: &str = "/e2e/";

fn host(cluster: &str) -> String {
    format!("prod.app-{cluster}.global")
}

fn etcd(env: &TestEnv) -> EtcdClient {
    support::etcd::client(env, PREFIX)
}

/// Each cluster's claim in etcd: holder and create revision.
async fn claims(env: &TestEnv) -> BTreeMap<String, (String, i64)> {
    let dir = format!("{PREFIX}claims/");
    let (kvs, _) = etcd(env).list_prefix(&dir).await.unwrap();
    kvs.into_iter()
        .map(|kv| {
            let key = String::from_utf8_lossy(&kv.key).into_owned();
            let cluster = key.strip_prefix(&dir).unwrap().to_owned();
            let holder = String::from_utf8(kv.value).unwrap();
            (cluster, (holder, kv.create_revision))
        })
        .collect()
}

/// The VIP of the hosts of `from`'s workloads in every cluster; `None` until all are there.
async fn vips(env: &TestEnv, from: &[&str]) -> Option<BTreeMap<(String, String), String>> {
    let mut out = BTreeMap::new();
    for cluster in CLUSTERS {
        for from in from {
            let se = service_entry(env.cluster(cluster), &host(from)).await?;
            out.insert(
                (cluster.to_owned(), host(from)),
                se.spec.addresses.first().cloned().unwrap_or_default(),
            );
        }
    }
    Some(out)
}

/// No ServiceEntry of `cluster` but `gone`'s was deleted, and each one's writes come from
/// claim revisions that never go back (no replica wrote after the cluster's next holder did).
fn assert_one_writer_and_no_delete(events: &Events, cluster: &str, gone: &str) -> BTreeSet<u64> {
    let events = events.lock().unwrap().clone();
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    let mut terms = BTreeSet::new();
    for event in &events {
        let name = event.1.metadata.name.clone().unwrap_or_default();
        if name == gone {
            continue;
        }
        assert_ne!(event.0, "DELETED", "{cluster}: {name} deleted");
        let term = term(event);
        let before = last.insert(name.clone(), term).unwrap_or(0);
        assert!(
            term >= before,
            "{cluster}: {name} written under claim {term} after claim {before}: two writers"
        );
        terms.insert(term);
    }
    terms
}

/// Whether every one of `clusters` has a ServiceEntry for `host`.
async fn written_in(env: &TestEnv, clusters: &[&str], host: &str) -> bool {
    for cluster in clusters {
        if service_entry(env.cluster(cluster), host).await.is_none() {
            return false;
        }
    }
    true
}

/// Starts replica `name`, serving the gRPC API on `grpc`.
fn start_serving(env: &TestEnv, name: &str, grpc: &str) -> Replica {
    let store = format!("etcd://{}", env.etcd_endpoint());
    Replica::start(
        env,
        name,
        &[
            "--grpc-addr",
            grpc,
            "--leader-election",
            "shard",
            "--store",
            &store,
            "--etcd-prefix",
            PREFIX,
            "--cleanup-on-remove",
        ],
    )
}

fn start(env: &TestEnv, name: &str) -> Replica {
    let grpc = format!("127.0.0.1:{}", support::replica::free_port());
    start_serving(env, name, &grpc)
}

/// What the gRPC `ClusterStatus` of the replica serving on `grpc` says of each cluster:
/// its owner, and whether that replica follows it.
async fn owners_seen(grpc: &str) -> BTreeMap<String, (String, bool)> {
    use federator::api::pb;
    let mut client = pb::registry_client::RegistryClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();
    let clusters = client
        .cluster_status(pb::ClusterStatusRequest::default())
        .await
        .unwrap()
        .into_inner()
        .clusters;
    clusters
        .into_iter()
        .map(|c| {
            let followed = c.state == pb::ClusterState::Followed as i32;
            (c.name, (c.owner, followed))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_six_clusters_a_killed_one_s_move_and_a_new_one_takes_its_share() {
    let env = fleet(&[&["config"][..], &CLUSTERS[..]].concat(), &CLUSTERS).await;
    for cluster in CLUSTERS {
        deploy(env.cluster(cluster), &format!("app-{cluster}"), 1, 0).await;
    }
    let grpc: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", support::replica::free_port()))
        .collect();
    let mut replicas: Vec<Replica> = ["replica-a", "replica-b", "replica-c"]
        .into_iter()
        .zip(&grpc)
        .map(|(name, grpc)| start_serving(&env, name, grpc))
        .collect();
    eventually("every host written in every cluster", || async {
        vips(&env, &CLUSTERS).await.is_some()
    })
    .await;
    let before = vips(&env, &CLUSTERS).await.unwrap();
    // One address per host, whichever replica wrote it.
    for from in CLUSTERS {
        let addresses: BTreeSet<&String> = CLUSTERS
            .iter()
            .map(|c| &before[&(c.to_string(), host(from))])
            .collect();
        assert_eq!(addresses.len(), 1, "{} has VIPs {addresses:?}", host(from));
    }
    // Each cluster claimed by exactly one live replica, all three with a share.
    let owners = claims(&env).await;
    assert_eq!(
        owners.keys().cloned().collect::<BTreeSet<_>>(),
        CLUSTERS.iter().map(|c| c.to_string()).collect()
    );
    let holders: BTreeSet<&str> = owners.values().map(|(h, _)| h.as_str()).collect();
    assert!(holders.len() >= 2, "claims {owners:?}");
    // Every replica's ClusterStatus names each cluster's owner, and follows the others'.
    for (replica, grpc) in replicas.iter().zip(&grpc) {
        let wanted: BTreeMap<String, (String, bool)> = owners
            .iter()
            .map(|(c, (h, _))| (c.clone(), (h.clone(), *h != replica.identity)))
            .collect();
        eventually(
            &format!("{}'s ClusterStatus names the owners", replica.identity),
            || async { owners_seen(grpc).await == wanted },
        )
        .await;
    }
    // Every replica serves every cluster's hosts, with the same VIPs.
    for replica in &replicas {
        for from in CLUSTERS {
            let wanted = before[&("c1".to_owned(), host(from))].clone();
            eventually(
                &format!("{} answers {} with {wanted}", replica.identity, host(from)),
                || async { dig(replica.dns, &host(from), &[]).await.1 == [wanted.clone()] },
            )
            .await;
        }
    }
    let events: Vec<Events> =
        futures::future::join_all(CLUSTERS.iter().map(|c| record_objects(env.cluster(c)))).await;

    // The replica holding the most claims dies without a word.
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (holder, _) in owners.values() {
        *counts.entry(holder.as_str()).or_default() += 1;
    }
    let victim = counts
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(h, _)| h.to_string())
        .unwrap();
    let moved: Vec<String> = owners
        .iter()
        .filter(|(_, (h, _))| *h == victim)
        .map(|(c, _)| c.clone())
        .collect();
    let index = replicas.iter().position(|r| r.identity == victim).unwrap();
    replicas[index].kill().await;
    replicas.remove(index);
    // While no one watches it, a workload of a moved cluster goes: its new owner must not
    // keep what the dead one published of it.
    let orphaned = moved[0].clone();
    env.cluster(&orphaned)
        .delete(&testenv::objects::deployment(
            "sample",
            &format!("app-{orphaned}"),
            &format!("app-{orphaned}"),
            "prod",
        ))
        .await
        .unwrap();

    eventually(
        "the killed replica's clusters claimed by the others",
        || async {
            let now = claims(&env).await;
            moved.iter().all(|c| {
                now.get(c)
                    .is_some_and(|(h, revision)| *h != victim && *revision > owners[c].1)
            })
        },
    )
    .await;
    // Clusters of the live replicas kept their claims.
    let after = claims(&env).await;
    for (cluster, (holder, revision)) in &owners {
        if *holder != victim {
            assert_eq!(
                after[cluster],
                (holder.clone(), *revision),
                "{cluster} moved"
            );
        }
    }
    // A change in a moved cluster is watched and written by its new owner and the others.
    let changed = &moved[0];
    deploy(env.cluster(changed), "late", 1, 0).await;
    eventually("the late host written everywhere", || {
        written_in(&env, &CLUSTERS, "prod.late.global")
    })
    .await;
    eventually("the orphaned workload's host gone everywhere", || async {
        for cluster in CLUSTERS {
            if service_entry(env.cluster(cluster), &host(&orphaned))
                .await
                .is_some()
            {
                return false;
            }
        }
        true
    })
    .await;
    let kept: Vec<&str> = CLUSTERS
        .iter()
        .copied()
        .filter(|c| *c != orphaned)
        .collect();
    let before: BTreeMap<(String, String), String> = before
        .into_iter()
        .filter(|((_, h), _)| *h != host(&orphaned))
        .collect();
    assert_eq!(vips(&env, &kept).await.unwrap(), before, "VIPs moved");
    let mut claimed = 0.0;
    for replica in &replicas {
        claimed += replica.metric("federator_clusters_claimed").await;
    }
    assert_eq!(claimed, 6.0, "claims as the replicas count them");

    // A replica joins: it takes over exactly the clusters rendezvous gives it, each only
    // once its previous holder released it.
    let live: Vec<String> = replicas.iter().map(|r| r.identity.clone()).collect();
    let joiner = (0..)
        .map(|i| format!("replica-new-{i}"))
        .find(|name| {
            let all: Vec<&str> = live
                .iter()
                .map(String::as_str)
                .chain([name.as_str()])
                .collect();
            CLUSTERS
                .iter()
                .any(|c| shards::owner(c, all.iter().copied()) == Some(name.as_str()))
        })
        .unwrap();
    let all: Vec<&str> = live
        .iter()
        .map(String::as_str)
        .chain([joiner.as_str()])
        .collect();
    let gained: Vec<String> = CLUSTERS
        .iter()
        .filter(|c| shards::owner(c, all.iter().copied()) == Some(joiner.as_str()))
        .map(|c| c.to_string())
        .collect();
    replicas.push(start(&env, &joiner));
    eventually("the new replica holds the clusters it owns", || async {
        let now = claims(&env).await;
        gained
            .iter()
            .all(|c| now.get(c).is_some_and(|(h, _)| *h == joiner))
    })
    .await;
    let joined = claims(&env).await;
    for (cluster, (holder, revision)) in &after {
        if !gained.contains(cluster) {
            assert_eq!(
                joined[cluster],
                (holder.clone(), *revision),
                "{cluster} moved"
            );
        }
    }
    let handed = &gained[0];
    deploy(env.cluster(handed), "later", 1, 0).await;
    eventually("the later host written everywhere", || {
        written_in(&env, &CLUSTERS, "prod.later.global")
    })
    .await;
    assert_eq!(
        vips(&env, &kept).await.unwrap(),
        before,
        "VIPs moved\n{}",
        replicas.last().unwrap().log_text()
    );
    for (cluster, events) in CLUSTERS.iter().zip(&events) {
        let terms = assert_one_writer_and_no_delete(events, cluster, &host(&orphaned));
        if moved.contains(&cluster.to_string()) || gained.contains(&cluster.to_string()) {
            let new = joined[*cluster].1;
            assert!(
                terms.contains(&u64::try_from(new).unwrap()),
                "{cluster}: no write under its new claim {new}: {terms:?}\n{}",
                replicas[0].log_text()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_replica_never_writes_after_its_clusters_move_and_says_why_it_stops() {
    const THREE: [&str; 3] = ["c1", "c2", "c3"];
    let env = fleet(&["config", "c1", "c2", "c3"], &THREE).await;
    for cluster in THREE {
        deploy(env.cluster(cluster), &format!("app-{cluster}"), 1, 0).await;
    }
    let mut replicas: Vec<Replica> = ["replica-a", "replica-b"]
        .into_iter()
        .map(|name| start(&env, name))
        .collect();
    for cluster in THREE {
        let host = host(cluster);
        eventually("every host written everywhere", || {
            written_in(&env, &THREE, &host)
        })
        .await;
    }
    let owners = claims(&env).await;
    let (frozen_cluster, (victim, _)) = owners.iter().next().unwrap();
    let (frozen_cluster, victim) = (frozen_cluster.clone(), victim.clone());
    let index = replicas.iter().position(|r| r.identity == victim).unwrap();
    let events: Vec<Events> =
        futures::future::join_all(THREE.iter().map(|c| record_objects(env.cluster(c)))).await;

    // A long pause, as a partition from etcd would be: its lease runs out meanwhile.
    replicas[index].pause();
    eventually(
        "the frozen replica's clusters claimed by the other",
        || async {
            let now = claims(&env).await;
            now.get(&frozen_cluster).is_some_and(|(h, _)| *h != victim)
        },
    )
    .await;
    deploy(env.cluster(&frozen_cluster), "during", 1, 0).await;
    eventually("the new owner watches and everyone writes", || {
        written_in(&env, &THREE, "prod.during.global")
    })
    .await;
    // It wakes up with that host to write: its claims are gone, it must not; it stops and
    // says why.
    replicas[index].resume();
    eventually("the frozen replica stops", || {
        let exited = replicas[index].exited().is_some_and(|s| !s.success());
        async move { exited }
    })
    .await;
    let log = replicas[index].log_text();
    assert!(log.contains("membership lease expired"), "{log}");
    for (cluster, events) in THREE.iter().zip(&events) {
        assert_one_writer_and_no_delete(events, cluster, "");
    }

    // A cluster unregistered: its owner deletes what it wrote there, and what it published
    // of it goes from etcd.
    let config = env.cluster("config");
    config
        .delete(&support::live::cluster_secret("cluster-c1", &[]))
        .await
        .unwrap();
    eventually("the unregistered cluster cleaned up", || async {
        service_entry(env.cluster("c1"), &host("c1"))
            .await
            .is_none()
    })
    .await;
    eventually("its published objects gone from etcd", || async {
        etcd(&env)
            .list_prefix(&format!("{PREFIX}objects/c1/"))
            .await
            .unwrap()
            .0
            .is_empty()
    })
    .await;
    eventually("its hosts gone from the other clusters", || async {
        service_entry(env.cluster("c2"), &host("c1"))
            .await
            .is_none()
    })
    .await;
}
