//! Watch fan-out over real gRPC on loopback: 100 subscribers, each on its own connection,
//! watch a registry of 1000 hosts; one change is published and the time until every
//! subscriber has it is measured, against the floor of the same 100 clients each making one
//! unary call (`GetService`) at once.
//!
//! Run: `cargo bench -p federator --bench watch_fanout`. Under `cargo test` it runs a small
//! smoke-sized version.

// A failed fixture or assertion should stop a benchmark loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use federator::api::pb::registry_client::RegistryClient;
use federator::api::pb::{GetServiceRequest, WatchRequest};
use federator::api::{Sources, serve};
use federator::fixtures::{app, cluster, slice, upsert};
use federator::registry::{Registry, RegistryConfig};
use tokio::sync::{mpsc, watch};
use tonic::transport::Channel;

struct Sizes {
    hosts: usize,
    subscribers: usize,
    samples: usize,
}

#[tokio::main]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let sizes = if bench {
        Sizes {
            hosts: 1000,
            subscribers: 100,
            samples: 100,
        }
    } else {
        Sizes {
            hosts: 10,
            subscribers: 5,
            samples: 3,
        }
    };
    let mut registry = Registry::new(RegistryConfig::default());
    registry.apply(cluster("east"));
    for i in 0..sizes.hosts {
        let name = format!("svc-{i}");
        for d in app(
            "east",
            "ns",
            &name,
            &name,
            "prod",
            &[("http", 80)],
            &[("", "z")],
        ) {
            registry.apply(d);
        }
    }
    let views = watch::Sender::new(registry.publish());
    let ready = watch::Sender::new(true);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(
        listener,
        Sources {
            views: views.subscribe(),
            ready: ready.subscribe(),
            clusters: watch::Sender::new(Default::default()).subscribe(),
        },
        None,
    ));

    // Each subscriber on its own connection; each reports when it has the next change.
    let (arrived_tx, mut arrived) = mpsc::channel::<Instant>(sizes.subscribers);
    let mut channels = Vec::new();
    let mut synced = Vec::new();
    for _ in 0..sizes.subscribers {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        channels.push(channel.clone());
        let mut stream = RegistryClient::new(channel)
            .watch(WatchRequest::default())
            .await
            .unwrap()
            .into_inner();
        let (synced_tx, synced_rx) = tokio::sync::oneshot::channel();
        synced.push(synced_rx);
        let arrived_tx = arrived_tx.clone();
        tokio::spawn(async move {
            let mut synced_tx = Some(synced_tx);
            while let Ok(Some(event)) = stream.message().await {
                if event.version.is_empty() {
                    continue;
                }
                match synced_tx.take() {
                    Some(tx) => {
                        let _ = tx.send(());
                    }
                    None => {
                        let _ = arrived_tx.send(Instant::now()).await;
                    }
                }
            }
        });
    }
    for rx in synced {
        rx.await.unwrap();
    }

    let mut all_notified = Vec::new();
    let mut each = Vec::new();
    for sample in 0..sizes.samples {
        let ready_endpoints: &[(&str, &str)] = if sample % 2 == 0 {
            &[("", "z"), ("", "z")]
        } else {
            &[("", "z")]
        };
        registry.apply(upsert(
            "east",
            slice("ns", "svc-0-1", "svc-0", ready_endpoints),
        ));
        let published = Instant::now();
        views.send_replace(registry.publish());
        let mut last = published;
        for _ in 0..sizes.subscribers {
            let at = arrived.recv().await.unwrap();
            each.push(at - published);
            last = last.max(at);
        }
        all_notified.push(last - published);
    }

    // Floor: every client makes one unary call at once.
    let mut floor = Vec::new();
    for _ in 0..sizes.samples {
        let start = Instant::now();
        let calls = channels.iter().map(|channel| {
            let mut client = RegistryClient::new(channel.clone());
            async move {
                client
                    .get_service(GetServiceRequest {
                        host: "prod.svc-0.global".into(),
                    })
                    .await
                    .unwrap();
            }
        });
        futures::future::join_all(calls).await;
        floor.push(start.elapsed());
    }

    println!(
        "| {} subscribers, {} hosts, {} changes | p50 | p99 | max |",
        sizes.subscribers, sizes.hosts, sizes.samples
    );
    println!("| --- | --- | --- | --- |");
    row(
        "one change until every subscriber has it",
        &mut all_notified,
    );
    row("one change until one subscriber has it (each)", &mut each);
    row("floor: every client's unary GetService at once", &mut floor);
}

fn row(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i].as_secs_f64() * 1000.0
    };
    println!(
        "| {what} | {:.2} ms | {:.2} ms | {:.2} ms |",
        at(0.5),
        at(0.99),
        at(1.0)
    );
}
