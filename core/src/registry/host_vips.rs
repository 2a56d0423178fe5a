//! The registry's side of VIPs: handing each host its address, keeping hosts waiting while
//! the range is full, and the table that is persisted and restored across restarts.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use super::{ChangeSet, Registry, VipError};
use crate::model::Host;

impl Registry {
    /// The VIP table, to persist.
    pub fn vip_table(&self) -> BTreeMap<Host, IpAddr> {
        self.vips.table()
    }

    /// Restores a saved VIP table before any host exists, so hosts get their old addresses
    /// back. Entries for hosts that never show up keep their address reserved until
    /// [`Registry::prune_vips`].
    pub fn restore_vips(
        &mut self,
        table: impl IntoIterator<Item = (Host, IpAddr)>,
    ) -> Vec<VipError> {
        self.vips.restore(table)
    }

    /// The address `host` holds, if any (whether or not the host exists: restored and
    /// adopted addresses are held for hosts not seen yet).
    pub fn vip(&self, host: &Host) -> Option<IpAddr> {
        self.vips.get(host)
    }

    /// Takes allocations made by the leader (read from the shared store) as the truth: hosts
    /// get the stored address, and a host whose address went to another one gets a new
    /// address. What changed is returned for re-rendering; entries outside the range are
    /// reported and skipped.
    pub fn adopt_vips(
        &mut self,
        table: impl IntoIterator<Item = (Host, IpAddr)>,
    ) -> (ChangeSet, Vec<VipError>) {
        let table: Vec<(Host, IpAddr)> = table.into_iter().collect();
        let (displaced, errors) = self.vips.adopt(table.iter().cloned());
        let mut changes = ChangeSet::default();
        // Every host the adoption touched ends with the allocator's address: the stored one,
        // or a new one for a host left without.
        let touched = table.into_iter().map(|(h, _)| h).chain(displaced);
        for host in touched {
            // Read first: a mutable borrow marks the host changed for the next view.
            let Some(shown) = self.hosts.get(&host).map(|e| e.service.vip) else {
                continue;
            };
            match self.vips.get(&host) {
                Some(address) if shown == Some(address) => {}
                Some(address) => {
                    if let Some(entry) = self.hosts.get_mut(&host) {
                        Arc::make_mut(&mut entry.service).vip = Some(address);
                        entry.vip_error = None;
                    }
                    self.vip_waiting.remove(&host);
                    changes.hosts.insert(host);
                }
                None => {
                    self.assign_vip(&host);
                    changes.hosts.insert(host);
                }
            }
        }
        (changes, errors)
    }

    /// Frees addresses held for hosts that do not exist (call once the initial sync is done).
    pub fn prune_vips(&mut self) -> ChangeSet {
        let stale: Vec<Host> = self
            .vips
            .table()
            .into_keys()
            .filter(|h| !self.hosts.contains_key(h))
            .collect();
        for host in &stale {
            self.vips.release(host);
        }
        let mut changes = ChangeSet::default();
        if !stale.is_empty() {
            self.retry_waiting_vips(&mut changes);
        }
        changes
    }

    /// Gives `host` a VIP, or puts it on the waiting list when the range is full.
    pub(super) fn assign_vip(&mut self, host: &Host) {
        let result = self.vips.allocate(host);
        if let Some(entry) = self.hosts.get_mut(host) {
            match result {
                Ok(vip) => {
                    Arc::make_mut(&mut entry.service).vip = Some(vip);
                    entry.vip_error = None;
                    self.vip_waiting.remove(host);
                }
                Err(err) => {
                    Arc::make_mut(&mut entry.service).vip = None;
                    entry.vip_error = Some(err);
                    self.vip_waiting.insert(host.clone());
                }
            }
        }
    }

    /// Hands freed addresses to waiting hosts, in host order, until the range is full again.
    pub(super) fn retry_waiting_vips(&mut self, changes: &mut ChangeSet) {
        let waiting: Vec<Host> = self.vip_waiting.iter().cloned().collect();
        for host in waiting {
            self.assign_vip(&host);
            if self.vip_waiting.contains(&host) {
                break;
            }
            changes.hosts.insert(host);
        }
    }
}
