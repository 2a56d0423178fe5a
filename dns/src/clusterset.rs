//! The records of the Kubernetes Multicluster Services DNS specification (KEP-1645,
//! `specification.md`, schema 1.0.0): services exported across a clusterset, answered under
//! `<svc>.<ns>.svc.clusterset.local`. PTR records are not answered.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use hickory_proto::rr::rdata::{SRV, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record};

use crate::names::{Additional, NameKey, Part, merge_parts};
use crate::snapshot::{ZoneRecords, address_record, zone_of};
use crate::{SnapshotError, Zone};

/// The zone of the specification (its `<clustersetzone>`, which the MCS API fixes).
const CLUSTERSET_ZONE: &str = "clusterset.local.";
/// The name answering the specification's version (section 2.2).
const DNS_VERSION_NAME: &str = "dns-version.clusterset.local.";
/// The version of the specification these records follow.
const DNS_VERSION: &str = "1.0.0";
/// SRV weight of every endpoint of a headless service: equal and non-zero, so that clients
/// pick one at random (RFC 2782). With all weights zero some clients (Go's resolver) keep
/// the answer's order, and every one of them would pick the first endpoint.
const HEADLESS_WEIGHT: u16 = 1;

/// One exported service of the MCS API (a ServiceImport), ClusterSetIP or headless, so that
/// callers can have it answered as sections 2.3 and 2.4 of the specification say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClustersetRecord {
    /// `<svc>.<ns>.svc.clusterset.local`.
    pub name: String,
    /// Headless: the name answers the endpoints' addresses, and each endpoint has a name.
    pub headless: bool,
    /// ClusterSetIP: its clusterset IPs (one per family when dual-stack); with none the
    /// service is not answered. Headless: ignored (the addresses are the members').
    pub addresses: Vec<IpAddr>,
    /// The service's ports; only named ones get SRV records.
    pub ports: Vec<SrvPort>,
    /// Headless: every ready endpoint across the clusterset; with none the service is not
    /// answered (NXDOMAIN). ClusterSetIP: ignored (it has no per-cluster names, 2.3.4).
    pub members: Vec<ClustersetMember>,
}

/// A port of an exported service, so that it is answered as
/// `_<name>._<protocol>.<service>` SRV records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrvPort {
    /// The port's name; empty for an unnamed port, which has no SRV record.
    pub name: String,
    /// `tcp`, `udp` or `sctp`, lower-case.
    pub protocol: String,
    /// The port number.
    pub number: u16,
}

/// A ready endpoint of a headless service, so that it is answered as
/// `<hostname>.<cluster_id>.<service>` and as an SRV target of each named port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClustersetMember {
    /// The endpoint's hostname, or a unique identifier the caller gives it when it has none
    /// (specification 2.1); a DNS label.
    pub hostname: String,
    /// The id of the endpoint's cluster (KEP-2149); a DNS label.
    pub cluster_id: String,
    /// Its addresses.
    pub addresses: Vec<IpAddr>,
}

/// Whether `zone` is the clusterset zone, which answers `dns-version`.
pub(crate) fn is_clusterset_zone(zone: &Zone) -> bool {
    zone.as_str() == CLUSTERSET_ZONE
}

/// A service being planned: its name and where its problems go.
struct Service<'a> {
    record: &'a ClustersetRecord,
    fqdn: Name,
    ttl: u32,
    errors: Vec<SnapshotError>,
}

/// What a clusterset service puts in a snapshot, once it is answered.
#[derive(Debug)]
pub(crate) struct ServicePlan {
    /// The service's name, which only one service may have.
    pub(crate) name: NameKey,
    /// Its records by name; none when it has nothing to answer.
    pub(crate) parts: Vec<Part>,
    /// What in it cannot be answered (invalid ports or members, left out).
    pub(crate) errors: Vec<SnapshotError>,
}

/// The parts of `dns-version.clusterset.local. TXT "1.0.0"` (specification 2.2) when
/// `zones` serve it.
pub(crate) fn dns_version_parts(zones: &[ZoneRecords], ttl: u32) -> Vec<Part> {
    let Ok(name) = Name::from_str(DNS_VERSION_NAME) else {
        return Vec::new();
    };
    if zone_of(zones, &LowerName::from(&name)).is_none() {
        return Vec::new();
    }
    let version = TXT::new(vec![DNS_VERSION.into()]);
    let record = Record::from_rdata(name.clone(), ttl, RData::TXT(version));
    vec![Part {
        name: NameKey::of(&name),
        records: vec![record],
        additional: Additional::None,
    }]
}

/// The records of `record` in `zones`; `Err` when its name cannot be answered at all.
pub(crate) fn service_plan(
    record: &ClustersetRecord,
    zones: &[ZoneRecords],
    ttl: u32,
) -> Result<ServicePlan, SnapshotError> {
    let invalid = |reason: &str| SnapshotError::InvalidName {
        name: record.name.clone(),
        reason: reason.to_owned(),
    };
    let mut fqdn = Name::from_str(&record.name)
        .map_err(|err| invalid(&err.to_string()))?
        .to_lowercase();
    fqdn.set_fqdn(true);
    let lower = LowerName::from(&fqdn);
    let Some(zone) = zone_of(zones, &lower) else {
        return Err(SnapshotError::OutsideZones(record.name.clone()));
    };
    if lower == zone.origin {
        return Err(invalid("a service cannot be the zone apex"));
    }
    let mut service = Service {
        record,
        fqdn,
        ttl,
        errors: Vec::new(),
    };
    let parts = if record.headless {
        service.headless()
    } else {
        service.clusterset_ip()
    };
    Ok(ServicePlan {
        name: NameKey::of(&service.fqdn),
        parts: merge_parts(parts),
        errors: service.errors,
    })
}

/// The error of a service left out because its name is answered already.
pub(crate) fn already_answered(name: &str) -> SnapshotError {
    SnapshotError::InvalidName {
        name: name.to_owned(),
        reason: "already answered; this one is left out".to_owned(),
    }
}

impl Service<'_> {
    fn invalid(&mut self, reason: String) {
        self.errors.push(SnapshotError::InvalidName {
            name: self.record.name.clone(),
            reason,
        });
    }
    /// The SRV names of the named ports with their numbers; a port whose name or protocol
    /// is not a label is reported and left out.
    fn srv_names(&mut self) -> Vec<(Name, u16)> {
        let mut names: Vec<(Name, u16)> = Vec::new();
        for port in &self.record.ports {
            if port.name.is_empty() {
                continue;
            }
            // `_` takes one character of the label.
            let (Some(name), Some(protocol)) = (label(&port.name, 62), label(&port.protocol, 62))
            else {
                self.invalid(format!(
                    "port {:?}/{:?}: name and protocol must be DNS labels; it has no SRV record",
                    port.name, port.protocol
                ));
                continue;
            };
            let srv_name = self
                .fqdn
                .prepend_label(format!("_{protocol}").as_bytes())
                .and_then(|n| n.prepend_label(format!("_{name}").as_bytes()));
            match srv_name {
                Ok(srv_name) if !names.contains(&(srv_name.clone(), port.number)) => {
                    names.push((srv_name, port.number));
                }
                Ok(_) => {}
                Err(err) => self.invalid(format!("port {}: {err}", port.name)),
            }
        }
        names
    }

    /// The names and addresses of the members, one entry per name (an endpoint given as
    /// several members is merged), addresses without duplicates; an invalid member is
    /// reported and left out, one without addresses has nothing to answer.
    fn endpoints(&mut self) -> Vec<(Name, Vec<IpAddr>)> {
        let mut endpoints: Vec<(Name, Vec<IpAddr>)> = Vec::new();
        let mut index: HashMap<LowerName, usize> = HashMap::new();
        for member in &self.record.members {
            let which = format!(
                "endpoint {:?} of cluster {:?}",
                member.hostname, member.cluster_id
            );
            let Some(hostname) = label(&member.hostname, 63) else {
                self.invalid(format!(
                    "{which}: the hostname is not a DNS label; left out"
                ));
                continue;
            };
            let Some(cluster) = label(&member.cluster_id, 63) else {
                self.invalid(format!(
                    "{which}: the cluster id is not a DNS label; left out"
                ));
                continue;
            };
            let name = self
                .fqdn
                .prepend_label(cluster.as_bytes())
                .and_then(|n| n.prepend_label(hostname.as_bytes()));
            let name = match name {
                Ok(name) => name,
                Err(err) => {
                    self.invalid(format!("{which}: {err}; left out"));
                    continue;
                }
            };
            if member.addresses.is_empty() {
                continue;
            }
            let at = *index.entry(LowerName::from(&name)).or_insert_with(|| {
                endpoints.push((name, Vec::new()));
                endpoints.len() - 1
            });
            let addresses = &mut endpoints[at].1;
            for address in &member.addresses {
                if !addresses.contains(address) {
                    addresses.push(*address);
                }
            }
        }
        endpoints
    }

    /// Specification 2.3: the clusterset IPs at the service's name, and one SRV record per
    /// named port whose target is that name. Nothing if there is nothing to answer.
    fn clusterset_ip(&mut self) -> Vec<Part> {
        let mut addresses: Vec<Record> = Vec::with_capacity(self.record.addresses.len());
        let mut seen = HashSet::new();
        for address in &self.record.addresses {
            if seen.insert(address) {
                addresses.push(address_record(&self.fqdn, self.ttl, *address));
            }
        }
        if addresses.is_empty() {
            return Vec::new();
        }
        let ports = self.srv_names();
        let lower = NameKey::of(&self.fqdn);
        let mut parts = vec![Part {
            name: lower.clone(),
            records: addresses,
            additional: Additional::None,
        }];
        for (srv_name, number) in ports {
            let srv = SRV::new(0, 0, number, self.fqdn.clone());
            parts.push(Part {
                name: NameKey::of(&srv_name),
                records: vec![Record::from_rdata(srv_name, self.ttl, RData::SRV(srv))],
                additional: Additional::Target(lower.clone()),
            });
        }
        parts
    }

    /// Specification 2.4: every endpoint's addresses at the service's name, each endpoint's
    /// at its own name, and one SRV record per endpoint and named port, with the endpoints'
    /// addresses as additionals. Nothing if there is nothing to answer.
    fn headless(&mut self) -> Vec<Part> {
        let endpoints = self.endpoints();
        if endpoints.is_empty() {
            return Vec::new();
        }
        let ports = self.srv_names();
        let ttl = self.ttl;
        let mut parts = Vec::with_capacity(endpoints.len() + ports.len() + 1);
        let mut all = Vec::new();
        let mut seen = HashSet::new();
        let mut targets = Vec::new();
        for (name, addresses) in &endpoints {
            let records: Vec<Record> = addresses
                .iter()
                .map(|address| address_record(name, ttl, *address))
                .collect();
            for address in addresses {
                if seen.insert(*address) {
                    all.push(address_record(&self.fqdn, ttl, *address));
                }
            }
            targets.extend_from_slice(&records);
            parts.push(Part {
                name: NameKey::of(name),
                records,
                additional: Additional::None,
            });
        }
        parts.push(Part {
            name: NameKey::of(&self.fqdn),
            records: all,
            additional: Additional::None,
        });
        // One copy of the endpoints' addresses for every SRV name of the service.
        let targets: Arc<[Record]> = targets.into();
        for (srv_name, number) in ports {
            let records = endpoints
                .iter()
                .map(|(target, _)| {
                    let srv = SRV::new(0, HEADLESS_WEIGHT, number, target.clone());
                    Record::from_rdata(srv_name.clone(), ttl, RData::SRV(srv))
                })
                .collect();
            parts.push(Part {
                name: NameKey::of(&srv_name),
                records,
                additional: Additional::Records(Arc::clone(&targets)),
            });
        }
        parts
    }
}

/// `text` lower-cased if it is an RFC 1123 label of at most `max` characters: letters,
/// digits and `-`, not at either end.
fn label(text: &str, max: usize) -> Option<String> {
    let valid = !text.is_empty()
        && text.len() <= max
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    valid.then(|| text.to_ascii_lowercase())
}

#[cfg(test)]
#[path = "clusterset_tests.rs"]
mod tests;
