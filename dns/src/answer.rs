//! The pure decision: what a query gets.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, LowerName, Record, RecordType};

use crate::Snapshot;

/// A response, borrowing its records from the snapshot (nothing is built per query).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer<'a> {
    /// The response code.
    pub code: ResponseCode,
    /// Whether the answer comes from our own zone data (false for REFUSED, and for SERVFAIL
    /// before the registry is read).
    pub authoritative: bool,
    /// Answer section.
    pub answers: &'a [Record],
    /// Authority section: the zone's SOA for negative answers (for caching).
    pub authority: &'a [Record],
    /// Additional section: addresses of SRV targets.
    pub additionals: &'a [Record],
}

impl Answer<'static> {
    fn code(code: ResponseCode) -> Self {
        Self {
            code,
            authoritative: false,
            answers: &[],
            authority: &[],
            additionals: &[],
        }
    }
}

/// Answers one question from `snapshot`.
///
/// - Outside every served zone, another class than IN, or a zone transfer: REFUSED (not a
///   resolver, no transfers).
/// - Inside a zone before the registry is read ([`Snapshot::starting`]): SERVFAIL,
///   non-authoritative, so nothing gets cached.
/// - A name that does not exist: NXDOMAIN with the SOA; one that exists without records of
///   the type asked: NOERROR and no answer (NODATA) with the SOA.
/// - A/AAAA of a host, SRV `_<port>._tcp.<host>`, SOA and NS at the apex, ANY as what exists.
/// - The Multicluster Services records of [`ClustersetRecord`](crate::ClustersetRecord)s
///   (A/AAAA, SRV with their targets' addresses) and the `dns-version` TXT record.
pub fn answer<'a>(
    snapshot: &'a Snapshot,
    name: &LowerName,
    qtype: RecordType,
    qclass: DNSClass,
) -> Answer<'a> {
    if qclass != DNSClass::IN && qclass != DNSClass::ANY {
        return Answer::code(ResponseCode::Refused);
    }
    if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
        return Answer::code(ResponseCode::Refused);
    }
    let Some(zone) = snapshot.zone_of(name) else {
        return Answer::code(ResponseCode::Refused);
    };
    if !snapshot.is_ready() {
        return Answer::code(ResponseCode::ServFail);
    }
    let found = |answers: &'a [Record], additionals: &'a [Record]| Answer {
        code: ResponseCode::NoError,
        authoritative: true,
        answers,
        authority: &[],
        additionals,
    };
    let negative = |code: ResponseCode| Answer {
        code,
        authoritative: true,
        answers: &[],
        authority: &zone.soa,
        additionals: &[],
    };
    if *name == zone.origin {
        return match qtype {
            RecordType::SOA => found(&zone.soa, &[]),
            RecordType::NS => found(&zone.ns, &[]),
            RecordType::ANY => found(&zone.soa, &[]),
            _ => negative(ResponseCode::NoError),
        };
    }
    let Some(records) = snapshot.lookup(name) else {
        return negative(ResponseCode::NXDomain);
    };
    let answers = match qtype {
        // ANY: what the name has (RFC 8482 allows a subset; ours is all of it).
        RecordType::ANY => &records.records[..],
        other => records.of_type(other),
    };
    if answers.is_empty() {
        return negative(ResponseCode::NoError);
    }
    let additionals = match qtype {
        RecordType::SRV => snapshot.additionals(records),
        _ => &[],
    };
    found(answers, additionals)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use hickory_proto::rr::{Name, RData};

    use super::*;
    use crate::{HostRecord, SnapshotConfig, Zone};

    fn snapshot() -> Snapshot {
        let config = SnapshotConfig {
            zones: vec![Zone::new("global").unwrap()],
            ttl: 5,
            serial: 7,
        };
        let hosts = [
            HostRecord {
                name: "prod.greeting.global".into(),
                address: "240.0.0.1".parse().unwrap(),
                ports: vec![("http".into(), 8080), ("grpc-api".into(), 9090)],
            },
            HostRecord {
                name: "prod.v6.global".into(),
                address: "fd00::1".parse().unwrap(),
                ports: vec![],
            },
        ];
        let (snapshot, errors) = Snapshot::build(&config, hosts);
        assert!(errors.is_empty(), "{errors:?}");
        snapshot
    }

    fn ask<'a>(s: &'a Snapshot, name: &str, qtype: RecordType) -> Answer<'a> {
        answer(
            s,
            &LowerName::from(Name::from_str(name).unwrap()),
            qtype,
            DNSClass::IN,
        )
    }

    #[test]
    fn a_host_answers_its_vip_whatever_the_case() {
        let s = snapshot();
        for name in ["prod.greeting.global.", "PROD.Greeting.GLOBAL."] {
            let a = ask(&s, name, RecordType::A);
            assert_eq!(a.code, ResponseCode::NoError);
            assert!(a.authoritative);
            assert_eq!(a.answers.len(), 1);
            assert_eq!(&a.answers[0].data, &RData::A("240.0.0.1".parse().unwrap()));
            assert_eq!(a.answers[0].ttl, 5);
        }
    }

    #[test]
    fn aaaa_for_ipv6_vips_and_nodata_otherwise() {
        let s = snapshot();
        let a = ask(&s, "prod.v6.global.", RecordType::AAAA);
        assert_eq!(a.answers.len(), 1);
        let nodata = ask(&s, "prod.greeting.global.", RecordType::AAAA);
        assert_eq!(nodata.code, ResponseCode::NoError);
        assert!(nodata.answers.is_empty());
        assert!(
            matches!(nodata.authority[0].data, RData::SOA(_)),
            "SOA for negative caching"
        );
    }

    #[test]
    fn srv_per_named_port_with_the_target_address() {
        let s = snapshot();
        let a = ask(&s, "_grpc-api._tcp.prod.greeting.global.", RecordType::SRV);
        assert_eq!(a.code, ResponseCode::NoError);
        let RData::SRV(srv) = &a.answers[0].data else {
            panic!("not SRV")
        };
        assert_eq!(srv.port, 9090);
        assert_eq!(srv.target.to_string(), "prod.greeting.global.");
        assert_eq!(a.additionals.len(), 1, "the target's A record");
    }

    #[test]
    fn unknown_names_are_nxdomain_with_soa() {
        let s = snapshot();
        let a = ask(&s, "prod.nothing.global.", RecordType::A);
        assert_eq!(a.code, ResponseCode::NXDomain);
        assert!(a.authoritative);
        let RData::SOA(soa) = &a.authority[0].data else {
            panic!("not SOA")
        };
        assert_eq!(soa.minimum, 5);
        assert_eq!(soa.serial, 7);
        let a = ask(&s, "_nope._tcp.prod.greeting.global.", RecordType::SRV);
        assert_eq!(a.code, ResponseCode::NXDomain);
    }

    #[test]
    fn names_above_hosts_exist_without_records() {
        let s = snapshot();
        for name in ["greeting.global.", "_tcp.prod.greeting.global."] {
            let a = ask(&s, name, RecordType::A);
            assert_eq!(
                a.code,
                ResponseCode::NoError,
                "{name} is an empty non-terminal"
            );
            assert!(a.answers.is_empty());
        }
    }

    #[test]
    fn the_apex_has_soa_and_ns() {
        let s = snapshot();
        assert!(matches!(
            ask(&s, "global.", RecordType::SOA).answers[0].data,
            RData::SOA(_)
        ));
        assert!(matches!(
            ask(&s, "global.", RecordType::NS).answers[0].data,
            RData::NS(_)
        ));
        let a = ask(&s, "global.", RecordType::A);
        assert_eq!((a.code, a.answers.len()), (ResponseCode::NoError, 0));
    }

    #[test]
    fn no_recursion_no_transfer_no_other_classes() {
        let s = snapshot();
        for (name, qtype) in [
            ("example.com.", RecordType::A),
            ("global.", RecordType::AXFR),
            ("global.", RecordType::IXFR),
        ] {
            let a = ask(&s, name, qtype);
            assert_eq!(a.code, ResponseCode::Refused, "{name} {qtype}");
            assert!(!a.authoritative);
        }
        let name = LowerName::from(Name::from_str("prod.greeting.global.").unwrap());
        assert_eq!(
            answer(&s, &name, RecordType::A, DNSClass::CH).code,
            ResponseCode::Refused
        );
    }

    #[test]
    fn any_returns_what_exists_and_other_types_nodata() {
        let s = snapshot();
        assert_eq!(
            ask(&s, "prod.greeting.global.", RecordType::ANY)
                .answers
                .len(),
            1
        );
        let a = ask(&s, "prod.greeting.global.", RecordType::TXT);
        assert_eq!((a.code, a.answers.len()), (ResponseCode::NoError, 0));
    }

    #[test]
    fn before_the_registry_is_read_zone_names_fail_without_authority() {
        let config = SnapshotConfig {
            zones: vec![Zone::new("global").unwrap()],
            ttl: 5,
            serial: 0,
        };
        let s = Snapshot::starting(&config);
        assert!(!s.is_ready());
        for (name, qtype) in [
            ("prod.greeting.global.", RecordType::A),
            ("_http._tcp.prod.greeting.global.", RecordType::SRV),
            ("global.", RecordType::SOA),
        ] {
            let a = ask(&s, name, qtype);
            assert_eq!(a.code, ResponseCode::ServFail, "{name} {qtype}");
            assert!(!a.authoritative, "nothing a client may cache");
            assert!(a.answers.is_empty() && a.authority.is_empty() && a.additionals.is_empty());
        }
        let outside = ask(&s, "example.com.", RecordType::A);
        assert_eq!(outside.code, ResponseCode::Refused);
        assert!(snapshot().is_ready() && Snapshot::empty(&config).is_ready());
    }

    #[test]
    fn hosts_outside_the_zones_are_reported() {
        let config = SnapshotConfig {
            zones: vec![Zone::new("global").unwrap()],
            ttl: 5,
            serial: 1,
        };
        let host = HostRecord {
            name: "prod.greeting.mesh".into(),
            address: "240.0.0.1".parse().unwrap(),
            ports: vec![],
        };
        let (s, errors) = Snapshot::build(&config, [host]);
        assert_eq!(s.hosts(), 0);
        assert!(
            matches!(&errors[0], crate::SnapshotError::OutsideZones(h) if h == "prod.greeting.mesh")
        );
    }
}
