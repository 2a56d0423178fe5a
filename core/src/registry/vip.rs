//! Virtual IP allocation for global hosts.
//!
//! Every host gets one address from a configured range, the same in every cluster because
//! one allocator serves them all. A host's first choice is a slot derived from a stable hash
//! of its name, so even an allocator that lost its table tends to hand out the same
//! addresses again; collisions probe to the next free slot. An address, once given, stays
//! with its host until the host is released, however other hosts come and go.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::Host;
use crate::stable_hash::fnv1a;

/// Why a host could not get (or restore) an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VipError {
    /// Every usable address of the range is taken.
    #[error("no free VIP for host {host}: all {capacity} addresses of {range} are allocated")]
    Exhausted {
        /// The host that asked.
        host: Host,
        /// The configured range.
        range: IpNet,
        /// How many usable addresses the range has.
        capacity: u128,
    },
    /// A restored entry lies outside the configured range.
    #[error("saved VIP {address} of host {host} is outside the VIP range {range}")]
    OutOfRange {
        /// The host of the entry.
        host: Host,
        /// The saved address.
        address: IpAddr,
        /// The configured range.
        range: IpNet,
    },
    /// Two restored entries share one address.
    #[error("saved VIP {address} is claimed by both {first} and {second}")]
    Duplicate {
        /// The address.
        address: IpAddr,
        /// The host restored first.
        first: Host,
        /// The host that collided.
        second: Host,
    },
}

/// Hands out one address per host from a range and remembers who holds what.
#[derive(Debug, Clone)]
pub struct VipAllocator {
    range: IpNet,
    /// Offset of the first usable address from the range's network address.
    first: u128,
    /// Number of usable addresses.
    capacity: u128,
    by_host: HashMap<Host, u128>,
    by_offset: HashMap<u128, Host>,
}

impl VipAllocator {
    /// An empty allocator over `range`. For IPv4 ranges larger than /31 the network and
    /// broadcast addresses are never handed out; for IPv6 the subnet-router anycast address.
    pub fn new(range: IpNet) -> Self {
        let range = range.trunc();
        let host_bits = u32::from(range.max_prefix_len() - range.prefix_len());
        let size: u128 = if host_bits >= 128 {
            u128::MAX
        } else {
            1u128 << host_bits
        };
        let (first, capacity) = match range {
            IpNet::V4(_) if size > 2 => (1, size - 2),
            IpNet::V6(_) if size > 1 => (1, size - 1),
            _ => (0, size),
        };
        Self {
            range,
            first,
            capacity,
            by_host: HashMap::new(),
            by_offset: HashMap::new(),
        }
    }

    /// The range addresses come from.
    pub fn range(&self) -> IpNet {
        self.range
    }

    /// The address `host` holds, if any.
    pub fn get(&self, host: &Host) -> Option<IpAddr> {
        self.by_host.get(host).map(|&offset| self.address(offset))
    }

    /// How many hosts hold an address.
    pub fn len(&self) -> usize {
        self.by_host.len()
    }

    /// Whether no host holds an address.
    pub fn is_empty(&self) -> bool {
        self.by_host.is_empty()
    }

    /// The address of `host`, allocating one if it has none yet.
    pub fn allocate(&mut self, host: &Host) -> Result<IpAddr, VipError> {
        if let Some(&offset) = self.by_host.get(host) {
            return Ok(self.address(offset));
        }
        if self.by_host.len() as u128 >= self.capacity {
            return Err(VipError::Exhausted {
                host: host.clone(),
                range: self.range,
                capacity: self.capacity,
            });
        }
        let start = u128::from(fnv1a(host.as_str().as_bytes())) % self.capacity;
        // A free slot exists (checked above), so the probe ends within `capacity` steps.
        let mut slot = start;
        while self.by_offset.contains_key(&(self.first + slot)) {
            slot = (slot + 1) % self.capacity;
        }
        let offset = self.first + slot;
        self.by_host.insert(host.clone(), offset);
        self.by_offset.insert(offset, host.clone());
        Ok(self.address(offset))
    }

    /// Gives `host`'s address back to the pool.
    pub fn release(&mut self, host: &Host) -> Option<IpAddr> {
        let offset = self.by_host.remove(host)?;
        self.by_offset.remove(&offset);
        Some(self.address(offset))
    }

    /// Every allocation, sorted by host: the table to persist.
    pub fn table(&self) -> BTreeMap<Host, IpAddr> {
        self.by_host
            .iter()
            .map(|(host, &offset)| (host.clone(), self.address(offset)))
            .collect()
    }

    /// Re-installs saved allocations. Entries outside the range or clashing with an earlier
    /// entry are skipped and reported; every other entry is restored.
    pub fn restore(&mut self, table: impl IntoIterator<Item = (Host, IpAddr)>) -> Vec<VipError> {
        let mut errors = Vec::new();
        for (host, address) in table {
            let offset = match self.offset_of(&host, address) {
                Ok(offset) => offset,
                Err(err) => {
                    errors.push(err);
                    continue;
                }
            };
            if let Some(first) = self.by_offset.get(&offset) {
                if *first != host {
                    errors.push(VipError::Duplicate {
                        address,
                        first: first.clone(),
                        second: host,
                    });
                }
                continue;
            }
            if let Some(old) = self.by_host.insert(host.clone(), offset) {
                self.by_offset.remove(&old);
            }
            self.by_offset.insert(offset, host);
        }
        errors
    }

    /// Takes `table` as the truth (another replica's allocations, read from the shared
    /// store): each entry is installed even where this allocator had given its address, or
    /// its host, something else; of two entries with one address the later wins. Returns the
    /// hosts left without an address (they need a new one), and the entries outside the
    /// range.
    pub fn adopt(
        &mut self,
        table: impl IntoIterator<Item = (Host, IpAddr)>,
    ) -> (Vec<Host>, Vec<VipError>) {
        let mut displaced = Vec::new();
        let mut errors = Vec::new();
        for (host, address) in table {
            let offset = match self.offset_of(&host, address) {
                Ok(offset) => offset,
                Err(err) => {
                    errors.push(err);
                    continue;
                }
            };
            if let Some(other) = self.by_offset.get(&offset).cloned()
                && other != host
            {
                self.by_host.remove(&other);
                displaced.push(other);
            }
            if let Some(old) = self.by_host.insert(host.clone(), offset)
                && old != offset
            {
                self.by_offset.remove(&old);
            }
            self.by_offset.insert(offset, host);
        }
        displaced.sort();
        displaced.dedup();
        displaced.retain(|h| !self.by_host.contains_key(h));
        (displaced, errors)
    }

    /// The slot of a saved `address` of `host`, or why it cannot be installed.
    fn offset_of(&self, host: &Host, address: IpAddr) -> Result<u128, VipError> {
        self.offset(address).ok_or_else(|| VipError::OutOfRange {
            host: host.clone(),
            address,
            range: self.range,
        })
    }

    fn address(&self, offset: u128) -> IpAddr {
        match self.range {
            IpNet::V4(net) => {
                let base = u32::from(net.network());
                // offset < 2^(32 - prefix), so this stays within u32.
                IpAddr::from(base.wrapping_add(offset as u32).to_be_bytes())
            }
            IpNet::V6(net) => IpAddr::from(std::net::Ipv6Addr::from(
                u128::from(net.network()).wrapping_add(offset),
            )),
        }
    }

    fn offset(&self, address: IpAddr) -> Option<u128> {
        if !self.range.contains(&address) {
            return None;
        }
        let offset = match (self.range, address) {
            (IpNet::V4(net), IpAddr::V4(a)) => u128::from(u32::from(a) - u32::from(net.network())),
            (IpNet::V6(net), IpAddr::V6(a)) => u128::from(a) - u128::from(net.network()),
            _ => return None,
        };
        (offset >= self.first && offset < self.first + self.capacity).then_some(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str) -> Host {
        Host::build("prod", name, "global").unwrap()
    }

    fn range(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn allocation_is_stable_and_unique() {
        let mut vips = VipAllocator::new(range("240.0.0.0/16"));
        let a = vips.allocate(&host("a")).unwrap();
        let b = vips.allocate(&host("b")).unwrap();
        assert_ne!(a, b);
        assert_eq!(vips.allocate(&host("a")).unwrap(), a);
        assert!(range("240.0.0.0/16").contains(&a));
    }

    #[test]
    fn a_fresh_allocator_prefers_the_same_address() {
        let mut one = VipAllocator::new(range("240.0.0.0/16"));
        let mut two = VipAllocator::new(range("240.0.0.0/16"));
        two.allocate(&host("other")).unwrap();
        assert_eq!(
            one.allocate(&host("greeting")).unwrap(),
            two.allocate(&host("greeting")).unwrap()
        );
    }

    #[test]
    fn never_hands_out_network_or_broadcast() {
        let mut vips = VipAllocator::new(range("10.0.0.0/30"));
        let got: Vec<_> = ["a", "b"]
            .iter()
            .map(|n| vips.allocate(&host(n)).unwrap().to_string())
            .collect();
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(sorted, ["10.0.0.1", "10.0.0.2"]);
    }

    #[test]
    fn exhaustion_fails_only_the_new_host() {
        let mut vips = VipAllocator::new(range("10.0.0.0/30"));
        let a = vips.allocate(&host("a")).unwrap();
        vips.allocate(&host("b")).unwrap();
        let err = vips.allocate(&host("c")).unwrap_err();
        assert!(matches!(err, VipError::Exhausted { capacity: 2, .. }));
        assert!(err.to_string().contains("prod.c.global"), "{err}");
        assert_eq!(vips.get(&host("a")), Some(a));
        vips.release(&host("b"));
        assert!(vips.allocate(&host("c")).is_ok());
    }

    #[test]
    fn table_round_trips_and_bad_entries_are_reported() {
        let mut vips = VipAllocator::new(range("240.0.0.0/16"));
        for n in ["a", "b", "c"] {
            vips.allocate(&host(n)).unwrap();
        }
        let table = vips.table();
        let mut restored = VipAllocator::new(range("240.0.0.0/16"));
        let mut entries: Vec<_> = table.clone().into_iter().collect();
        entries.push((host("outside"), "10.1.2.3".parse().unwrap()));
        entries.push((host("dup"), table[&host("a")]));
        let errors = restored.restore(entries);
        assert_eq!(restored.table(), table);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(matches!(errors[0], VipError::OutOfRange { .. }));
        assert!(matches!(errors[1], VipError::Duplicate { .. }));
    }

    #[test]
    fn adopting_displaces_local_choices_and_keeps_the_maps_consistent() {
        let mut vips = VipAllocator::new(range("240.0.0.0/16"));
        let a = vips.allocate(&host("a")).unwrap();
        let b = vips.allocate(&host("b")).unwrap();
        // The store says: c holds a's address, and b moved to a new one.
        let moved: IpAddr = "240.0.9.9".parse().unwrap();
        let (displaced, errors) = vips.adopt([
            (host("c"), a),
            (host("b"), moved),
            (host("d"), "10.0.0.1".parse().unwrap()),
        ]);
        assert_eq!(displaced, [host("a")]);
        assert_eq!(errors.len(), 1);
        assert_eq!(vips.get(&host("c")), Some(a));
        assert_eq!(vips.get(&host("b")), Some(moved));
        assert_eq!(vips.get(&host("a")), None);
        // b's old address is free again, and nothing is held twice.
        let table = vips.table();
        let mut addresses: Vec<_> = table.values().collect();
        addresses.dedup();
        assert_eq!(addresses.len(), table.len());
        assert!(!table.values().any(|v| *v == b));
        assert_ne!(vips.allocate(&host("a")).unwrap(), a);
    }

    #[test]
    fn of_two_adopted_entries_with_one_address_the_first_host_is_left_without() {
        let mut vips = VipAllocator::new(range("240.0.0.0/16"));
        let x: IpAddr = "240.0.0.7".parse().unwrap();
        let (displaced, _) = vips.adopt([(host("a"), x), (host("c"), x)]);
        assert_eq!(displaced, [host("a")]);
        assert_eq!(vips.get(&host("c")), Some(x));
        assert_eq!(vips.get(&host("a")), None);
    }

    #[test]
    fn ipv6_ranges_work() {
        let mut vips = VipAllocator::new(range("fd00:f::/112"));
        let a = vips.allocate(&host("a")).unwrap();
        assert!(a.is_ipv6());
        assert!(range("fd00:f::/112").contains(&a));
        assert_ne!(a.to_string(), "fd00:f::");
    }
}
