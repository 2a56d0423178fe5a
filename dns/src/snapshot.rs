//! The answers of every name, precomputed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;

use hickory_proto::rr::rdata::{A, AAAA, NS, SOA, SRV};
use hickory_proto::rr::{LowerName, Name, RData, Record};

use crate::Zone;

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

/// A host that could not be put in the snapshot.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The host is in none of the zones.
    #[error("host {0} is outside every DNS zone served; it is not answered")]
    OutsideZones(String),
    /// The host or a port name is not a valid DNS name.
    #[error("host {name}: {reason}")]
    InvalidName {
        /// The host.
        name: String,
        /// Why.
        reason: String,
    },
}

/// Records of one name: a host's address, or an SRV name's record and the key of its
/// target (whose address goes in the additional section). Each record is stored once; an
/// empty non-terminal has none and costs no allocation.
#[derive(Clone, Debug, Default)]
pub(crate) struct NameRecords {
    pub(crate) records: Vec<Record>,
    pub(crate) target: Option<LowerName>,
}

impl NameRecords {
    /// The records of one type (records of a name are few, a scan is the cheapest index).
    pub(crate) fn of_type(&self, qtype: hickory_proto::rr::RecordType) -> &[Record] {
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
        let zones: Vec<ZoneRecords> = config
            .zones
            .iter()
            .map(|z| zone_records(z, config))
            .collect();
        let hosts = hosts.into_iter();
        // A host makes about four names: itself, its SRV names, their empty parents.
        let mut snapshot = Self {
            zones,
            names: HashMap::with_capacity(hosts.size_hint().0 * 4),
            hosts: 0,
            ready: true,
        };
        let mut errors = Vec::new();
        for host in hosts {
            if let Err(err) = snapshot.insert(&host, config.ttl) {
                errors.push(err);
            }
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

    /// How many hosts it answers.
    pub fn hosts(&self) -> usize {
        self.hosts
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
        let address = match host.address {
            IpAddr::V4(v4) => Record::from_rdata(fqdn.clone(), ttl, RData::A(A(v4))),
            IpAddr::V6(v6) => Record::from_rdata(fqdn.clone(), ttl, RData::AAAA(AAAA(v6))),
        };
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
        let entry = self.names.entry(lower.clone()).or_default();
        entry.records.push(address);
        entry.records.sort_by_key(Record::record_type);
        self.add_ancestors(&lower, &origin);
        for (srv_name, record) in srv_names {
            let entry = self.names.entry(srv_name.clone()).or_default();
            entry.records.push(record);
            entry.target = Some(lower.clone());
            self.add_ancestors(&srv_name, &origin);
        }
        self.hosts += 1;
        Ok(())
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
