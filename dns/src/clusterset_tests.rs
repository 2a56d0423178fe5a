//! The Multicluster Services records, one test per record form of the specification.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::str::FromStr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

use super::*;
use crate::{Answer, HostRecord, Snapshot, SnapshotConfig, answer};

const WEB: &str = "web.shop.svc.clusterset.local";
const DB: &str = "db.shop.svc.clusterset.local";

fn config() -> SnapshotConfig {
    SnapshotConfig {
        zones: vec![
            Zone::new("clusterset.local").unwrap(),
            Zone::new("global").unwrap(),
        ],
        ttl: 7,
        serial: 3,
    }
}

fn build(services: Vec<ClustersetRecord>) -> (Snapshot, Vec<SnapshotError>) {
    Snapshot::build_with_clusterset(&config(), [], services)
}

/// Asks for `name`, relative to `svc.clusterset.local.` unless it ends with a dot.
fn ask<'a>(s: &'a Snapshot, name: &str, qtype: RecordType) -> Answer<'a> {
    let name = match name.strip_suffix('.') {
        Some(_) => name.to_owned(),
        None => format!("{name}.svc.clusterset.local."),
    };
    answer(
        s,
        &LowerName::from(Name::from_str(&name).unwrap()),
        qtype,
        DNSClass::IN,
    )
}

fn ips(records: &[Record]) -> Vec<IpAddr> {
    records
        .iter()
        .map(|r| match &r.data {
            RData::A(a) => IpAddr::V4(a.0),
            RData::AAAA(a) => IpAddr::V6(a.0),
            other => panic!("not an address: {other:?}"),
        })
        .collect()
}

fn parse(addresses: &[&str]) -> Vec<IpAddr> {
    addresses.iter().map(|a| a.parse().unwrap()).collect()
}

/// SRV answers as (port, weight, target).
fn srvs(records: &[Record]) -> Vec<(u16, u16, String)> {
    records
        .iter()
        .map(|r| match &r.data {
            RData::SRV(srv) => (srv.port, srv.weight, srv.target.to_string()),
            other => panic!("not SRV: {other:?}"),
        })
        .collect()
}

fn port(name: &str, protocol: &str, number: u16) -> SrvPort {
    SrvPort {
        name: name.into(),
        protocol: protocol.into(),
        number,
    }
}

fn member(hostname: &str, cluster_id: &str, addresses: &[&str]) -> ClustersetMember {
    ClustersetMember {
        hostname: hostname.into(),
        cluster_id: cluster_id.into(),
        addresses: parse(addresses),
    }
}

fn clusterset_ip(name: &str, addresses: &[&str], ports: Vec<SrvPort>) -> ClustersetRecord {
    ClustersetRecord {
        name: name.into(),
        headless: false,
        addresses: parse(addresses),
        ports,
        members: vec![],
    }
}

fn headless(name: &str, ports: Vec<SrvPort>, members: Vec<ClustersetMember>) -> ClustersetRecord {
    ClustersetRecord {
        name: name.into(),
        headless: true,
        addresses: vec![],
        ports,
        members,
    }
}

/// `db` in two clusters: pet-0 and pet-1 in cluster-a (pet-1 dual-stack), pet-0 in cluster-b.
fn db() -> ClustersetRecord {
    headless(
        DB,
        vec![
            port("mysql", "tcp", 3306),
            port("stats", "udp", 9125),
            port("", "tcp", 9104),
        ],
        vec![
            member("pet-0", "cluster-a", &["10.1.0.10"]),
            member("pet-1", "cluster-a", &["10.1.0.11", "fd00::11"]),
            member("pet-0", "cluster-b", &["10.2.0.10"]),
        ],
    )
}

fn assert_nxdomain(s: &Snapshot, name: &str, qtype: RecordType) {
    let a = ask(s, name, qtype);
    assert_eq!(a.code, ResponseCode::NXDomain, "{name} {qtype}");
    assert!(matches!(a.authority[0].data, RData::SOA(_)));
}

#[test]
fn clusterset_ip_answers_a_and_aaaa() {
    let web = clusterset_ip(WEB, &["10.42.0.1", "fd00::1", "10.42.0.1"], vec![]);
    let (s, errors) = build(vec![web]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(s.clusterset_services(), 1);
    let a = ask(&s, "Web.Shop", RecordType::A);
    assert_eq!((a.code, a.authoritative), (ResponseCode::NoError, true));
    assert_eq!(
        ips(a.answers),
        parse(&["10.42.0.1"]),
        "once, however often given"
    );
    assert_eq!(a.answers[0].ttl, 7);
    let aaaa = ask(&s, "web.shop", RecordType::AAAA);
    assert_eq!(ips(aaaa.answers), parse(&["fd00::1"]));
    let txt = ask(&s, "web.shop", RecordType::TXT);
    assert_eq!((txt.code, txt.answers.len()), (ResponseCode::NoError, 0));
    // Its ancestors are empty non-terminals.
    let ns = ask(&s, "shop", RecordType::A);
    assert_eq!((ns.code, ns.answers.len()), (ResponseCode::NoError, 0));
}

#[test]
fn clusterset_ip_srv_per_named_port_with_the_service_addresses() {
    let ports = vec![port("https", "tcp", 443), port("dns", "udp", 53)];
    let web = clusterset_ip(WEB, &["10.42.0.1", "fd00::1"], ports);
    let (s, errors) = build(vec![web]);
    assert!(errors.is_empty(), "{errors:?}");
    let a = ask(&s, "_https._tcp.web.shop", RecordType::SRV);
    assert_eq!(a.code, ResponseCode::NoError);
    let target = "web.shop.svc.clusterset.local.".to_owned();
    assert_eq!(srvs(a.answers), vec![(443, 0, target.clone())]);
    assert_eq!(ips(a.additionals), parse(&["10.42.0.1", "fd00::1"]));
    let udp = ask(&s, "_dns._udp.web.shop", RecordType::SRV);
    assert_eq!(srvs(udp.answers), vec![(53, 0, target)]);
    // Not under the other protocol.
    assert_nxdomain(&s, "_https._udp.web.shop", RecordType::SRV);
    // No additionals for other types.
    let any = ask(&s, "_https._tcp.web.shop", RecordType::ANY);
    assert_eq!((any.answers.len(), any.additionals.len()), (1, 0));
}

#[test]
fn unnamed_ports_have_no_srv() {
    let web = clusterset_ip(WEB, &["10.42.0.1"], vec![port("", "tcp", 8080)]);
    let (s, errors) = build(vec![web]);
    assert!(errors.is_empty(), "{errors:?}");
    // Not even the `_tcp` empty non-terminal: nothing exists below the service.
    assert_nxdomain(&s, "_tcp.web.shop", RecordType::SRV);
    assert_nxdomain(&s, "_._tcp.web.shop", RecordType::SRV);
}

#[test]
fn clusterset_ip_services_have_no_per_cluster_names() {
    let mut web = clusterset_ip(WEB, &["10.42.0.1"], vec![port("http", "tcp", 80)]);
    web.members = vec![member("pet-0", "cluster-a", &["10.1.0.10"])];
    let (s, errors) = build(vec![web]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_nxdomain(&s, "cluster-a.web.shop", RecordType::A);
    assert_nxdomain(&s, "pet-0.cluster-a.web.shop", RecordType::A);
    let a = ask(&s, "web.shop", RecordType::A);
    assert_eq!(ips(a.answers), parse(&["10.42.0.1"]), "members are ignored");
}

#[test]
fn headless_answers_every_endpoint_of_every_cluster() {
    let mut db = db();
    // The same address twice (two members) is answered once.
    db.members
        .push(member("pet-2", "cluster-b", &["10.2.0.10", "10.2.0.12"]));
    let (s, errors) = build(vec![db]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(s.clusterset_services(), 1);
    let a = ask(&s, "db.shop", RecordType::A);
    assert_eq!(a.code, ResponseCode::NoError);
    assert_eq!(
        ips(a.answers),
        parse(&["10.1.0.10", "10.1.0.11", "10.2.0.10", "10.2.0.12"])
    );
    let aaaa = ask(&s, "db.shop", RecordType::AAAA);
    assert_eq!(ips(aaaa.answers), parse(&["fd00::11"]));
}

#[test]
fn headless_endpoints_have_their_own_names() {
    let (s, _) = build(vec![db()]);
    let a = ask(&s, "PET-1.Cluster-A.db.shop", RecordType::A);
    assert_eq!(ips(a.answers), parse(&["10.1.0.11"]));
    let aaaa = ask(&s, "pet-1.cluster-a.db.shop", RecordType::AAAA);
    assert_eq!(ips(aaaa.answers), parse(&["fd00::11"]));
    // The same hostname in another cluster is another endpoint.
    let b = ask(&s, "pet-0.cluster-b.db.shop", RecordType::A);
    assert_eq!(ips(b.answers), parse(&["10.2.0.10"]));
    let v6 = ask(&s, "pet-0.cluster-b.db.shop", RecordType::AAAA);
    assert_eq!((v6.code, v6.answers.len()), (ResponseCode::NoError, 0));
    // The cluster is an empty non-terminal; an unknown endpoint does not exist.
    let cluster = ask(&s, "cluster-a.db.shop", RecordType::A);
    assert_eq!(
        (cluster.code, cluster.answers.len()),
        (ResponseCode::NoError, 0)
    );
    assert_nxdomain(&s, "pet-9.cluster-a.db.shop", RecordType::A);
    assert_nxdomain(&s, "pet-0.cluster-c.db.shop", RecordType::A);
}

#[test]
fn headless_srv_per_endpoint_and_named_port() {
    let (s, errors) = build(vec![db()]);
    assert!(errors.is_empty(), "{errors:?}");
    let endpoints = [
        "pet-0.cluster-a.db.shop.svc.clusterset.local.",
        "pet-1.cluster-a.db.shop.svc.clusterset.local.",
        "pet-0.cluster-b.db.shop.svc.clusterset.local.",
    ];
    for (name, number) in [("_mysql._tcp.db.shop", 3306), ("_stats._udp.db.shop", 9125)] {
        let a = ask(&s, name, RecordType::SRV);
        assert_eq!(a.code, ResponseCode::NoError, "{name}");
        let expected: Vec<_> = endpoints
            .iter()
            .map(|e| (number, 1, (*e).to_owned()))
            .collect();
        // Equal non-zero weights: clients pick among them at random.
        assert_eq!(srvs(a.answers), expected, "{name}: one per endpoint");
        assert_eq!(
            ips(a.additionals),
            parse(&["10.1.0.10", "10.1.0.11", "fd00::11", "10.2.0.10"]),
            "{name}: the targets' addresses"
        );
        let names: Vec<String> = a.additionals.iter().map(|r| r.name.to_string()).collect();
        assert_eq!(
            names,
            [endpoints[0], endpoints[1], endpoints[1], endpoints[2]]
        );
    }
    assert_nxdomain(&s, "_mysql._udp.db.shop", RecordType::SRV);
}

#[test]
fn headless_without_ready_endpoints_does_not_exist() {
    let empty = headless(DB, vec![port("mysql", "tcp", 3306)], vec![]);
    let no_addresses = headless(
        "cache.shop.svc.clusterset.local",
        vec![port("redis", "tcp", 6379)],
        vec![member("pet-0", "cluster-a", &[])],
    );
    let (s, errors) = build(vec![empty, no_addresses]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(s.clusterset_services(), 0);
    for name in [
        "db.shop",
        "_mysql._tcp.db.shop",
        "cache.shop",
        "pet-0.cluster-a.cache.shop",
        "shop",
    ] {
        assert_nxdomain(&s, name, RecordType::A);
    }
}

#[test]
fn the_clusterset_zone_answers_its_dns_version() {
    for (snapshot, services) in [
        (build(vec![]).0, 0),
        (build(vec![db()]).0, 1),
        (Snapshot::build(&config(), []).0, 0),
    ] {
        assert_eq!(snapshot.clusterset_services(), services);
        let a = ask(&snapshot, "DNS-Version.clusterset.local.", RecordType::TXT);
        assert_eq!((a.code, a.authoritative), (ResponseCode::NoError, true));
        assert_eq!(a.answers.len(), 1);
        assert_eq!(
            a.answers[0].data,
            RData::TXT(TXT::new(vec!["1.0.0".into()]))
        );
        assert_eq!(a.answers[0].ttl, 7);
        let nodata = ask(&snapshot, "dns-version.clusterset.local.", RecordType::A);
        assert_eq!(
            (nodata.code, nodata.answers.len()),
            (ResponseCode::NoError, 0)
        );
    }
    // Only in the clusterset zone.
    let local = SnapshotConfig {
        zones: vec![Zone::new("local").unwrap()],
        ..config()
    };
    let s = Snapshot::empty(&local);
    assert_nxdomain(&s, "dns-version.clusterset.local.", RecordType::TXT);
    assert_nxdomain(&build(vec![]).0, "dns-version.global.", RecordType::TXT);
}

#[test]
fn invalid_members_are_reported_and_left_out() {
    let mut db = db();
    db.members.extend([
        member("Bad_Host", "cluster-a", &["10.9.0.1"]),
        member("pet-7", "-cluster", &["10.9.0.2"]),
        member("", "cluster-a", &["10.9.0.3"]),
        member(&"x".repeat(64), "cluster-a", &["10.9.0.4"]),
    ]);
    let (s, errors) = build(vec![db]);
    assert_eq!(errors.len(), 4, "{errors:?}");
    for err in &errors {
        assert!(
            matches!(err, SnapshotError::InvalidName { name, .. } if name == DB),
            "{err}"
        );
    }
    assert!(errors[0].to_string().contains("Bad_Host"), "{}", errors[0]);
    assert!(
        errors[1].to_string().contains("cluster id"),
        "{}",
        errors[1]
    );
    // The rest of the service is answered, without the invalid members' addresses.
    assert_eq!(s.clusterset_services(), 1);
    let a = ask(&s, "db.shop", RecordType::A);
    assert_eq!(
        ips(a.answers),
        parse(&["10.1.0.10", "10.1.0.11", "10.2.0.10"])
    );
    let srv = ask(&s, "_mysql._tcp.db.shop", RecordType::SRV);
    assert_eq!(srv.answers.len(), 3);
}

#[test]
fn invalid_ports_are_reported_and_left_out() {
    let ports = vec![
        port("http", "tcp", 80),
        port("bad.name", "tcp", 81),
        port("metrics", "", 9090),
    ];
    let (s, errors) = build(vec![clusterset_ip(WEB, &["10.42.0.1"], ports)]);
    assert_eq!(errors.len(), 2, "{errors:?}");
    let srv = ask(&s, "_http._tcp.web.shop", RecordType::SRV);
    assert_eq!(srv.answers.len(), 1);
    assert_nxdomain(&s, "_bad.name._tcp.web.shop", RecordType::SRV);
}

#[test]
fn services_that_cannot_be_answered_are_reported() {
    let outside = clusterset_ip("web.shop.svc.cluster.local", &["10.42.0.1"], vec![]);
    let apex = clusterset_ip("clusterset.local", &["10.42.0.2"], vec![]);
    let first = clusterset_ip(WEB, &["10.42.0.3"], vec![]);
    let again = clusterset_ip("WEB.shop.svc.clusterset.local.", &["10.42.0.4"], vec![]);
    let (s, errors) = build(vec![outside, apex, first, again]);
    assert!(
        matches!(&errors[0], SnapshotError::OutsideZones(n) if n == "web.shop.svc.cluster.local")
    );
    assert!(matches!(&errors[1], SnapshotError::InvalidName { .. }));
    assert!(
        errors[2].to_string().contains("already answered"),
        "{}",
        errors[2]
    );
    assert_eq!(errors.len(), 3);
    assert_eq!(s.clusterset_services(), 1);
    let a = ask(&s, "web.shop", RecordType::A);
    assert_eq!(ips(a.answers), parse(&["10.42.0.3"]), "the first one wins");
}

#[test]
fn hosts_and_clusterset_services_are_answered_together() {
    let host = HostRecord {
        name: "prod.greeting.global".into(),
        address: "240.0.0.1".parse().unwrap(),
        ports: vec![("http".into(), 8080)],
    };
    let web = clusterset_ip(WEB, &["10.42.0.1"], vec![]);
    let (s, errors) = Snapshot::build_with_clusterset(&config(), [host], [web]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!((s.hosts(), s.clusterset_services()), (1, 1));
    let srv = ask(&s, "_http._tcp.prod.greeting.global.", RecordType::SRV);
    assert_eq!(ips(srv.additionals), parse(&["240.0.0.1"]));
    let a = ask(&s, "web.shop", RecordType::A);
    assert_eq!(ips(a.answers), parse(&["10.42.0.1"]));
}
