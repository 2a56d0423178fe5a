//! The answers of every name, precomputed.

use std::net::IpAddr;
use std::str::FromStr;

use hickory_proto::rr::rdata::{A, AAAA, NS, SOA, SRV};
use hickory_proto::rr::{LowerName, Name, RData, Record};

use crate::names::{Additional, MAX_WIRE_NAME, NameKey, NameRecords, Part, lower_key, merge_parts};
use crate::sharded::Sharded;
use crate::sources::{Source, SourceKey, Work};
use crate::{ClustersetRecord, Zone};

/// What the registry exports for one global host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRecord {
    /// The host, e.g. `prod.greeting.global`.
    pub name: String,
    /// Its VIP.
    pub address: IpAddr,
    /// Named TCP ports, answered as `_<name>._tcp.<host>` SRV records.
    pub ports: Vec<(String, u16)>,
}

/// Zones and answer settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotConfig {
    /// Zones answered for.
    pub zones: Vec<Zone>,
    /// TTL of every answer, and the negative-caching TTL in the SOA.
    pub ttl: u32,
    /// SOA serial; bump it when the content changes so secondaries and caches can tell.
    pub serial: u32,
}

/// A host or clusterset service (or part of one) that could not be put in the snapshot.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The host or service is in none of the zones.
    #[error("host {0} is outside every DNS zone served; it is not answered")]
    OutsideZones(String),
    /// The host, a port name, or a clusterset endpoint's hostname or cluster id is not a valid
    /// DNS name or label.
    #[error("host {name}: {reason}")]
    InvalidName {
        /// The host or service.
        name: String,
        /// Why.
        reason: String,
    },
}

/// A zone's apex records.
#[derive(Clone, Debug)]
pub(crate) struct ZoneRecords {
    pub(crate) origin: LowerName,
    pub(crate) key: NameKey,
    pub(crate) soa: Vec<Record>,
    pub(crate) ns: Vec<Record>,
}

/// A host or clusterset service that changed, for [`Snapshot::update`]: the registry tells
/// which hosts changed, and each is now as given or gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A host answered as given: new, or replacing the host of the same name.
    Host(HostRecord),
    /// The host of this name (as it was given) is no longer answered.
    HostGone(String),
    /// A clusterset service answered as given: new, or replacing the one of the same name.
    Clusterset(ClustersetRecord),
    /// The clusterset service of this name (as it was given) is no longer answered.
    ClustersetGone(String),
}

/// Every answer of the served zones at one moment.
///
/// Built whole ([`Snapshot::build_with_clusterset`]) or derived from another by
/// [`Snapshot::update`], which shares everything a change does not touch: names live in
/// copy-on-write shards, each name's records behind their own `Arc`.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub(crate) zones: Vec<ZoneRecords>,
    /// Every name that exists: hosts, SRV names, and the empty non-terminals above them.
    pub(crate) names: Sharded<NameKey, NameRecords>,
    /// Every host and service given, as given, so an update can take back what it put.
    pub(crate) sources: Sharded<SourceKey, Source>,
    pub(crate) config: SnapshotConfig,
    /// Precedence of the next new source.
    pub(crate) next_seq: u64,
    pub(crate) hosts: usize,
    /// Clusterset services answered.
    pub(crate) services: usize,
    /// False until the registry has been read: names in the zones then answer SERVFAIL,
    /// since an authoritative "does not exist" would be cached by clients and be wrong.
    ready: bool,
}

impl Snapshot {
    /// Builds the answers for `hosts`; hosts that cannot be answered are reported and left out.
    pub fn build(
        config: &SnapshotConfig,
        hosts: impl IntoIterator<Item = HostRecord>,
    ) -> (Self, Vec<SnapshotError>) {
        Self::build_with_clusterset(config, hosts, std::iter::empty())
    }

    /// Builds the answers for `hosts` and for the Multicluster Services of `clusterset` (the
    /// records of the MCS DNS specification, see [`ClustersetRecord`]); what cannot be
    /// answered is reported and left out. When `clusterset.local.` is one of the zones, it
    /// also answers the specification's version, `dns-version.clusterset.local. TXT`.
    ///
    /// Where two hosts have one name, the name answers the records of both; where two
    /// clusterset services do, or a service has a host's name, the host or the service
    /// given first is answered and the other is reported and left out.
    pub fn build_with_clusterset(
        config: &SnapshotConfig,
        hosts: impl IntoIterator<Item = HostRecord>,
        clusterset: impl IntoIterator<Item = ClustersetRecord>,
    ) -> (Self, Vec<SnapshotError>) {
        let hosts = hosts.into_iter();
        let clusterset = clusterset.into_iter();
        // A host or service makes about four names: itself, its SRV names, their empty
        // parents (a headless service one more per endpoint).
        let expected = hosts.size_hint().0 + clusterset.size_hint().0;
        let mut snapshot = Self::with_expected(config, expected);
        let mut work = Work::new(false);
        for host in hosts {
            snapshot.replace_host(&host.name.clone(), Some(host), &mut work);
        }
        if config
            .zones
            .iter()
            .any(crate::clusterset::is_clusterset_zone)
        {
            snapshot.add_dns_version(&mut work);
        }
        for service in clusterset {
            snapshot.replace_service(&service.name.clone(), Some(service), &mut work);
        }
        snapshot.settle(&mut work);
        snapshot.names.shrink_to_fit();
        (snapshot, work.errors)
    }

    /// The snapshot after `changes`, sharing with this one every name they do not touch; its
    /// SOA serial is one more. The result answers as a full build of the hosts and services
    /// it now has, in the order they first came (a changed one keeps its place). What cannot
    /// be answered among the changes (or is left out because of them) is reported.
    pub fn update(&self, changes: impl IntoIterator<Item = Change>) -> (Self, Vec<SnapshotError>) {
        let mut next = self.clone();
        next.config.serial = self.config.serial.wrapping_add(1);
        next.zones = next
            .config
            .zones
            .iter()
            .map(|z| zone_records(z, &next.config))
            .collect();
        let mut work = Work::new(true);
        for change in changes {
            match change {
                Change::Host(host) => next.replace_host(&host.name.clone(), Some(host), &mut work),
                Change::HostGone(name) => next.replace_host(&name, None, &mut work),
                Change::Clusterset(service) => {
                    next.replace_service(&service.name.clone(), Some(service), &mut work);
                }
                Change::ClustersetGone(name) => next.replace_service(&name, None, &mut work),
            }
        }
        next.settle(&mut work);
        if let Some(changed) = work.changed.take() {
            next.forget_dependent_answers(&changed);
        }
        next.names.rebalance();
        next.sources.rebalance();
        (next, work.errors)
    }

    fn with_expected(config: &SnapshotConfig, expected: usize) -> Self {
        Self {
            zones: config
                .zones
                .iter()
                .map(|z| zone_records(z, config))
                .collect(),
            names: Sharded::with_expected(expected.saturating_mul(4)),
            sources: Sharded::with_expected(expected),
            config: config.clone(),
            next_seq: 0,
            hosts: 0,
            services: 0,
            ready: true,
        }
    }

    /// Answers nothing but the zone apexes: a registry read and found empty.
    pub fn empty(config: &SnapshotConfig) -> Self {
        Self::build(config, []).0
    }

    /// What to serve before the registry has been read: every name in the zones answers
    /// SERVFAIL (non-authoritative, nothing to cache), so a client retries or asks another
    /// server instead of caching an NXDOMAIN for a name that exists. Names outside the
    /// zones are still REFUSED.
    pub fn starting(config: &SnapshotConfig) -> Self {
        Self {
            ready: false,
            ..Self::empty(config)
        }
    }

    /// Whether it answers from a registry that has been read (false for
    /// [`Snapshot::starting`]).
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// How many hosts it answers (clusterset services not included).
    pub fn hosts(&self) -> usize {
        self.hosts
    }

    /// How many clusterset services it answers, so callers can report what is served.
    pub fn clusterset_services(&self) -> usize {
        self.services
    }

    /// The SOA serial, so that callers can tell which snapshot is served.
    pub fn serial(&self) -> u32 {
        self.config.serial
    }

    /// The records of `name`, if it exists (apexes aside).
    pub(crate) fn lookup(&self, name: &LowerName) -> Option<&NameRecords> {
        let mut buf = [0u8; MAX_WIRE_NAME + 1];
        self.names.get(lower_key(name, &mut buf)?)
    }

    /// The additional section of an SRV answer from `records`.
    pub(crate) fn additionals<'a>(&'a self, records: &'a NameRecords) -> &'a [Record] {
        match &records.additional {
            Additional::None => &[],
            Additional::Target(target) => self
                .names
                .get(target.as_bytes())
                .map(|t| &t.records[..])
                .unwrap_or_default(),
            Additional::Records(shared) => shared,
        }
    }

    /// The zone `name` belongs to, if any (the longest match).
    pub(crate) fn zone_of(&self, name: &LowerName) -> Option<&ZoneRecords> {
        zone_of(&self.zones, name)
    }
}

/// The zone of `zones` that `name` belongs to, if any (the longest match).
pub(crate) fn zone_of<'z>(zones: &'z [ZoneRecords], name: &LowerName) -> Option<&'z ZoneRecords> {
    zones
        .iter()
        .filter(|z| z.origin.zone_of(name))
        .max_by_key(|z| z.origin.num_labels())
}

/// The parts of `host` (its address, its SRV names) in `zones`.
pub(crate) fn host_parts(
    host: &HostRecord,
    zones: &[ZoneRecords],
    ttl: u32,
) -> Result<Vec<Part>, SnapshotError> {
    let invalid = |reason: String| SnapshotError::InvalidName {
        name: host.name.clone(),
        reason,
    };
    let mut fqdn = Name::from_str(&host.name)
        .map_err(|e| invalid(e.to_string()))?
        .to_lowercase();
    fqdn.set_fqdn(true);
    if zone_of(zones, &LowerName::from(&fqdn)).is_none() {
        return Err(SnapshotError::OutsideZones(host.name.clone()));
    }
    let key = NameKey::of(&fqdn);
    let mut parts = vec![Part {
        name: key.clone(),
        records: vec![address_record(&fqdn, ttl, host.address)],
        additional: Additional::None,
    }];
    for (port_name, port) in &host.ports {
        let srv_name = Name::from_str(&format!("_{port_name}._tcp"))
            .and_then(|prefix| prefix.append_domain(&fqdn))
            .map_err(|e| invalid(format!("port {port_name}: {e}")))?;
        let record = Record::from_rdata(
            srv_name.clone(),
            ttl,
            RData::SRV(SRV::new(0, 0, *port, fqdn.clone())),
        );
        parts.push(Part {
            name: NameKey::of(&srv_name),
            records: vec![record],
            additional: Additional::Target(key.clone()),
        });
    }
    Ok(merge_parts(parts))
}

/// The A or AAAA record of `name` for `address`.
pub(crate) fn address_record(name: &Name, ttl: u32, address: IpAddr) -> Record {
    match address {
        IpAddr::V4(v4) => Record::from_rdata(name.clone(), ttl, RData::A(A(v4))),
        IpAddr::V6(v6) => Record::from_rdata(name.clone(), ttl, RData::AAAA(AAAA(v6))),
    }
}

fn zone_records(zone: &Zone, config: &SnapshotConfig) -> ZoneRecords {
    // Zone names are validated by `Zone::new`, so they parse.
    let origin = Name::from_str(zone.as_str()).unwrap_or_else(|_| Name::root());
    let ns_name = Name::from_str("ns")
        .and_then(|n| n.append_domain(&origin))
        .unwrap_or_else(|_| origin.clone());
    let mbox = Name::from_str("hostmaster")
        .and_then(|n| n.append_domain(&origin))
        .unwrap_or_else(|_| origin.clone());
    let ttl = config.ttl;
    let soa = SOA::new(ns_name.clone(), mbox, config.serial, 60, 30, 600, ttl);
    ZoneRecords {
        origin: LowerName::from(&origin),
        key: NameKey::of(&origin),
        soa: vec![Record::from_rdata(origin.clone(), ttl, RData::SOA(soa))],
        ns: vec![Record::from_rdata(origin, ttl, RData::NS(NS(ns_name)))],
    }
}
