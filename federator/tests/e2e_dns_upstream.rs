//! `federator dns --upstream`: a standalone DNS server fed by a controller's gRPC Watch,
//! both real processes. It answers what the controller's own DNS server answers, keeps
//! answering while the controller is gone (and says so on /readyz), and follows the next
//! controller.

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::live::{deploy, dig, eventually, fleet};
use support::replica::{Replica, free_port};

const HOSTS: [&str; 4] = [
    "prod.app-0.global",
    "prod.app-1.global",
    "prod.app-2.global",
    "prod.missing.global",
];

/// Status and A answers of `name` from a DNS server.
async fn answers(server: std::net::SocketAddr, name: &str) -> (String, Vec<String>) {
    dig(server, name, &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_dns_answers_like_the_controller_and_through_its_restart() {
    let env = fleet(&["config", "east", "west"], &["east", "west"]).await;
    for i in 0..3 {
        deploy(env.cluster("east"), &format!("app-{i}"), 1, 0).await;
    }
    let grpc = format!("127.0.0.1:{}", free_port());
    let controller_flags = ["--grpc-addr", grpc.as_str(), "--leader-election", "none"];
    let mut controller = Replica::start(&env, "controller", &controller_flags);
    eventually("the controller answers every host", || async {
        answers(controller.dns, "prod.app-2.global").await.0 == "NOERROR"
    })
    .await;
    let standalone =
        Replica::dns_upstream(&format!("http://{grpc}"), &["--upstream-stale-after", "2s"]);
    eventually("the standalone DNS is ready", || async {
        standalone.get("/readyz").await.0 == 200
    })
    .await;
    let mut embedded = Vec::new();
    for name in HOSTS {
        let wanted = answers(controller.dns, name).await;
        eventually(&format!("{name} answered alike: {wanted:?}"), || async {
            answers(standalone.dns, name).await == wanted
        })
        .await;
        embedded.push(wanted);
    }
    assert_eq!(embedded[3].0, "NXDOMAIN");
    assert!(
        embedded[..3]
            .iter()
            .all(|(s, a)| s == "NOERROR" && a.len() == 1)
    );

    // The controller goes away: the answers stay, /readyz says the upstream is gone.
    controller.kill().await;
    eventually("/readyz reports the upstream gone", || async {
        let (code, body) = standalone.get("/readyz").await;
        code == 503 && body.contains(&grpc)
    })
    .await;
    for (name, wanted) in HOSTS.iter().zip(&embedded) {
        assert_eq!(&answers(standalone.dns, name).await, wanted, "{name}");
    }

    // The next controller: the standalone follows it, and what changes from then on.
    let controller = Replica::start(&env, "controller-2", &controller_flags);
    deploy(env.cluster("west"), "late", 1, 0).await;
    eventually("the new controller answers the new host", || async {
        answers(controller.dns, "prod.late.global").await.0 == "NOERROR"
    })
    .await;
    let wanted = answers(controller.dns, "prod.late.global").await;
    eventually("the standalone follows the new controller", || async {
        answers(standalone.dns, "prod.late.global").await == wanted
            && standalone.get("/readyz").await.0 == 200
    })
    .await;
    for (name, before) in HOSTS.iter().zip(&embedded) {
        assert_eq!(&answers(standalone.dns, name).await, before, "{name} moved");
    }
}
