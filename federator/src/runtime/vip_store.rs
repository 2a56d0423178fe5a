//! The registry loop's side of the shared VIP store: the leader records every allocation
//! before the view that carries it is published (so no writer ever writes an address the
//! store does not hold), followers adopt the leader's allocations as they appear, and a new
//! leader reads the store before its writers start.
//!
//! A store that does not answer stops nothing: the registry goes on with its own
//! allocations (which prefer the same addresses), the failure is logged once, and everything
//! is reconciled in full when the store answers again.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use federator_core::planner::vip_sync::{VipMirror, VipWrites};
use tracing::{info, warn};

use crate::leader::Fence;
use crate::model::Host;
use crate::registry::{ChangeSet, Registry};
use crate::state::{StateStore, Store, StoreError};

/// How long one store request may take before the registry goes on without it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How long after a failure the store is left alone.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(2);
/// Rounds of claim -> adopt -> claim again, per batch (a round only repeats for hosts that
/// lost their address to another writer's claim).
const ROUNDS: usize = 4;
/// Entries per store request: each part has its own time limit and its answers are kept as
/// they come, so a whole table (a start-up, a takeover) is recorded part by part.
const CHUNK: usize = 256;

/// The store and what is known of it.
pub(super) struct VipStore {
    store: Store,
    mirror: VipMirror,
    /// The store's version when last read in full.
    version: Option<String>,
    /// Nothing is written before the start-up restore: an empty registry would release
    /// every stored address.
    restored: bool,
    /// The next write must compare the whole table (after a failure, a prune or a
    /// takeover).
    needs_full: bool,
    /// While set, the store is left alone.
    paused_until: Option<Instant>,
}

impl VipStore {
    pub(super) fn new(store: Store) -> Self {
        Self {
            store,
            mirror: VipMirror::default(),
            version: None,
            restored: false,
            needs_full: true,
            paused_until: None,
        }
    }

    /// Start-up: the stored table, checked against the `recovered` one read back from the
    /// ServiceEntries. The store wins where they disagree; what only the ServiceEntries hold
    /// is kept (and recorded by the next leader write). Returns the table to restore and the
    /// number of disagreements.
    pub(super) async fn restore_table(
        &mut self,
        recovered: BTreeMap<Host, IpAddr>,
    ) -> (Vec<(Host, IpAddr)>, usize) {
        self.restored = true;
        self.needs_full = true;
        let loaded = match self.request(self.store.load()).await {
            Ok(loaded) => loaded,
            Err(err) => {
                warn!(error = %err, "VIP store unreadable at start-up; VIPs come from the ServiceEntries alone");
                return (recovered.into_iter().collect(), 0);
            }
        };
        for skipped in &loaded.skipped {
            warn!(entry = skipped.as_str(), "VIP store entry ignored");
        }
        self.version = Some(loaded.version.clone());
        let stored: BTreeMap<Host, IpAddr> =
            loaded.table.iter().map(|(h, a)| (h.clone(), *a)).collect();
        self.mirror.reload(loaded.table);
        let holders: BTreeMap<IpAddr, &Host> = stored.iter().map(|(h, a)| (*a, h)).collect();
        let mut disagreements = 0;
        let mut table: Vec<(Host, IpAddr)> = stored.iter().map(|(h, a)| (h.clone(), *a)).collect();
        for (host, address) in recovered {
            let differs = match (stored.get(&host), holders.get(&address)) {
                (Some(kept), _) if *kept != address => Some(format!("the store holds {kept}")),
                (None, Some(holder)) => Some(format!("the store gives it to {holder}")),
                _ => None,
            };
            match differs {
                Some(why) => {
                    disagreements += 1;
                    warn!(host = %host, address = %address, store = why, "a ServiceEntry's VIP disagrees with the VIP store; the store wins");
                }
                None if !stored.contains_key(&host) => table.push((host, address)),
                None => {}
            }
        }
        info!(
            store = self.store.describe(),
            stored = stored.len(),
            disagreements,
            "VIP table read"
        );
        (table, disagreements)
    }

    /// After a batch, on the leader: records the allocations of `hosts` (or the whole table
    /// when due), each part only while `term` says this replica leads. Returns what adopting
    /// the store's answers changed.
    pub(super) async fn record(
        &mut self,
        registry: &mut Registry,
        hosts: &BTreeSet<Host>,
        term: &Fence,
    ) -> ChangeSet {
        let mut changes = ChangeSet::default();
        if !self.restored || self.paused() {
            return changes;
        }
        let mut writes = if self.needs_full {
            self.mirror.plan_all(&registry.vip_table())
        } else {
            self.mirror.plan(hosts.iter().map(|h| (h, registry.vip(h))))
        };
        self.needs_full = false;
        for _ in 0..ROUNDS {
            if writes.is_empty() {
                break;
            }
            let mut next = VipWrites::default();
            for part in writes.chunks(CHUNK) {
                if !term.may_write() {
                    self.needs_full = true;
                    return changes;
                }
                match self.request(self.store.write(&part)).await {
                    Ok(answer) => {
                        self.answered();
                        next.extend(self.settle(registry, &part, answer, &mut changes));
                    }
                    Err(err) => {
                        self.failed(&err);
                        return changes;
                    }
                }
            }
            writes = next;
        }
        changes
    }

    /// After a batch that made `changes`: while `writers` may write, records the
    /// allocations of the hosts it changed (each part while `term` lasts) and adds what
    /// adopting the store's answers changed.
    pub(super) async fn record_changed(
        &mut self,
        registry: &mut Registry,
        changes: &mut ChangeSet,
        writers: &Fence,
        term: &Fence,
    ) {
        if writers.may_write() {
            let adopted = self.record(registry, &changes.hosts, term).await;
            changes.extend(adopted);
        }
    }

    /// Notes the store's answer to `writes`, adopts what differs from the claims, and
    /// returns the claims the adoption made necessary (hosts that lost their address).
    fn settle(
        &mut self,
        registry: &mut Registry,
        writes: &VipWrites,
        answer: BTreeMap<Host, IpAddr>,
        changes: &mut ChangeSet,
    ) -> VipWrites {
        self.mirror.removed(writes.releases.keys());
        let differing: BTreeMap<Host, IpAddr> = answer
            .iter()
            .filter(|(h, a)| writes.claims.get(*h) != Some(*a))
            .map(|(h, a)| (h.clone(), *a))
            .collect();
        self.mirror.stored(answer);
        if differing.is_empty() {
            return VipWrites::default();
        }
        info!(
            hosts = differing.len(),
            "VIPs already recorded by another writer adopted"
        );
        let (adopted, errors) = registry.adopt_vips(differing);
        for err in errors {
            warn!(error = %err, "stored VIP not adopted");
        }
        let next = self
            .mirror
            .plan(adopted.hosts.iter().map(|h| (h, registry.vip(h))));
        changes.extend(adopted);
        next
    }

    /// On a follower: adopts the leader's allocations when the store changed.
    pub(super) async fn follow(&mut self, registry: &mut Registry) -> ChangeSet {
        if self.paused() {
            return ChangeSet::default();
        }
        match self.request(self.store.version()).await {
            Ok(version) if Some(&version) == self.version.as_ref() => return ChangeSet::default(),
            Ok(_) => {}
            Err(err) => {
                self.failed(&err);
                return ChangeSet::default();
            }
        }
        self.reload(registry).await.unwrap_or_default()
    }

    /// A new term: the store read in full and adopted, then the whole table recorded. The
    /// caller opens the writers' fence only after this succeeded (`None`: the store did not
    /// answer; the writers wait, or hosts could swap addresses with the previous leader's).
    pub(super) async fn take_over(
        &mut self,
        registry: &mut Registry,
        term: &Fence,
    ) -> Option<ChangeSet> {
        self.paused_until = None;
        if !self.restored {
            // Start-up: the restore reads the store next (the writers wait for it too), and
            // the first write after it records the whole table.
            return Some(ChangeSet::default());
        }
        let mut changes = self.reload(registry).await?;
        changes.extend(self.record(registry, &BTreeSet::new(), term).await);
        Some(changes)
    }

    /// A prune freed restored addresses: the next write compares the whole table.
    pub(super) fn pruned(&mut self) {
        self.needs_full = true;
    }

    /// On the leader's tick: a write that failed is retried once the pause is over.
    pub(super) fn behind(&self) -> bool {
        self.restored && self.needs_full && !self.paused()
    }

    /// Reads the whole table and adopts what differs; `None` when the store did not answer.
    async fn reload(&mut self, registry: &mut Registry) -> Option<ChangeSet> {
        let loaded = match self.request(self.store.load()).await {
            Ok(loaded) => {
                self.answered();
                loaded
            }
            Err(err) => {
                self.failed(&err);
                return None;
            }
        };
        self.version = Some(loaded.version);
        self.needs_full = true;
        let changed = self.mirror.reload(loaded.table);
        if changed.is_empty() {
            return Some(ChangeSet::default());
        }
        let (changes, errors) = registry.adopt_vips(changed);
        for err in errors {
            warn!(error = %err, "stored VIP not adopted");
        }
        Some(changes)
    }

    fn paused(&self) -> bool {
        self.paused_until.is_some_and(|t| Instant::now() < t)
    }

    fn answered(&mut self) {
        if self.paused_until.take().is_some() {
            info!(store = self.store.describe(), "VIP store answers again");
        }
    }

    fn failed(&mut self, err: &StoreError) {
        if self.paused_until.is_none() {
            warn!(error = %err, "VIP store failed; going on with this replica's own allocations and retrying");
        }
        self.paused_until = Some(Instant::now() + PAUSE_AFTER_FAILURE);
        self.needs_full = true;
    }

    async fn request<T>(
        &self,
        request: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(REQUEST_TIMEOUT, request)
            .await
            .unwrap_or_else(|_| {
                Err(StoreError {
                    store: self.store.describe(),
                    reason: format!("no answer within {REQUEST_TIMEOUT:?}"),
                })
            })
    }
}
