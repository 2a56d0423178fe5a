//! Serves a zone of N hosts from one thread, for load tests (see `dns/bench/dnsperf.sh`).
//!
//!     bench_server ADDR N     # e.g. 127.0.0.1:5399 10000

// A benchmark fixture: failing loudly on bad arguments is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use federator_dns::{
    DnsHandler, HostRecord, ServeOptions, Snapshot, SnapshotConfig, SnapshotHandle, Zone, serve,
};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args
        .next()
        .expect("usage: bench_server ADDR N")
        .parse()
        .expect("ADDR");
    let hosts: u32 = args
        .next()
        .expect("usage: bench_server ADDR N")
        .parse()
        .expect("N");
    let config = SnapshotConfig {
        zones: vec![Zone::new("global").unwrap()],
        ttl: 5,
        serial: 1,
    };
    let records = (0..hosts).map(|i| HostRecord {
        name: format!("prod.svc-{i}.global"),
        address: IpAddr::V4(Ipv4Addr::from(0xf000_0000 + i + 1)),
        ports: vec![("http".into(), 8080)],
    });
    let (snapshot, errors) = Snapshot::build(&config, records);
    assert!(errors.is_empty());
    let sockets = federator_dns::bind(addr).await.unwrap();
    println!("ready: {} hosts on {addr}", snapshot.hosts());
    // Metrics on, as in `federator run`.
    let metrics = federator_dns::DnsMetrics::default();
    let err = serve(
        DnsHandler::new(SnapshotHandle::new(snapshot), Some(metrics)),
        sockets,
        ServeOptions::default(),
    )
    .await;
    panic!("DNS server stopped: {err}");
}
