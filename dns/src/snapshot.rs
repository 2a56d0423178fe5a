//! The answers of every name, precomputed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use hickory_proto::rr::rdata::{A, AAAA, NS, SOA, SRV};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

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

/// Records of one name: a host's address, or an SRV name's records and what goes in the
/// additional section with them. A host's records are stored once (its SRV names point at
/// it); an empty non-terminal has none and costs no allocation.
#[derive(Clone, Debug, Default)]
pub(crate) struct NameRecords {
    /// Grouped by type (see [`NameRecords::of_type`]).
    pub(crate) records: Vec<Record>,
    pub(crate) additional: Additional,
}

/// The additional section of an SRV answer: the addresses of its targets.
#[derive(Clone, Debug, Default)]
pub(crate) enum Additional {
    /// Nothing.
    #[default]
    None,
    /// One target, whose records are those of this other name (stored once, with it).
    Target(LowerName),
    /// Several targets (a headless service's endpoints): their addresses, one copy shared by
    /// every SRV name of the service.
    Records(Arc<[Record]>),
}

impl NameRecords {
    /// The records of one type (records of a name are few, a scan is the cheapest index).
    pub(crate) fn of_type(&self, qtype: RecordType) -> &[Record] {
        let Some(start) = self.records.iter().position(|r| r.record_type() == qtype) else {
            return &[];
        };
        let len = self.records[start..]
            .iter()
            .take_while(|r| r.record_type() == qtype)
            .count();
        &self.records[start..start + len]
    }
}

/// A zone's apex records.
#[derive(Clone, Debug)]
pub(crate) struct ZoneRecords {
    pub(crate) origin: LowerName,
    pub(crate) soa: Vec<Record>,
    pub(crate) ns: Vec<Record>,
}

/// Every answer of the served zones at one moment.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub(crate) zones: Vec<ZoneRecords>,
    /// Every name that exists: hosts, SRV names, and the empty non-terminals above them.
    pub(crate) names: HashMap<LowerName, NameRecords>,
    hosts: usize,
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
    pub fn build_with_clusterset(
        config: &SnapshotConfig,
        hosts: impl IntoIterator<Item = HostRecord>,
        clusterset: impl IntoIterator<Item = ClustersetRecord>,
    ) -> (Self, Vec<SnapshotError>) {
        let zones: Vec<ZoneRecords> = config
            .zones
            .iter()
            .map(|z| zone_records(z, config))
            .collect();
        let hosts = hosts.into_iter();
        let clusterset = clusterset.into_iter();
        // A host or service makes about four names: itself, its SRV names, their empty
        // parents (a headless service one more per endpoint).
        let expected = hosts.size_hint().0 + clusterset.size_hint().0;
        let mut snapshot = Self {
            zones,
            names: HashMap::with_capacity(expected.saturating_mul(4)),
            hosts: 0,
            services: 0,
            ready: true,
        };
        let mut errors = Vec::new();
        for host in hosts {
            if let Err(err) = snapshot.insert(&host, config.ttl) {
                errors.push(err);
            }
        }
        if config
            .zones
            .iter()
            .any(crate::clusterset::is_clusterset_zone)
        {
            snapshot.insert_dns_version(config.ttl);
        }
        for service in clusterset {
            snapshot.insert_clusterset(&service, config.ttl, &mut errors);
        }
        snapshot.names.shrink_to_fit();
        (snapshot, errors)
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

    /// The additional section of an SRV answer from `records`.
    pub(crate) fn additionals<'a>(&'a self, records: &'a NameRecords) -> &'a [Record] {
        match &records.additional {
            Additional::None => &[],
            Additional::Target(target) => self
                .names
                .get(target)
                .map(|t| &t.records[..])
                .unwrap_or_default(),
            Additional::Records(shared) => shared,
        }
    }

    /// The zone `name` belongs to, if any (the longest match).
    pub(crate) fn zone_of(&self, name: &LowerName) -> Option<&ZoneRecords> {
        self.zones
            .iter()
            .filter(|z| z.origin.zone_of(name))
            .max_by_key(|z| z.origin.num_labels())
    }

    fn insert(&mut self, host: &HostRecord, ttl: u32) -> Result<(), SnapshotError> {
        let invalid = |reason: String| SnapshotError::InvalidName {
            name: host.name.clone(),
            reason,
        };
        let mut fqdn = Name::from_str(&host.name)
            .map_err(|e| invalid(e.to_string()))?
            .to_lowercase();
        fqdn.set_fqdn(true);
        let lower = LowerName::from(&fqdn);
        let Some(origin) = self.zone_of(&lower).map(|z| z.origin.clone()) else {
            return Err(SnapshotError::OutsideZones(host.name.clone()));
        };
        let address = address_record(&fqdn, ttl, host.address);
        let mut srv_names = Vec::new();
        for (port_name, port) in &host.ports {
            let srv_name = Name::from_str(&format!("_{port_name}._tcp"))
                .and_then(|prefix| prefix.append_domain(&fqdn))
                .map_err(|e| invalid(format!("port {port_name}: {e}")))?;
            let record = Record::from_rdata(
                srv_name.clone(),
                ttl,
                RData::SRV(SRV::new(0, 0, *port, fqdn.clone())),
            );
            srv_names.push((LowerName::from(&srv_name), record));
        }
        self.add_records(&lower, &origin, vec![address], Additional::None);
        for (srv_name, record) in srv_names {
            let target = Additional::Target(lower.clone());
            self.add_records(&srv_name, &origin, vec![record], target);
        }
        self.hosts += 1;
        Ok(())
    }

    /// Adds `records` to `name` (in the zone of `origin`), and its empty non-terminals;
    /// `additional` replaces the name's unless it is [`Additional::None`].
    pub(crate) fn add_records(
        &mut self,
        name: &LowerName,
        origin: &LowerName,
        records: Vec<Record>,
        additional: Additional,
    ) {
        let entry = self.names.entry(name.clone()).or_default();
        if entry.records.is_empty() {
            entry.records = records;
        } else {
            entry.records.extend(records);
        }
        // Stable: records of one type keep their order.
        entry.records.sort_by_key(Record::record_type);
        if !matches!(additional, Additional::None) {
            entry.additional = additional;
        }
        self.add_ancestors(name, origin);
    }

    /// Names between `name` and the zone apex exist (empty non-terminals): they answer
    /// NODATA, not NXDOMAIN, as RFC 8020 expects.
    fn add_ancestors(&mut self, name: &LowerName, origin: &LowerName) {
        let mut current = name.base_name();
        while current.num_labels() > origin.num_labels() {
            if self.names.contains_key(&current) {
                // Its own ancestors were added with it.
                return;
            }
            let parent = current.base_name();
            self.names.insert(current, NameRecords::default());
            current = parent;
        }
    }
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
        soa: vec![Record::from_rdata(origin.clone(), ttl, RData::SOA(soa))],
        ns: vec![Record::from_rdata(origin, ttl, RData::NS(NS(ns_name)))],
    }
}
