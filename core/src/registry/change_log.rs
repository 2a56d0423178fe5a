//! Which hosts each of the last publications changed: the history a reader that lost touch
//! (a gRPC `Watch` client reconnecting) resumes from, instead of reading everything again.
//!
//! Bounded: past [`RegistryConfig::change_history`](super::RegistryConfig) publications the
//! oldest are forgotten, and a reader older than what is left starts from a full snapshot.

use std::collections::BTreeSet;
use std::sync::Arc;

use imbl::Vector;

use crate::model::Host;

/// Most hosts remembered per entry of history on average: a publication that withdraws a
/// whole large cluster must not pin thousands of names per entry for every entry kept.
const HOSTS_PER_ENTRY: usize = 64;

/// The hosts changed by each recent publication that changed any, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct ChangeLog {
    entries: Vector<(u64, Arc<[Host]>)>,
    /// Hosts over all entries.
    hosts: usize,
}

/// What changed since a reader's generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Since {
    /// Nothing: the reader is current.
    Nothing,
    /// These hosts changed (each is now as the view has it, or gone).
    Hosts(BTreeSet<Host>),
    /// The history does not reach back that far (or the generation is not from this
    /// history): the reader must start again from a full snapshot.
    TooOld,
}

impl ChangeLog {
    /// Records that `generation` changed `hosts`, keeping at most `capacity` entries and
    /// [`HOSTS_PER_ENTRY`] times as many hosts (the oldest go first; 0 keeps nothing).
    pub(super) fn record(&mut self, generation: u64, hosts: Vec<Host>, capacity: usize) {
        self.hosts += hosts.len();
        self.entries.push_back((generation, hosts.into()));
        let most_hosts = capacity.saturating_mul(HOSTS_PER_ENTRY);
        while self.entries.len() > capacity || self.hosts > most_hosts {
            let Some((_, gone)) = self.entries.pop_front() else {
                break;
            };
            self.hosts -= gone.len();
        }
    }

    /// What changed after `generation`, the view being at `current`.
    pub(super) fn since(&self, generation: u64, current: u64) -> Since {
        if generation == current {
            return Since::Nothing;
        }
        if generation > current {
            return Since::TooOld;
        }
        // Every generation after the reader's must still be recorded.
        let oldest = self.entries.front().map_or(current + 1, |(g, _)| *g);
        if generation + 1 < oldest {
            return Since::TooOld;
        }
        Since::Hosts(
            self.entries
                .iter()
                .filter(|(g, _)| *g > generation)
                .flat_map(|(_, hosts)| hosts.iter().cloned())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(identity: &str) -> Host {
        Host::build("prod", identity, "global").unwrap()
    }

    #[test]
    fn readers_get_what_changed_after_them_or_start_again() {
        let mut log = ChangeLog::default();
        log.record(1, vec![host("a")], 2);
        log.record(2, vec![host("b")], 2);
        assert_eq!(log.since(2, 2), Since::Nothing);
        assert_eq!(log.since(1, 2), Since::Hosts([host("b")].into()));
        assert_eq!(log.since(0, 2), Since::Hosts([host("a"), host("b")].into()));
        log.record(3, vec![host("a"), host("c")], 2);
        // Generation 1 fell out: a reader at 0 missed it.
        assert_eq!(log.since(0, 3), Since::TooOld);
        assert_eq!(
            log.since(1, 3),
            Since::Hosts([host("a"), host("b"), host("c")].into())
        );
        // A generation from another history (a restarted process) is never trusted.
        assert_eq!(log.since(9, 3), Since::TooOld);
    }

    #[test]
    fn history_is_bounded_in_hosts_too() {
        let mut log = ChangeLog::default();
        let many: Vec<Host> = (0..HOSTS_PER_ENTRY * 2)
            .map(|i| host(&format!("h{i}")))
            .collect();
        log.record(1, vec![host("a")], 2);
        log.record(2, many, 2);
        // Two entries are allowed, but not 2 x 64 + 1 hosts: the oldest goes.
        assert_eq!(log.since(0, 2), Since::TooOld);
        assert!(matches!(log.since(1, 2), Since::Hosts(h) if h.len() == HOSTS_PER_ENTRY * 2));
        let mut none = ChangeLog::default();
        none.record(1, vec![host("a")], 0);
        assert_eq!(none.since(0, 1), Since::TooOld, "capacity 0 keeps nothing");
    }

    #[test]
    fn an_empty_history_only_serves_current_readers() {
        let log = ChangeLog::default();
        assert_eq!(log.since(0, 0), Since::Nothing);
        assert_eq!(log.since(0, 1), Since::TooOld);
    }
}
