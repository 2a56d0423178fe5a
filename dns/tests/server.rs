//! The DNS server on real sockets: UDP and TCP queries from a client, truncation, snapshot
//! swaps, Multicluster Services records, and garbage that must not stop it.

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{config, greeting, host, query, start, tcp, udp};
use federator_dns::{ClustersetMember, ClustersetRecord, Snapshot, SnapshotConfig, SrvPort, Zone};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{RData, RecordType};
use tokio::net::UdpSocket;

#[tokio::test]
async fn answers_over_udp_and_tcp() {
    let (snapshot, _) = Snapshot::build(&config(1), [host("prod.greeting.global", "240.0.0.7", 1)]);
    let (_, addr) = start(snapshot).await;
    for response in [
        udp(addr, &query("Prod.Greeting.Global.", RecordType::A, None)).await,
        tcp(addr, &query("prod.greeting.global.", RecordType::A, None)).await,
    ] {
        assert_eq!(response.metadata.id, 4242);
        assert_eq!(response.metadata.response_code, ResponseCode::NoError);
        assert!(response.metadata.authoritative);
        assert!(!response.metadata.recursion_available, "not a resolver");
        assert_eq!(
            &response.answers[0].data,
            &RData::A("240.0.0.7".parse().unwrap())
        );
    }
    let outside = udp(addr, &query("example.com.", RecordType::A, None)).await;
    assert_eq!(outside.metadata.response_code, ResponseCode::Refused);
    let missing = udp(
        addr,
        &query("prod.nothing.global.", RecordType::A, Some(1232)),
    )
    .await;
    assert_eq!(missing.metadata.response_code, ResponseCode::NXDomain);
    assert!(matches!(missing.authorities[0].data, RData::SOA(_)));
    assert!(missing.edns.is_some(), "EDNS answered with EDNS");
}

/// Answers here are small (one address, or one SRV plus its target's address), but names may
/// be long: at the longest legal names a UDP answer must be complete or marked truncated,
/// never silently cut, and TCP must carry it whole.
#[tokio::test]
async fn udp_answers_are_complete_or_marked_truncated() {
    let label = "x".repeat(60);
    let long = format!("prod.{label}.{label}.{label}.global");
    let (snapshot, errors) = Snapshot::build(&config(1), [host(&long, "240.0.0.8", 1)]);
    assert!(errors.is_empty(), "{errors:?}");
    let (_, addr) = start(snapshot).await;
    let name = format!("_port-0._tcp.{long}.");
    for edns in [None, Some(512), Some(1232)] {
        let u = udp(addr, &query(&name, RecordType::SRV, edns)).await;
        let t = tcp(addr, &query(&name, RecordType::SRV, edns)).await;
        assert_eq!(t.answers.len(), 1, "TCP carries the whole answer");
        assert_eq!(t.additionals.len(), 1);
        if u.metadata.truncation {
            assert!(u.answers.len() + u.additionals.len() < 2);
        } else {
            assert_eq!((u.answers, u.additionals), (t.answers, t.additionals));
        }
    }
}

#[tokio::test]
async fn swapping_the_snapshot_changes_answers_at_once() {
    let (snapshot, _) = Snapshot::build(&config(1), [host("prod.a.global", "240.0.0.1", 0)]);
    let (handle, addr) = start(snapshot).await;
    assert_eq!(
        udp(addr, &query("prod.b.global.", RecordType::A, None))
            .await
            .metadata
            .response_code,
        ResponseCode::NXDomain
    );
    handle.store(Snapshot::build(&config(2), [host("prod.b.global", "240.0.0.2", 0)]).0);
    let b = udp(addr, &query("prod.b.global.", RecordType::A, None)).await;
    assert_eq!(&b.answers[0].data, &RData::A("240.0.0.2".parse().unwrap()));
    assert_eq!(
        udp(addr, &query("prod.a.global.", RecordType::A, None))
            .await
            .metadata
            .response_code,
        ResponseCode::NXDomain
    );
}

#[tokio::test]
async fn garbage_does_not_stop_the_server() {
    let (_, addr) = start(greeting()).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let valid = query("prod.greeting.global.", RecordType::A, None);
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for i in 0..2000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let packet: Vec<u8> = if i % 2 == 0 {
            (0..(seed % 300) as usize)
                .map(|j| (seed >> (j % 56)) as u8)
                .collect()
        } else {
            let mut p = valid.clone();
            let at = (seed as usize) % p.len();
            p[at] ^= (seed >> 8) as u8 | 1;
            p.truncate(p.len() - (seed as usize >> 16) % 4);
            p
        };
        socket.send_to(&packet, addr).await.unwrap();
    }
    let ok = udp(addr, &valid).await;
    assert_eq!(&ok.answers[0].data, &RData::A("240.0.0.7".parse().unwrap()));
    let ok = tcp(addr, &valid).await;
    assert_eq!(ok.metadata.response_code, ResponseCode::NoError);
}

/// A ClusterSetIP service, a headless one in two clusters, and the schema version, as a pod
/// of the clusterset would ask for them.
#[tokio::test]
async fn answers_multicluster_services_records() {
    let config = SnapshotConfig {
        zones: vec![Zone::new("clusterset.local").unwrap()],
        ..config(1)
    };
    let https = SrvPort {
        name: "https".into(),
        protocol: "tcp".into(),
        number: 443,
    };
    let web = ClustersetRecord {
        name: "web.shop.svc.clusterset.local".into(),
        headless: false,
        addresses: vec!["10.42.0.1".parse().unwrap()],
        ports: vec![https.clone()],
        members: vec![],
    };
    let member = |hostname: &str, cluster_id: &str, ip: &str| ClustersetMember {
        hostname: hostname.into(),
        cluster_id: cluster_id.into(),
        addresses: vec![ip.parse().unwrap()],
    };
    let db = ClustersetRecord {
        name: "db.shop.svc.clusterset.local".into(),
        headless: true,
        addresses: vec![],
        ports: vec![https],
        members: vec![
            member("pet-0", "cluster-a", "10.1.0.10"),
            member("pet-0", "cluster-b", "10.2.0.10"),
        ],
    };
    let (snapshot, errors) = Snapshot::build_with_clusterset(&config, [], [web, db]);
    assert!(errors.is_empty(), "{errors:?}");
    let (_, addr) = start(snapshot).await;

    let a = udp(
        addr,
        &query("web.shop.svc.clusterset.local.", RecordType::A, None),
    )
    .await;
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
    assert!(a.metadata.authoritative);
    assert_eq!(&a.answers[0].data, &RData::A("10.42.0.1".parse().unwrap()));

    let srv = udp(
        addr,
        &query(
            "_https._tcp.db.shop.svc.clusterset.local.",
            RecordType::SRV,
            Some(1232),
        ),
    )
    .await;
    assert_eq!(srv.metadata.response_code, ResponseCode::NoError);
    assert!(!srv.metadata.truncation);
    let targets: Vec<String> = srv
        .answers
        .iter()
        .map(|r| match &r.data {
            RData::SRV(srv) => format!("{} {}", srv.port, srv.target),
            other => panic!("not SRV: {other:?}"),
        })
        .collect();
    assert_eq!(
        targets,
        [
            "443 pet-0.cluster-a.db.shop.svc.clusterset.local.",
            "443 pet-0.cluster-b.db.shop.svc.clusterset.local.",
        ]
    );
    let additionals: Vec<&RData> = srv
        .additionals
        .iter()
        .filter(|r| r.record_type() == RecordType::A)
        .map(|r| &r.data)
        .collect();
    assert_eq!(
        additionals,
        [
            &RData::A("10.1.0.10".parse().unwrap()),
            &RData::A("10.2.0.10".parse().unwrap()),
        ]
    );

    let txt = udp(
        addr,
        &query("dns-version.clusterset.local.", RecordType::TXT, None),
    )
    .await;
    assert_eq!(txt.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        &txt.answers[0].data,
        &RData::TXT(TXT::new(vec!["1.0.0".into()]))
    );

    let per_cluster = udp(
        addr,
        &query(
            "cluster-a.web.shop.svc.clusterset.local.",
            RecordType::A,
            None,
        ),
    )
    .await;
    assert_eq!(per_cluster.metadata.response_code, ResponseCode::NXDomain);
}
