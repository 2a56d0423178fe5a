//! How hosts and services go in and out of a snapshot: each source's records by name (its
//! parts), put at their names with the source as their owner and taken back exactly, with
//! the empty non-terminals above them counted, and which of two services of one name is
//! answered.

use std::collections::HashSet;
use std::sync::Arc;

use crate::clusterset::{already_answered, dns_version_parts, service_plan};
use crate::names::{Kind, NameKey, NameRecords, Owner, Part, parent};
use crate::snapshot::{ZoneRecords, host_parts};
use crate::{ClustersetRecord, HostRecord, Snapshot, SnapshotError};

/// A source's identity: its kind and its name as given.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SourceKey {
    kind: Kind,
    name: Arc<str>,
}

/// A host or service as given, and what became of it.
#[derive(Clone, Debug)]
pub(crate) struct Source {
    seq: u64,
    record: SourceRecord,
    state: State,
}

#[derive(Clone, Debug)]
enum SourceRecord {
    Host(HostRecord),
    Service(ClustersetRecord),
    DnsVersion,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Its records are in.
    Answered,
    /// A service whose name another source (before it) has records at.
    Blocked,
    /// A service waiting for [`Snapshot::settle`] to tell whether it is answered.
    Pending,
    /// Nothing to answer (invalid, or no address).
    Unanswered,
}

/// What one build or update has done so far.
#[derive(Debug)]
pub(crate) struct Work {
    /// Names claimed by a service whose owners changed: whom they answer may change.
    contested: Vec<NameKey>,
    pub(crate) errors: Vec<SnapshotError>,
    /// Names whose records changed (kept in updates only: a build changes every name).
    pub(crate) changed: Option<HashSet<NameKey>>,
}

impl Work {
    /// Nothing done yet; `track_changes` keeps the names whose records change (an update
    /// needs them to forget the answers that depend on them).
    pub(crate) fn new(track_changes: bool) -> Self {
        Self {
            contested: Vec::new(),
            errors: Vec::new(),
            changed: track_changes.then(HashSet::new),
        }
    }

    fn touched(&mut self, name: &NameKey, entry: &NameRecords) {
        if !entry.claims.is_empty() {
            self.contested.push(name.clone());
        }
        if let Some(changed) = &mut self.changed {
            changed.insert(name.clone());
        }
    }
}

impl Snapshot {
    /// Replaces the host named `name` (as given) with `host`, or removes it.
    pub(crate) fn replace_host(&mut self, name: &str, host: Option<HostRecord>, work: &mut Work) {
        let key = SourceKey {
            kind: Kind::Host,
            name: Arc::from(name),
        };
        let seq = self.take_back(&key, work);
        let Some(host) = host else { return };
        let (state, parts) = match host_parts(&host, &self.zones, self.config.ttl) {
            Ok(parts) => (State::Answered, parts),
            Err(err) => {
                work.errors.push(err);
                (State::Unanswered, Vec::new())
            }
        };
        let owner = self.insert_source(key, seq, SourceRecord::Host(host), state);
        if state == State::Answered {
            self.hosts += 1;
            self.put(&owner, parts, work);
        }
    }

    /// Replaces the clusterset service named `name` (as given) with `service`, or removes
    /// it; whether it is answered is decided by [`Snapshot::settle`].
    pub(crate) fn replace_service(
        &mut self,
        name: &str,
        service: Option<ClustersetRecord>,
        work: &mut Work,
    ) {
        let key = SourceKey {
            kind: Kind::Service,
            name: Arc::from(name),
        };
        let seq = self.take_back(&key, work);
        let Some(service) = service else { return };
        let claim = match service_plan(&service, &self.zones, self.config.ttl) {
            Ok(plan) if plan.parts.is_empty() => {
                work.errors.extend(plan.errors);
                None
            }
            Ok(plan) => Some(plan.name),
            Err(err) => {
                work.errors.push(err);
                None
            }
        };
        let state = claim.as_ref().map_or(State::Unanswered, |_| State::Pending);
        let owner = self.insert_source(key, seq, SourceRecord::Service(service), state);
        if let Some(name) = claim {
            let entry = self.entry(&name);
            let at = entry.claims.partition_point(|c| *c < owner);
            entry.claims.insert(at, owner);
            work.contested.push(name);
        }
    }

    /// Adds `dns-version.clusterset.local.`.
    pub(crate) fn add_dns_version(&mut self, work: &mut Work) {
        let key = SourceKey {
            kind: Kind::DnsVersion,
            name: Arc::from("dns-version"),
        };
        let parts = dns_version_parts(&self.zones, self.config.ttl);
        let owner = self.insert_source(key, None, SourceRecord::DnsVersion, State::Answered);
        self.put(&owner, parts, work);
    }

    /// Answers, of the services claiming each contested name, the first unless a source
    /// before it has records there, and leaves the others out. Answering or leaving out a
    /// service changes names whose claims come later in precedence only, so this ends.
    pub(crate) fn settle(&mut self, work: &mut Work) {
        while let Some(name) = work.contested.pop() {
            let Some(entry) = self.names.get(name.as_bytes()) else {
                continue;
            };
            let Some(first) = entry.claims.first() else {
                continue;
            };
            let winner = (!entry.owners.iter().any(|o| o < first)).then(|| first.clone());
            for claim in entry.claims.clone() {
                let key = SourceKey {
                    kind: claim.kind,
                    name: Arc::clone(&claim.name),
                };
                let Some(source) = self.sources.get(&key) else {
                    continue;
                };
                let (state, record) = (source.state, source.record.clone());
                let SourceRecord::Service(service) = record else {
                    continue;
                };
                let wins = winner.as_ref() == Some(&claim);
                match (wins, state) {
                    (true, State::Answered) | (false, State::Blocked) => {}
                    (true, _) => {
                        let Ok(plan) = service_plan(&service, &self.zones, self.config.ttl) else {
                            continue;
                        };
                        work.errors.extend(plan.errors);
                        self.set_state(&key, State::Answered);
                        self.services += 1;
                        self.put(&claim, plan.parts, work);
                    }
                    (false, was) => {
                        work.errors.push(already_answered(&service.name));
                        self.set_state(&key, State::Blocked);
                        if was == State::Answered {
                            self.services -= 1;
                            let parts = self.parts_of(&claim);
                            self.take(&claim, &parts, work);
                        }
                    }
                }
            }
        }
    }

    /// Takes back what the source of `key` put in, removing it; its precedence if it was
    /// there (a changed source keeps its place).
    fn take_back(&mut self, key: &SourceKey, work: &mut Work) -> Option<u64> {
        let source = self.sources.get(key)?;
        let owner = Owner {
            kind: key.kind,
            seq: source.seq,
            name: Arc::clone(&key.name),
        };
        let (state, seq) = (source.state, source.seq);
        let parts = match state {
            State::Answered => self.parts_of(&owner),
            _ => Vec::new(),
        };
        let claimed = match &source.record {
            SourceRecord::Service(service) if state != State::Unanswered => {
                service_plan(service, &self.zones, self.config.ttl)
                    .ok()
                    .map(|p| p.name)
            }
            _ => None,
        };
        self.sources.remove(key);
        match (state, key.kind) {
            (State::Answered, Kind::Host) => self.hosts -= 1,
            (State::Answered, Kind::Service) => self.services -= 1,
            _ => {}
        }
        self.take(&owner, &parts, work);
        if let Some(name) = claimed {
            if let Some(entry) = self.names.get_mut(name.as_bytes()) {
                entry.claims.retain(|c| *c != owner);
            }
            work.contested.push(name.clone());
            self.drop_if_unused(&name);
        }
        Some(seq)
    }

    fn insert_source(
        &mut self,
        key: SourceKey,
        seq: Option<u64>,
        record: SourceRecord,
        state: State,
    ) -> Owner {
        let seq = seq.unwrap_or_else(|| {
            self.next_seq += 1;
            self.next_seq
        });
        let owner = Owner {
            kind: key.kind,
            seq,
            name: Arc::clone(&key.name),
        };
        self.sources.insert(key, Source { seq, record, state });
        owner
    }

    fn set_state(&mut self, key: &SourceKey, state: State) {
        if let Some(source) = self.sources.get_mut(key) {
            source.state = state;
        }
    }

    /// The parts of an answered source, from its record as given.
    pub(crate) fn parts_of(&self, owner: &Owner) -> Vec<Part> {
        let key = SourceKey {
            kind: owner.kind,
            name: Arc::clone(&owner.name),
        };
        let (zones, ttl) = (&self.zones, self.config.ttl);
        match self.sources.get(&key).map(|s| &s.record) {
            Some(SourceRecord::Host(host)) => host_parts(host, zones, ttl).unwrap_or_default(),
            Some(SourceRecord::Service(service)) => service_plan(service, zones, ttl)
                .map(|p| p.parts)
                .unwrap_or_default(),
            Some(SourceRecord::DnsVersion) => dns_version_parts(zones, ttl),
            None => Vec::new(),
        }
    }

    /// Puts `parts` in as `owner`'s.
    fn put(&mut self, owner: &Owner, parts: Vec<Part>, work: &mut Work) {
        for part in parts {
            let entry = self.entry(&part.name);
            let at = entry.owners.partition_point(|o| o < owner);
            entry.owners.insert(at, owner.clone());
            if entry.owners.len() == 1 {
                entry.merge(std::iter::once(&part));
            } else {
                self.merge_owners(&part.name, Some((owner, &part)));
            }
            if let Some(entry) = self.names.get(part.name.as_bytes()) {
                work.touched(&part.name, entry);
            }
        }
    }

    /// Takes `owner`'s `parts` out, and the names nothing keeps any more.
    fn take(&mut self, owner: &Owner, parts: &[Part], work: &mut Work) {
        for part in parts {
            let Some(entry) = self.names.get_mut(part.name.as_bytes()) else {
                continue;
            };
            entry.owners.retain(|o| o != owner);
            if entry.owners.is_empty() {
                entry.merge(std::iter::empty());
            } else {
                self.merge_owners(&part.name, None);
            }
            if let Some(entry) = self.names.get(part.name.as_bytes()) {
                work.touched(&part.name, entry);
            }
            self.drop_if_unused(&part.name);
        }
    }

    /// Recomputes the records of `name` from every owner's part (two sources with one name:
    /// rare), `fresh` being one not yet in the sources' records.
    fn merge_owners(&mut self, name: &NameKey, fresh: Option<(&Owner, &Part)>) {
        let Some(owners) = self.names.get(name.as_bytes()).map(|e| e.owners.clone()) else {
            return;
        };
        let parts: Vec<Part> = owners
            .iter()
            .filter_map(|owner| match fresh {
                Some((fresh, part)) if fresh == owner => Some(part.clone()),
                _ => self.parts_of(owner).into_iter().find(|p| p.name == *name),
            })
            .collect();
        if let Some(entry) = self.names.get_mut(name.as_bytes()) {
            entry.merge(parts.iter());
        }
    }

    /// The entry of `name`, created (with the empty non-terminals above it) if missing.
    fn entry(&mut self, name: &NameKey) -> &mut NameRecords {
        if self.names.get(name.as_bytes()).is_none() {
            let mut below = name.as_bytes();
            while let Some(up) = parent(below).filter(|up| below_apex(&self.zones, up)) {
                if let Some(existing) = self.names.get_mut(up) {
                    existing.children += 1;
                    break;
                }
                self.names.insert(
                    NameKey::from_bytes(up),
                    NameRecords {
                        children: 1,
                        ..NameRecords::default()
                    },
                );
                below = up;
            }
        }
        self.names.get_or_default(name)
    }

    /// Removes `name` if nothing keeps it, and the names above that only it kept.
    fn drop_if_unused(&mut self, name: &NameKey) {
        let mut current = name.as_bytes().to_vec();
        loop {
            if !self
                .names
                .get(current.as_slice())
                .is_some_and(NameRecords::is_unused)
            {
                return;
            }
            self.names.remove(current.as_slice());
            let Some(up) = parent(&current).filter(|up| below_apex(&self.zones, up)) else {
                return;
            };
            let up = up.to_vec();
            if let Some(entry) = self.names.get_mut(up.as_slice()) {
                entry.children = entry.children.saturating_sub(1);
            }
            current = up;
        }
    }
}

/// Whether `key` is strictly inside a served zone (below its apex): where empty
/// non-terminals go.
fn below_apex(zones: &[ZoneRecords], key: &[u8]) -> bool {
    if zones.iter().any(|z| z.key.as_bytes() == key) {
        return false;
    }
    let mut up = parent(key);
    while let Some(name) = up {
        if zones.iter().any(|z| z.key.as_bytes() == name) {
            return true;
        }
        up = parent(name);
    }
    false
}
