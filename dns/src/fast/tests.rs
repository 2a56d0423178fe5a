//! The lean path answers byte for byte as the hickory path, or declines: random queries
//! (names of the zone in random case, their parents, names outside it; random types,
//! classes, ids, flags, EDNS records and trailing bytes) go through both.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use hickory_server::net::xfer::Protocol;
use proptest::prelude::*;

use super::*;
use crate::server::respond::Responder;
use crate::{
    ClustersetMember, ClustersetRecord, DnsHandler, HostRecord, SnapshotConfig, SnapshotHandle,
    SrvPort, Zone,
};

fn snapshot() -> Snapshot {
    let config = SnapshotConfig {
        zones: vec![
            Zone::new("global").unwrap(),
            Zone::new("clusterset.local").unwrap(),
        ],
        ttl: 5,
        serial: 3,
    };
    let host = |name: &str, address: &str, ports: &[(&str, u16)]| HostRecord {
        name: name.into(),
        address: address.parse().unwrap(),
        ports: ports.iter().map(|(n, p)| ((*n).into(), *p)).collect(),
    };
    let hosts = [
        host("prod.a.global", "240.0.0.1", &[("http", 80), ("grpc", 90)]),
        host("PROD.a.global", "fd00::1", &[("http", 81)]),
        host("prod.v6.global", "fd00::2", &[]),
        host("global", "240.0.0.3", &[]),
    ];
    // Enough endpoints that their SRV answer does not fit in 512 bytes.
    let members = (0..30)
        .map(|i| ClustersetMember {
            hostname: format!("pod-{i}"),
            cluster_id: "east".into(),
            addresses: vec![format!("10.1.0.{i}").parse().unwrap()],
        })
        .collect();
    let web = ClustersetRecord {
        name: "web.shop.svc.clusterset.local".into(),
        headless: true,
        addresses: vec![],
        ports: vec![SrvPort {
            name: "http".into(),
            protocol: "tcp".into(),
            number: 80,
        }],
        members,
    };
    let (snapshot, errors) = Snapshot::build_with_clusterset(&config, hosts, [web]);
    assert!(errors.is_empty(), "{errors:?}");
    snapshot
}

const NAMES: &[&str] = &[
    "prod.a.global",
    "_http._tcp.prod.a.global",
    "_grpc._tcp.prod.a.global",
    "_tcp.prod.a.global",
    "a.global",
    "prod.v6.global",
    "global",
    "nothing.global",
    "web.shop.svc.clusterset.local",
    "pod-7.east.web.shop.svc.clusterset.local",
    "_http._tcp.web.shop.svc.clusterset.local",
    "dns-version.clusterset.local",
    "shop.svc.clusterset.local",
    "example.com",
];
const QTYPES: &[u16] = &[1, 28, 33, 16, 255, 6, 2, 15, 252, 41];

fn wire_name(name: &str, upper: &[bool]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut flips = upper.iter().cycle();
    for label in name.split('.') {
        out.push(u8::try_from(label.len()).unwrap());
        out.extend(label.bytes().map(|b| match flips.next() {
            Some(true) => b.to_ascii_uppercase(),
            _ => b,
        }));
    }
    out.push(0);
    out
}

#[derive(Debug, Clone)]
struct Edns {
    payload: u16,
    rcode_high: u8,
    version: u8,
    flags: u16,
    options: Vec<u8>,
}

fn edns() -> impl Strategy<Value = Edns> {
    (
        prop_oneof![
            Just(512u16),
            Just(1232),
            Just(4096),
            0..512u16,
            any::<u16>()
        ],
        prop_oneof![4 => Just(0u8), 1 => any::<u8>()],
        prop_oneof![4 => Just(0u8), 1 => any::<u8>()],
        any::<u16>(),
        prop_oneof![3 => Just(vec![]), 1 => prop::collection::vec(any::<u8>(), 0..12)],
    )
        .prop_map(|(payload, rcode_high, version, flags, options)| Edns {
            payload,
            rcode_high,
            version,
            flags,
            options,
        })
}

prop_compose! {
    fn query()(
        name in prop::sample::select(NAMES),
        upper in prop::collection::vec(any::<bool>(), 1..8),
        qtype in prop_oneof![4 => prop::sample::select(QTYPES), 1 => any::<u16>()],
        qclass in prop_oneof![6 => Just(1u16), 1 => Just(3), 1 => Just(255), 1 => any::<u16>()],
        id in any::<u16>(),
        flags in prop_oneof![3 => Just([1u8, 0]), 1 => any::<[u8; 2]>()],
        counts in prop_oneof![6 => Just(None), 1 => any::<[u8; 6]>().prop_map(Some)],
        edns in prop::option::of(edns()),
        trailing in prop_oneof![6 => Just(vec![]), 1 => prop::collection::vec(any::<u8>(), 1..6)],
    ) -> Vec<u8> {
        let mut m = id.to_be_bytes().to_vec();
        m.extend_from_slice(&flags);
        m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(edns.is_some())]);
        if let Some(counts) = counts {
            m[6..12].copy_from_slice(&counts);
        }
        m.extend(wire_name(name, &upper));
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&qclass.to_be_bytes());
        if let Some(e) = edns {
            m.extend_from_slice(&[0, 0, 41]);
            m.extend_from_slice(&e.payload.to_be_bytes());
            m.extend_from_slice(&[e.rcode_high, e.version]);
            m.extend_from_slice(&e.flags.to_be_bytes());
            m.extend_from_slice(&u16::try_from(e.options.len()).unwrap().to_be_bytes());
            m.extend_from_slice(&e.options);
        }
        m.extend(trailing);
        m
    }
}

/// The hickory path's answer to `message`, as the UDP loop sends it.
fn hickory(handler: &DnsHandler, message: &[u8]) -> Option<Vec<u8>> {
    let responder = Responder::new(handler.clone(), Protocol::Udp);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut out = Vec::new();
    let answered =
        runtime.block_on(responder.respond(message, "127.0.0.1:5353".parse().unwrap(), &mut out));
    answered.then_some(out)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn the_lean_path_answers_as_hickory_or_declines(message in query()) {
        let snapshot = snapshot();
        let mut out = Vec::new();
        if respond(&snapshot, &message, &mut out).is_some() {
            let handler = DnsHandler::new(SnapshotHandle::new(snapshot), None);
            prop_assert_eq!(Some(out), hickory(&handler, &message));
        }
    }
}

#[test]
fn common_queries_take_the_lean_path_in_any_case() {
    let snapshot = snapshot();
    let handler = DnsHandler::new(SnapshotHandle::new(snapshot.clone()), None);
    for (name, qtype) in [
        ("prod.a.global", 1u16),
        ("PROD.A.Global", 28),
        ("_http._tcp.Prod.a.global", 33),
        ("pod-7.east.web.shop.svc.clusterset.local", 1),
        ("dns-version.clusterset.local", 16),
    ] {
        let mut message = b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00".to_vec();
        message.extend(wire_name(name, &[false]));
        message.extend_from_slice(&qtype.to_be_bytes());
        message.extend_from_slice(&[0, 1]);
        for edns in [false, true] {
            if edns {
                message[11] = 1;
                message.extend_from_slice(b"\x00\x00\x29\x04\xd0\x00\x00\x80\x00\x00\x00");
            }
            let mut out = Vec::new();
            let fast = respond(&snapshot, &message, &mut out);
            assert_eq!(
                fast.map(|(t, c)| (u16::from(t), c)),
                Some((qtype, ResponseCode::NoError)),
                "{name} {qtype} edns {edns}"
            );
            assert_eq!(Some(out), hickory(&handler, &message), "{name} {qtype}");
        }
    }
}

#[test]
fn an_update_keeps_the_precomputed_answers_right() {
    let snapshot = snapshot();
    // Asked once before: the answers the update must not keep are computed.
    ask_all(
        &snapshot,
        &DnsHandler::new(SnapshotHandle::new(snapshot.clone()), None),
    )
    .unwrap();
    let moved = HostRecord {
        name: "PROD.a.global".into(),
        address: "fd00::9".parse().unwrap(),
        ports: vec![],
    };
    let (updated, _) = snapshot.update([crate::Change::Host(moved)]);
    let handler = DnsHandler::new(SnapshotHandle::new(updated.clone()), None);
    // An SRV name of the other host of that name (untouched by the change) has the moved
    // address as additional.
    for (name, qtype) in [("_grpc._tcp.prod.a.global", 33u16), ("prod.a.global", 28)] {
        let mut message = b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00".to_vec();
        message.extend(wire_name(name, &[false]));
        message.extend_from_slice(&qtype.to_be_bytes());
        message.extend_from_slice(&[0, 1]);
        let mut out = Vec::new();
        assert!(respond(&updated, &message, &mut out).is_some(), "{name}");
        assert_eq!(Some(out), hickory(&handler, &message), "{name}");
    }
}

fn changes() -> impl Strategy<Value = Vec<crate::Change>> {
    let host = (
        prop::sample::select(
            &[
                "prod.a.global",
                "PROD.a.global",
                "a.global",
                "x.prod.a.global",
            ][..],
        ),
        prop::sample::select(&["240.0.0.1", "240.0.0.2", "fd00::1"][..]),
        prop::sample::subsequence(&[("http", 80u16), ("grpc", 90)][..], 0..=2),
    )
        .prop_map(|(name, address, ports)| HostRecord {
            name: name.into(),
            address: address.parse().unwrap(),
            ports: ports.iter().map(|(n, p)| ((*n).into(), *p)).collect(),
        });
    // Clusterset services: the fixture's headless one shrunk to a few endpoints (so its SRV
    // answer fits), turned into a ClusterSetIP one and back, and another service.
    let service = (
        prop::sample::select(
            &[
                "web.shop.svc.clusterset.local",
                "api.shop.svc.clusterset.local",
            ][..],
        ),
        any::<bool>(),
        0usize..4,
    )
        .prop_map(|(name, headless, members)| ClustersetRecord {
            name: name.into(),
            headless,
            addresses: if headless {
                vec![]
            } else {
                vec!["240.0.1.1".parse().unwrap()]
            },
            ports: vec![SrvPort {
                name: "http".into(),
                protocol: "tcp".into(),
                number: 80,
            }],
            members: (0..if headless { members } else { 0 })
                .map(|i| ClustersetMember {
                    hostname: format!("pod-{i}"),
                    cluster_id: "east".into(),
                    addresses: vec![format!("10.1.0.{i}").parse().unwrap()],
                })
                .collect(),
        });
    let change = prop_oneof![
        3 => host.prop_map(crate::Change::Host),
        1 => prop::sample::select(&["prod.a.global", "PROD.a.global", "a.global"][..])
            .prop_map(|n| crate::Change::HostGone(n.into())),
        2 => service.prop_map(crate::Change::Clusterset),
        1 => prop::sample::select(&["web.shop.svc.clusterset.local", "api.shop.svc.clusterset.local"][..])
            .prop_map(|n| crate::Change::ClustersetGone(n.into())),
    ];
    prop::collection::vec(change, 1..8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn after_updates_the_lean_path_still_answers_as_hickory(
        batches in prop::collection::vec(changes(), 1..4),
    ) {
        let mut snapshot = snapshot();
        for batch in batches {
            // Every answer computed on the snapshot before, which the next one shares.
            let before = DnsHandler::new(SnapshotHandle::new(snapshot.clone()), None);
            ask_all(&snapshot, &before)?;
            snapshot = snapshot.update(batch).0;
        }
        let handler = DnsHandler::new(SnapshotHandle::new(snapshot.clone()), None);
        ask_all(&snapshot, &handler)?;
    }
}

/// Asks every name of the fixtures for A, AAAA and SRV through the lean path; whatever it
/// answers must be what the hickory path answers.
fn ask_all(snapshot: &Snapshot, handler: &DnsHandler) -> Result<(), TestCaseError> {
    for name in NAMES.iter().chain(&[
        "x.prod.a.global",
        "_grpc._tcp.x.prod.a.global",
        "pod-1.east.web.shop.svc.clusterset.local",
        "api.shop.svc.clusterset.local",
        "_http._tcp.api.shop.svc.clusterset.local",
        "pod-0.east.api.shop.svc.clusterset.local",
    ]) {
        for qtype in [1u16, 28, 33] {
            let mut message = b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00".to_vec();
            message.extend(wire_name(name, &[false]));
            message.extend_from_slice(&qtype.to_be_bytes());
            message.extend_from_slice(&[0, 1]);
            let mut out = Vec::new();
            if respond(snapshot, &message, &mut out).is_some() {
                prop_assert_eq!(Some(out), hickory(handler, &message), "{} {}", name, qtype);
            }
        }
    }
    Ok(())
}

#[test]
fn an_answer_no_udp_client_can_take_is_not_kept_and_goes_to_hickory() {
    let snapshot = snapshot();
    let kept = |name: &str| {
        let key = crate::names::NameKey::of(&hickory_proto::rr::Name::from_ascii(name).unwrap());
        let records = snapshot.names.get(key.as_bytes()).unwrap();
        let wire = snapshot.wire_answers(key.as_bytes(), records);
        wire.iter().any(|w| w.qtype == 33)
    };
    assert!(
        kept("_http._tcp.prod.a.global"),
        "an answer that fits is kept"
    );
    // The headless service's SRV answer: 30 targets and their addresses, about 1,400
    // bytes, past anything sent over UDP (1,232 bytes with EDNS).
    let srv = "_http._tcp.web.shop.svc.clusterset.local";
    assert!(
        !kept(srv),
        "an answer longer than any UDP answer is not kept"
    );
    // With EDNS's largest payload, the lean path declines and hickory answers, truncated.
    let mut message = b"\x00\x07\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01".to_vec();
    message.extend(wire_name(srv, &[false]));
    message.extend_from_slice(&[0, 33, 0, 1]);
    message.extend_from_slice(b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00");
    let mut out = Vec::new();
    assert!(respond(&snapshot, &message, &mut out).is_none());
    let handler = DnsHandler::new(SnapshotHandle::new(snapshot), None);
    let answer = hickory(&handler, &message).unwrap();
    assert_ne!(answer[2] & 0x02, 0, "hickory sets TC");
}
