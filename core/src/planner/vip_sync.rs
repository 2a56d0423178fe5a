//! What to write to the shared VIP store: the difference between the addresses the registry
//! holds and what the store is known to hold. The leader claims what is new and releases
//! what the registry freed; a follower takes the store's entries that differ from its own.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use crate::model::Host;

/// Writes to the store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VipWrites {
    /// Allocations to record (the store may answer with another holder's).
    pub claims: BTreeMap<Host, IpAddr>,
    /// Allocations to remove (only if the store still holds exactly these).
    pub releases: BTreeMap<Host, IpAddr>,
}

impl VipWrites {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.claims.is_empty() && self.releases.is_empty()
    }

    /// The writes in parts of at most `size` entries (releases first: they free addresses
    /// claims may want), so a large write is made, and its answers kept, part by part.
    pub fn chunks(self, size: usize) -> Vec<VipWrites> {
        let size = size.max(1);
        let mut out = Vec::new();
        let releases: Vec<(Host, IpAddr)> = self.releases.into_iter().collect();
        for part in releases.chunks(size) {
            out.push(VipWrites {
                releases: part.iter().cloned().collect(),
                ..VipWrites::default()
            });
        }
        let claims: Vec<(Host, IpAddr)> = self.claims.into_iter().collect();
        for part in claims.chunks(size) {
            out.push(VipWrites {
                claims: part.iter().cloned().collect(),
                ..VipWrites::default()
            });
        }
        out
    }

    /// Adds `other`'s writes.
    pub fn extend(&mut self, other: VipWrites) {
        self.claims.extend(other.claims);
        self.releases.extend(other.releases);
    }
}

/// The store's VIP table as this replica last read or wrote it.
#[derive(Clone, Debug, Default)]
pub struct VipMirror {
    stored: HashMap<Host, IpAddr>,
}

impl VipMirror {
    /// How many allocations the store holds, as far as known.
    pub fn len(&self) -> usize {
        self.stored.len()
    }

    /// Whether the store holds none, as far as known.
    pub fn is_empty(&self) -> bool {
        self.stored.is_empty()
    }

    /// What the store holds for `host`, as far as known.
    pub fn get(&self, host: &Host) -> Option<IpAddr> {
        self.stored.get(host).copied()
    }

    /// The writes that bring the store to the registry's addresses for `hosts` (each with
    /// the address the registry holds for it now, if any).
    pub fn plan<'a>(
        &self,
        hosts: impl IntoIterator<Item = (&'a Host, Option<IpAddr>)>,
    ) -> VipWrites {
        let mut writes = VipWrites::default();
        for (host, current) in hosts {
            let stored = self.get(host);
            match current {
                Some(address) if stored != Some(address) => {
                    writes.claims.insert(host.clone(), address);
                }
                None => {
                    if let Some(address) = stored {
                        writes.releases.insert(host.clone(), address);
                    }
                }
                Some(_) => {}
            }
        }
        writes
    }

    /// The writes that bring the store to the registry's whole table: every difference,
    /// including stored hosts the registry no longer holds.
    pub fn plan_all(&self, table: &BTreeMap<Host, IpAddr>) -> VipWrites {
        let mut writes = self.plan(table.iter().map(|(h, a)| (h, Some(*a))));
        for (host, address) in &self.stored {
            if !table.contains_key(host) {
                writes.releases.insert(host.clone(), *address);
            }
        }
        writes
    }

    /// Notes entries the store confirmed holding.
    pub fn stored(&mut self, entries: impl IntoIterator<Item = (Host, IpAddr)>) {
        self.stored.extend(entries);
    }

    /// Notes entries the store no longer holds.
    pub fn removed<'a>(&mut self, hosts: impl IntoIterator<Item = &'a Host>) {
        for host in hosts {
            self.stored.remove(host);
        }
    }

    /// Replaces the mirror with a full read of the store; returns the entries that differ
    /// from what was known (for a follower to adopt).
    pub fn reload(&mut self, table: HashMap<Host, IpAddr>) -> BTreeMap<Host, IpAddr> {
        let changed = table
            .iter()
            .filter(|(host, address)| self.stored.get(*host) != Some(*address))
            .map(|(h, a)| (h.clone(), *a))
            .collect();
        self.stored = table;
        changed
    }
}

/// Applies claims and releases to a table held whole (the embedded store's object): a store's
/// rules: a claim never takes a host or an address recorded first, a release removes only
/// the exact entry. Returns the entries to report back.
pub fn apply_writes(
    table: &mut BTreeMap<Host, IpAddr>,
    writes: &VipWrites,
) -> BTreeMap<Host, IpAddr> {
    for (host, address) in &writes.releases {
        if table.get(host) == Some(address) {
            table.remove(host);
        }
    }
    let mut holders: HashMap<IpAddr, Host> = table.iter().map(|(h, a)| (*a, h.clone())).collect();
    let mut answer = BTreeMap::new();
    for (host, address) in &writes.claims {
        if let Some(stored) = table.get(host) {
            answer.insert(host.clone(), *stored);
            continue;
        }
        if let Some(holder) = holders.get(address) {
            answer.insert(holder.clone(), *address);
            continue;
        }
        table.insert(host.clone(), *address);
        holders.insert(*address, host.clone());
        answer.insert(host.clone(), *address);
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str) -> Host {
        Host::build("prod", name, "global").unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn claims_what_is_new_or_moved_and_releases_what_was_freed() {
        let mut mirror = VipMirror::default();
        mirror.stored([
            (host("kept"), ip("240.0.0.1")),
            (host("moved"), ip("240.0.0.2")),
        ]);
        mirror.stored([(host("freed"), ip("240.0.0.3"))]);
        let (kept, moved, freed, new) = (host("kept"), host("moved"), host("freed"), host("new"));
        let writes = mirror.plan([
            (&kept, Some(ip("240.0.0.1"))),
            (&moved, Some(ip("240.0.0.9"))),
            (&freed, None),
            (&new, Some(ip("240.0.0.4"))),
        ]);
        assert_eq!(
            writes.claims,
            BTreeMap::from([(moved, ip("240.0.0.9")), (new, ip("240.0.0.4"))])
        );
        assert_eq!(writes.releases, BTreeMap::from([(freed, ip("240.0.0.3"))]));
    }

    #[test]
    fn chunks_cover_every_write_once_releases_first() {
        let writes = VipWrites {
            claims: (0..5)
                .map(|i| (host(&format!("c{i}")), ip(&format!("240.0.0.{i}"))))
                .collect(),
            releases: (0..3)
                .map(|i| (host(&format!("r{i}")), ip(&format!("240.0.1.{i}"))))
                .collect(),
        };
        let parts = writes.clone().chunks(2);
        assert_eq!(parts.len(), 2 + 3);
        assert!(parts[0].claims.is_empty() && parts[1].claims.is_empty());
        assert!(parts.iter().all(|p| p.claims.len() + p.releases.len() <= 2));
        let mut joined = VipWrites::default();
        for part in parts {
            joined.extend(part);
        }
        assert_eq!(joined, writes);
    }

    #[test]
    fn a_full_plan_releases_stored_hosts_the_registry_dropped() {
        let mut mirror = VipMirror::default();
        mirror.stored([
            (host("gone"), ip("240.0.0.1")),
            (host("here"), ip("240.0.0.2")),
        ]);
        let table = BTreeMap::from([(host("here"), ip("240.0.0.2"))]);
        let writes = mirror.plan_all(&table);
        assert!(writes.claims.is_empty());
        assert_eq!(writes.releases.keys().collect::<Vec<_>>(), [&host("gone")]);
        mirror.removed(writes.releases.keys());
        assert!(mirror.plan_all(&table).is_empty());
    }

    #[test]
    fn a_reload_reports_only_what_differs() {
        let mut mirror = VipMirror::default();
        mirror.stored([(host("a"), ip("240.0.0.1"))]);
        let changed = mirror.reload(HashMap::from([
            (host("a"), ip("240.0.0.1")),
            (host("b"), ip("240.0.0.2")),
        ]));
        assert_eq!(changed, BTreeMap::from([(host("b"), ip("240.0.0.2"))]));
        assert_eq!(mirror.len(), 2);
    }

    #[test]
    fn claims_never_take_what_another_recorded_first() {
        let mut table = BTreeMap::from([
            (host("a"), ip("240.0.0.1")),
            (host("b"), ip("240.0.0.2")),
            (host("old"), ip("240.0.0.3")),
        ]);
        let writes = VipWrites {
            claims: BTreeMap::from([
                // a already holds another address: the store's wins.
                (host("a"), ip("240.0.0.7")),
                // b's address: c gets nothing, and learns b holds it.
                (host("c"), ip("240.0.0.2")),
                // old's address, released in the same write: free.
                (host("d"), ip("240.0.0.3")),
            ]),
            releases: BTreeMap::from([
                (host("old"), ip("240.0.0.3")),
                // Not what the store holds: left alone.
                (host("b"), ip("240.0.0.9")),
            ]),
        };
        let answer = apply_writes(&mut table, &writes);
        assert_eq!(
            answer,
            BTreeMap::from([
                (host("a"), ip("240.0.0.1")),
                (host("b"), ip("240.0.0.2")),
                (host("d"), ip("240.0.0.3")),
            ])
        );
        assert_eq!(table.len(), 3);
        assert_eq!(table.get(&host("d")), Some(&ip("240.0.0.3")));
        assert!(!table.contains_key(&host("c")));
    }
}
