//! Objects the API server refused, each resting for its own backoff: one name an admission
//! policy rejects must not stall the writes of its whole cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

use super::plan::Key;
use crate::model::Host;

/// First and longest rest of a refused object.
const FIRST_REST: Duration = Duration::from_secs(1);
const LONGEST_REST: Duration = Duration::from_secs(300);

struct Resting {
    until: Instant,
    backoff: ExponentialBackoff,
    host: Option<Host>,
}

/// The refused objects of one cluster.
#[derive(Default)]
pub(super) struct Rejections {
    resting: BTreeMap<Key, Resting>,
}

impl Rejections {
    /// `key` was refused at `now`: it rests, longer each time in a row. Returns how long.
    pub(super) fn refused(&mut self, key: &Key, host: Option<Host>, now: Instant) -> Duration {
        let entry = self.resting.entry(key.clone()).or_insert_with(|| Resting {
            until: now,
            backoff: ExponentialBuilder::default()
                .with_min_delay(FIRST_REST)
                .with_max_delay(LONGEST_REST)
                .with_jitter()
                .without_max_times()
                .build(),
            host,
        });
        let rest = entry.backoff.next().unwrap_or(LONGEST_REST);
        entry.until = now + rest;
        rest
    }

    /// `key` was written (or is no longer wanted): it rests no more.
    pub(super) fn cleared(&mut self, key: &Key) -> bool {
        self.resting.remove(key).is_some()
    }

    /// Forgets the objects `keep` says no.
    pub(super) fn retain(&mut self, keep: impl Fn(&Key) -> bool) {
        self.resting.retain(|k, _| keep(k));
    }

    /// Keys still resting at `now`.
    pub(super) fn resting(&self, now: Instant) -> BTreeSet<Key> {
        self.resting
            .iter()
            .filter(|(_, r)| r.until > now)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// When the next rest ends after `now`.
    pub(super) fn next_wake(&self, now: Instant) -> Option<Instant> {
        self.resting
            .values()
            .map(|r| r.until)
            .filter(|t| *t > now)
            .min()
    }

    /// The hosts whose rest has ended at `now` (`None`: an object without host, such as the
    /// gateway, which needs a full pass).
    pub(super) fn due(&self, now: Instant) -> Vec<Option<Host>> {
        self.resting
            .values()
            .filter(|r| r.until <= now)
            .map(|r| r.host.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::plan::Kind;

    #[test]
    fn a_refused_object_rests_longer_each_time_and_is_released_when_written() {
        let mut r = Rejections::default();
        let key = (Kind::ServiceEntry, "prod.a.global".to_owned());
        let t0 = Instant::now();
        let first = r.refused(&key, None, t0);
        assert!(r.resting(t0).contains(&key));
        assert!(r.resting(t0 + first + Duration::from_millis(1)).is_empty());
        assert_eq!(r.due(t0 + first), [None]);
        let mut longest = first;
        for _ in 0..6 {
            longest = longest.max(r.refused(&key, None, t0));
        }
        assert!(longest > first, "backs off");
        assert!(
            longest <= LONGEST_REST * 2,
            "capped (jitter at most doubles)"
        );
        assert!(r.cleared(&key));
        assert!(r.resting(t0).is_empty());
        assert_eq!(r.next_wake(t0), None);
    }
}
