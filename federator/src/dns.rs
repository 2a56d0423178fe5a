//! What the DNS server answers: the registry's serving hosts and their VIPs, and its
//! clusterset services as the MCS DNS specification spells them, exported as an immutable
//! snapshot for `federator-dns`.

use std::net::IpAddr;

use federator_dns::{
    Change, ClustersetMember, ClustersetRecord, HostRecord, Snapshot, SnapshotConfig,
    SnapshotError, SrvPort, Zone,
};

use crate::model::Host;
use crate::registry::{GlobalService, RegistryView};

/// DNS settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsSettings {
    /// Zones answered (by default the host suffix, `global.`).
    pub zones: Vec<Zone>,
    /// TTL of answers, seconds.
    pub ttl: u32,
}

/// The records to answer: every host with a ready backend somewhere and a VIP (a host whose
/// backends are all gone is not answered: NXDOMAIN).
pub fn records(view: &RegistryView) -> Vec<HostRecord> {
    view.services().filter_map(host_record).collect()
}

/// The record of one global host, if it is answered: serving, with a VIP, not a clusterset
/// service.
pub fn host_record(s: &GlobalService) -> Option<HostRecord> {
    if !s.is_serving() || s.clusterset.is_some() {
        return None;
    }
    Some(HostRecord {
        name: s.host.as_str().to_owned(),
        address: s.vip?,
        ports: s
            .ports
            .iter()
            .map(|p| (p.name.to_string(), p.number))
            .collect(),
    })
}

/// The clusterset services (MCS API) to answer: a ClusterSetIP service by its VIP while it is
/// imported (an export's Service backs it, ready or not: the specification's A record has no
/// readiness condition), a headless one by every ready endpoint (none: not answered).
pub fn clusterset_records(view: &RegistryView) -> Vec<ClustersetRecord> {
    view.services()
        .filter_map(clusterset_service_record)
        .collect()
}

/// The clusterset record of one service, if it is a clusterset service with backends (see
/// [`clusterset_records`]).
pub fn clusterset_service_record(s: &GlobalService) -> Option<ClustersetRecord> {
    if s.backends.is_empty() {
        return None;
    }
    let clusterset = s.clusterset.as_ref()?;
    let endpoints = s.backends.iter().flat_map(|(cluster, backends)| {
        let id = clusterset.cluster_ids.get(cluster);
        let id = id.map_or(cluster.as_str(), String::as_str);
        backends
            .iter()
            .flat_map(|b| b.endpoints.iter())
            .map(move |e| (id, e.hostname.as_deref(), e.address.as_str()))
    });
    let ports = s.ports.iter().map(|p| (p.name.as_str(), p.number));
    Some(clusterset_record(
        s.host.as_str(),
        clusterset.headless,
        s.vip,
        ports,
        endpoints,
    ))
}

/// What `hosts` of `view` now are, for [`Snapshot::update`]: each one's host record and
/// clusterset record, or their removal (a host may turn from one into the other).
pub fn changes<'a>(
    view: &'a RegistryView,
    hosts: impl IntoIterator<Item = &'a Host> + 'a,
) -> impl Iterator<Item = Change> + 'a {
    hosts.into_iter().flat_map(move |host| {
        let service = view.get(host);
        let name = host.as_str();
        let as_host = service
            .and_then(host_record)
            .map_or_else(|| Change::HostGone(name.to_owned()), Change::Host);
        let as_clusterset = service.and_then(clusterset_service_record).map_or_else(
            || Change::ClustersetGone(name.to_owned()),
            Change::Clusterset,
        );
        [as_host, as_clusterset]
    })
}

/// The DNS record of one clusterset service, from the registry or from the API: its VIP
/// (ClusterSetIP), or every ready endpoint as `(cluster id, hostname, address)`, each named
/// `<hostname>.<clusterid>.<svc>.<ns>...` (an endpoint without a hostname by its address,
/// dashed, as cluster DNS names pods) (headless).
pub fn clusterset_record<'a>(
    name: &str,
    headless: bool,
    vip: Option<IpAddr>,
    ports: impl Iterator<Item = (&'a str, u16)>,
    endpoints: impl Iterator<Item = (&'a str, Option<&'a str>, &'a str)>,
) -> ClustersetRecord {
    let members = if headless {
        endpoints
            .filter_map(|(cluster_id, hostname, address)| {
                Some(ClustersetMember {
                    hostname: hostname
                        .map_or_else(|| address.replace(['.', ':'], "-"), str::to_owned),
                    cluster_id: cluster_id.to_owned(),
                    addresses: vec![address.parse().ok()?],
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    ClustersetRecord {
        name: name.to_owned(),
        headless,
        addresses: vip.into_iter().collect(),
        ports: ports
            .map(|(name, number)| SrvPort {
                name: name.to_owned(),
                protocol: "tcp".to_owned(),
                number,
            })
            .collect(),
        members,
    }
}

/// The snapshot of `registry`; `serial` becomes the SOA serial.
pub fn snapshot(
    view: &RegistryView,
    settings: &DnsSettings,
    serial: u32,
) -> (Snapshot, Vec<SnapshotError>) {
    build(records(view), clusterset_records(view), settings, serial)
}

/// The snapshot of `records` and `clusterset` records.
pub fn build(
    records: Vec<HostRecord>,
    clusterset: Vec<ClustersetRecord>,
    settings: &DnsSettings,
    serial: u32,
) -> (Snapshot, Vec<SnapshotError>) {
    let config = SnapshotConfig {
        zones: settings.zones.clone(),
        ttl: settings.ttl,
        serial,
    };
    Snapshot::build_with_clusterset(&config, records, clusterset)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use federator_dns::answer;
    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::{DNSClass, LowerName, Name, RecordType};

    use super::*;
    use crate::fixtures::{cluster, greeting, slice, upsert};
    use crate::registry::{Registry, RegistryConfig, Since};

    fn settings() -> DnsSettings {
        DnsSettings {
            zones: vec![Zone::new("global").unwrap()],
            ttl: 5,
        }
    }

    /// A registry with `greeting` ready in `east`.
    fn greeting_in_east() -> Registry {
        let mut registry = Registry::new(RegistryConfig::default());
        registry.apply(cluster("east"));
        for d in greeting("east", &[("", "a")]) {
            registry.apply(d);
        }
        registry
    }

    fn code(snapshot: &Snapshot, name: &str) -> ResponseCode {
        answer(
            snapshot,
            &LowerName::from(Name::from_str(name).unwrap()),
            RecordType::A,
            DNSClass::IN,
        )
        .code
    }

    #[test]
    fn a_snapshot_updated_with_the_changed_hosts_answers_as_one_built_whole() {
        let mut registry = greeting_in_east();
        let first = registry.publish();
        let (built, _) = super::snapshot(&first, &settings(), 1);
        registry.apply(upsert(
            "east",
            slice("sample", "greeting-1", "greeting", &[]),
        ));
        let second = registry.publish();
        let Since::Hosts(hosts) = second.changed_since(first.hosts_generation()) else {
            panic!("the change log reaches back one publication");
        };
        let (updated, errors) = built.update(changes(&second, &hosts));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            code(&updated, "prod.greeting.global."),
            ResponseCode::NXDomain,
            "scaled down: gone"
        );
        assert_eq!((updated.hosts(), updated.serial()), (0, 2));
        for d in greeting("east", &[("", "a")]) {
            registry.apply(d);
        }
        let third = registry.publish();
        let Since::Hosts(hosts) = third.changed_since(second.hosts_generation()) else {
            panic!("the change log reaches back one publication");
        };
        let (updated, _) = updated.update(changes(&third, &hosts));
        let (whole, _) = super::snapshot(&third, &settings(), 3);
        assert_eq!(updated.hosts(), 1);
        for name in ["prod.greeting.global.", "_http._tcp.prod.greeting.global."] {
            for qtype in [RecordType::A, RecordType::SRV] {
                let name = LowerName::from(Name::from_str(name).unwrap());
                assert_eq!(
                    answer(&updated, &name, qtype, DNSClass::IN),
                    answer(&whole, &name, qtype, DNSClass::IN),
                    "{name} {qtype}"
                );
            }
        }
    }

    #[test]
    fn serving_hosts_resolve_and_scaled_down_ones_do_not() {
        let mut registry = greeting_in_east();
        let (snapshot, errors) = super::snapshot(&registry.publish(), &settings(), 1);
        assert!(errors.is_empty());
        assert_eq!(snapshot.hosts(), 1);
        assert_eq!(
            code(&snapshot, "prod.greeting.global."),
            ResponseCode::NoError
        );
        registry.apply(upsert(
            "east",
            slice("sample", "greeting-1", "greeting", &[]),
        ));
        let (snapshot, _) = super::snapshot(&registry.publish(), &settings(), 2);
        assert_eq!(
            code(&snapshot, "prod.greeting.global."),
            ResponseCode::NXDomain
        );
    }
}
