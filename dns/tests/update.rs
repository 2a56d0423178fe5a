//! A snapshot kept current by updates answers exactly as a full build of what it now holds:
//! random sequences of hosts and clusterset services added, changed and removed (names that
//! collide, ports and headless members coming and going, services turning headless) are
//! compared, name by name and type by type, with a full build of the final state.

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::str::FromStr;

use federator_dns::{
    Change, ClustersetMember, ClustersetRecord, HostRecord, Snapshot, SnapshotConfig, SrvPort,
    Zone, answer,
};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, LowerName, Name, RecordType};
use proptest::prelude::*;

const HOSTS: &[&str] = &[
    "prod.a.global",
    "PROD.a.global",
    "a.global",
    "prod.b.global",
    "x.prod.a.global",
    "_http._tcp.prod.a.global",
    "web.shop.svc.clusterset.local",
];
const SERVICES: &[&str] = &[
    "web.shop.svc.clusterset.local",
    "WEB.shop.svc.clusterset.local",
    "db.shop.svc.clusterset.local",
    "m1.east.web.shop.svc.clusterset.local",
    "prod.a.global",
];
const ADDRESSES: &[&str] = &["240.0.0.1", "240.0.0.2", "fd00::1"];
const HOST_PORTS: &[(&str, u16)] = &[("http", 80), ("grpc", 90), ("http", 81)];
const SERVICE_PORTS: &[(&str, &str, u16)] =
    &[("http", "tcp", 80), ("", "tcp", 81), ("dns", "udp", 53)];
const MEMBERS: &[(&str, &str)] = &[
    ("m1", "east"),
    ("m2", "east"),
    ("m1", "west"),
    ("Bad_", "east"),
];

fn config(serial: u32) -> SnapshotConfig {
    SnapshotConfig {
        zones: vec![
            Zone::new("global").unwrap(),
            Zone::new("clusterset.local").unwrap(),
        ],
        ttl: 5,
        serial,
    }
}

fn address() -> impl Strategy<Value = IpAddr> {
    prop::sample::select(ADDRESSES).prop_map(|a| a.parse().unwrap())
}

fn host() -> impl Strategy<Value = HostRecord> {
    (
        prop::sample::select(HOSTS),
        address(),
        prop::sample::subsequence(HOST_PORTS, 0..=3),
    )
        .prop_map(|(name, address, ports)| HostRecord {
            name: name.into(),
            address,
            ports: ports.iter().map(|(n, p)| ((*n).into(), *p)).collect(),
        })
}

fn service() -> impl Strategy<Value = ClustersetRecord> {
    let member = (
        prop::sample::select(MEMBERS),
        prop::collection::vec(address(), 0..=2),
    )
        .prop_map(|((hostname, cluster_id), addresses)| ClustersetMember {
            hostname: hostname.into(),
            cluster_id: cluster_id.into(),
            addresses,
        });
    (
        prop::sample::select(SERVICES),
        any::<bool>(),
        prop::collection::vec(address(), 0..=2),
        prop::sample::subsequence(SERVICE_PORTS, 0..=3),
        prop::collection::vec(member, 0..=3),
    )
        .prop_map(
            |(name, headless, addresses, ports, members)| ClustersetRecord {
                name: name.into(),
                headless,
                addresses,
                ports: ports
                    .iter()
                    .map(|(name, protocol, number)| SrvPort {
                        name: (*name).into(),
                        protocol: (*protocol).into(),
                        number: *number,
                    })
                    .collect(),
                members,
            },
        )
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => host().prop_map(Change::Host),
        2 => prop::sample::select(HOSTS).prop_map(|n| Change::HostGone(n.into())),
        3 => service().prop_map(Change::Clusterset),
        2 => prop::sample::select(SERVICES).prop_map(|n| Change::ClustersetGone(n.into())),
    ]
}

/// What the snapshot should hold: every host and service, in the order they first came (a
/// changed one keeps its place).
#[derive(Default)]
struct Model {
    hosts: Vec<HostRecord>,
    services: Vec<ClustersetRecord>,
}

impl Model {
    fn apply(&mut self, change: &Change) {
        match change {
            Change::Host(h) => match self.hosts.iter_mut().find(|x| x.name == h.name) {
                Some(x) => *x = h.clone(),
                None => self.hosts.push(h.clone()),
            },
            Change::HostGone(name) => self.hosts.retain(|x| x.name != *name),
            Change::Clusterset(s) => match self.services.iter_mut().find(|x| x.name == s.name) {
                Some(x) => *x = s.clone(),
                None => self.services.push(s.clone()),
            },
            Change::ClustersetGone(name) => self.services.retain(|x| x.name != *name),
        }
    }
}

/// Every name the sources could make, their ancestors, and some that never exist.
fn names_to_ask() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut add = |n: String| {
        let mut name = Name::from_str(&n).unwrap();
        name.set_fqdn(true);
        while name.num_labels() > 0 {
            names.insert(name.to_string());
            name = name.base_name();
        }
    };
    for base in HOSTS.iter().chain(SERVICES) {
        add((*base).to_owned());
        for (port, _) in HOST_PORTS {
            add(format!("_{port}._tcp.{base}"));
        }
        for (port, protocol, _) in SERVICE_PORTS {
            add(format!("_{port}._{protocol}.{base}"));
        }
        for (hostname, cluster) in MEMBERS {
            add(format!("{hostname}.{cluster}.{base}"));
        }
    }
    add("dns-version.clusterset.local".into());
    add("nothing.global".into());
    add("nothing.svc.clusterset.local".into());
    names
}

const QTYPES: &[RecordType] = &[
    RecordType::A,
    RecordType::AAAA,
    RecordType::SRV,
    RecordType::TXT,
    RecordType::ANY,
    RecordType::SOA,
    RecordType::NS,
];

fn assert_same_answers(updated: &Snapshot, built: &Snapshot) -> Result<(), TestCaseError> {
    prop_assert_eq!(updated.hosts(), built.hosts());
    prop_assert_eq!(updated.clusterset_services(), built.clusterset_services());
    for name in names_to_ask() {
        let lower = LowerName::from(Name::from_str(&name).unwrap());
        for qtype in QTYPES {
            let ours = answer(updated, &lower, *qtype, DNSClass::IN);
            let full = answer(built, &lower, *qtype, DNSClass::IN);
            prop_assert_eq!(ours, full, "{} {}", name, qtype);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn updates_answer_as_a_full_build_of_the_final_state(
        initial in prop::collection::vec(change(), 0..6),
        updates in prop::collection::vec(prop::collection::vec(change(), 1..5), 1..5),
    ) {
        let mut model = Model::default();
        for change in &initial {
            model.apply(change);
        }
        let (mut snapshot, _) = Snapshot::build_with_clusterset(
            &config(1),
            model.hosts.clone(),
            model.services.clone(),
        );
        for batch in &updates {
            for change in batch {
                model.apply(change);
            }
            snapshot = snapshot.update(batch.clone()).0;
        }
        let serial = 1 + u32::try_from(updates.len()).unwrap();
        prop_assert_eq!(snapshot.serial(), serial);
        let (built, _) = Snapshot::build_with_clusterset(
            &config(serial),
            model.hosts.clone(),
            model.services.clone(),
        );
        assert_same_answers(&snapshot, &built)?;
    }
}

fn web(headless: bool) -> ClustersetRecord {
    ClustersetRecord {
        name: "web.shop.svc.clusterset.local".into(),
        headless,
        addresses: vec!["10.0.0.1".parse().unwrap()],
        ports: vec![SrvPort {
            name: "http".into(),
            protocol: "tcp".into(),
            number: 80,
        }],
        members: vec![ClustersetMember {
            hostname: "m1".into(),
            cluster_id: "east".into(),
            addresses: vec!["10.1.0.1".parse().unwrap()],
        }],
    }
}

fn code(s: &Snapshot, name: &str, qtype: RecordType) -> ResponseCode {
    let name = LowerName::from(Name::from_str(name).unwrap());
    answer(s, &name, qtype, DNSClass::IN).code
}

#[test]
fn a_removed_host_takes_its_names_and_only_empty_parents_with_it() {
    let host = |name: &str| HostRecord {
        name: name.into(),
        address: "240.0.0.1".parse().unwrap(),
        ports: vec![("http".into(), 80)],
    };
    let (s, _) = Snapshot::build(&config(1), [host("prod.a.global"), host("test.a.global")]);
    let s = s.update([Change::HostGone("prod.a.global".into())]).0;
    assert_eq!(s.hosts(), 1);
    assert_eq!(
        code(&s, "prod.a.global.", RecordType::A),
        ResponseCode::NXDomain
    );
    assert_eq!(
        code(&s, "_tcp.prod.a.global.", RecordType::A),
        ResponseCode::NXDomain,
        "an empty non-terminal goes with the last name under it"
    );
    assert_eq!(
        code(&s, "a.global.", RecordType::A),
        ResponseCode::NoError,
        "still above test.a.global"
    );
    let s = s.update([Change::HostGone("test.a.global".into())]).0;
    assert_eq!(code(&s, "a.global.", RecordType::A), ResponseCode::NXDomain);
    assert_eq!(s.serial(), 3, "one more per update");
}

#[test]
fn a_service_turning_headless_answers_its_endpoints_instead_of_its_ip() {
    let (s, _) = Snapshot::build_with_clusterset(&config(1), [], [web(false)]);
    let s = s.update([Change::Clusterset(web(true))]).0;
    let name = LowerName::from(Name::from_str("web.shop.svc.clusterset.local.").unwrap());
    let a = answer(&s, &name, RecordType::A, DNSClass::IN);
    assert_eq!(a.answers.len(), 1);
    assert_eq!(a.answers[0].data.ip_addr(), "10.1.0.1".parse().ok());
    assert_eq!(
        code(&s, "m1.east.web.shop.svc.clusterset.local.", RecordType::A),
        ResponseCode::NoError
    );
    assert_eq!(
        code(&s, "dns-version.clusterset.local.", RecordType::TXT),
        ResponseCode::NoError
    );
}

#[test]
fn a_service_left_out_for_a_host_of_its_name_is_answered_once_the_host_goes() {
    let host = HostRecord {
        name: "web.shop.svc.clusterset.local".into(),
        address: "240.0.0.9".parse().unwrap(),
        ports: vec![],
    };
    let (s, errors) = Snapshot::build_with_clusterset(&config(1), [host], [web(false)]);
    assert_eq!((s.clusterset_services(), errors.len()), (0, 1));
    let s = s
        .update([Change::HostGone("web.shop.svc.clusterset.local".into())])
        .0;
    assert_eq!(s.clusterset_services(), 1);
    assert_eq!(
        code(
            &s,
            "_http._tcp.web.shop.svc.clusterset.local.",
            RecordType::SRV
        ),
        ResponseCode::NoError
    );
}

#[test]
fn a_service_named_as_an_earlier_services_endpoint_is_left_out_until_that_endpoint_goes() {
    let endpoint = ClustersetRecord {
        name: "m1.east.web.shop.svc.clusterset.local".into(),
        ..web(false)
    };
    let (s, errors) =
        Snapshot::build_with_clusterset(&config(1), [], [web(true), endpoint.clone()]);
    assert_eq!(s.clusterset_services(), 1, "{errors:?}");
    assert!(errors[0].to_string().contains("already answered"));
    let name = "_http._tcp.m1.east.web.shop.svc.clusterset.local.";
    assert_eq!(code(&s, name, RecordType::SRV), ResponseCode::NXDomain);
    let s = s.update([Change::Clusterset(web(false))]).0;
    assert_eq!(
        s.clusterset_services(),
        2,
        "no endpoint in the way any more"
    );
    assert_eq!(code(&s, name, RecordType::SRV), ResponseCode::NoError);
}
