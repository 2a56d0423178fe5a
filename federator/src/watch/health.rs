//! Whether a watched kind is degraded: its list or watch keeps failing, so its objects in the
//! registry are frozen while the cluster otherwise looks fine.
//!
//! kube-runtime retries a failed list or watch forever: a failed list about once a second
//! (each new list is announced by an Init event, which resets the watcher's backoff), a
//! failed watch after 0.8 s doubling up to 30 s, plus a random jitter of up to as much again
//! (so at most 60 s between attempts). One failure means little: a watch the API server ends
//! (a restart, an expired resource version) fails once and the next attempt succeeds. A 403
//! (the credentials lack RBAC on that kind) or a broken conversion fails every attempt. So a
//! kind is degraded once
//!
//! - it failed at least [`MIN_FAILURES`] times in a row (one restart of the API server makes
//!   one or two failures), and
//! - the failures have lasted [`DEGRADED_AFTER`] (a rolling restart of the API servers fails
//!   attempts for some seconds), each within [`QUIET`] of the one before.
//!
//! A persistent failure therefore shows after 30 s (a list) to 80 s (a watch). The kind is
//! healthy again on its first object or completed list (the Init that merely announces a
//! list does not count), or once no attempt has failed for [`QUIET`]: a watch that resumes
//! from its resource version delivers nothing until something changes, so on a quiet kind
//! the absence of failures is the only sign of recovery, and a failing kind fails again well
//! within `QUIET`.
//!
//! Pure and clock-free: the caller passes `now`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Failures in a row before a kind can be degraded.
pub const MIN_FAILURES: u32 = 3;

/// How long failures must last before a kind is degraded.
pub const DEGRADED_AFTER: Duration = Duration::from_secs(30);

/// Time without a failure after which the failures are over: longer than kube-runtime's
/// longest wait between attempts (60 s) plus the failing attempt itself.
pub const QUIET: Duration = Duration::from_secs(90);

/// A change of a kind's health, to report once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The kind's failures persist; the reason is the last failure's.
    Degraded(String),
    /// The kind is read again.
    Recovered,
}

/// The failures of one kind since its last success.
#[derive(Debug, Clone)]
struct Failures {
    first: Instant,
    last: Instant,
    count: u32,
    reason: String,
}

/// The health of one watched kind, fed with the outcome of each list or watch attempt.
#[derive(Debug, Clone, Default)]
pub struct KindHealth {
    failures: Option<Failures>,
    degraded: bool,
}

impl KindHealth {
    /// Records an event or list of the kind (`Ok`), or a failed attempt and why (in words
    /// safe to show anyone: see `connect::describe`); returns the change it made, if any.
    pub fn observe(&mut self, outcome: Result<(), String>, now: Instant) -> Option<Transition> {
        let reason = match outcome {
            Ok(()) => {
                self.failures = None;
                return self.recover();
            }
            Err(reason) => reason,
        };
        // Failures that stopped for QUIET are over, whether or not a tick saw it.
        let ended = self.tick(now);
        let failures = self.failures.get_or_insert_with(|| Failures {
            first: now,
            last: now,
            count: 0,
            reason: String::new(),
        });
        failures.count += 1;
        failures.last = now;
        failures.reason = reason;
        if !self.degraded
            && failures.count >= MIN_FAILURES
            && now.saturating_duration_since(failures.first) >= DEGRADED_AFTER
        {
            self.degraded = true;
            return Some(Transition::Degraded(failures.reason.clone()));
        }
        ended
    }

    /// Time passes with no news: failures that stopped for [`QUIET`] are over.
    pub fn tick(&mut self, now: Instant) -> Option<Transition> {
        let over = self
            .failures
            .as_ref()
            .is_some_and(|f| now.saturating_duration_since(f.last) > QUIET);
        if over {
            self.failures = None;
            return self.recover();
        }
        None
    }

    /// Why the kind is degraded; `None` while it is healthy.
    pub fn degraded(&self) -> Option<&str> {
        match &self.failures {
            Some(f) if self.degraded => Some(&f.reason),
            _ => None,
        }
    }

    fn recover(&mut self) -> Option<Transition> {
        std::mem::take(&mut self.degraded).then_some(Transition::Recovered)
    }
}

/// What one cluster's watch reports about the kinds it reads: every kind, with the reason
/// when it is degraded. The runtime turns it into Events, a gauge and `/readyz` detail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchHealth {
    /// Every watched kind by API kind name (`EndpointSlice`), and why it is degraded.
    pub kinds: BTreeMap<&'static str, Option<String>>,
}

impl WatchHealth {
    /// The degraded kinds and why.
    pub fn degraded(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.kinds
            .iter()
            .filter_map(|(kind, reason)| Some((*kind, reason.as_deref()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORBIDDEN: &str = "list forbidden (403)";

    fn failed() -> Result<(), String> {
        Err(FORBIDDEN.into())
    }

    fn at(t0: Instant, secs: u64) -> Instant {
        t0 + Duration::from_secs(secs)
    }

    /// kube-runtime's attempts for a persistent failure (without jitter): 0, 0.8, 2.4, 5.6,
    /// 12, 24.8, 50.4 s.
    fn persistent(h: &mut KindHealth, t0: Instant) -> Vec<(u64, Option<Transition>)> {
        [0, 1, 2, 6, 12, 25, 50]
            .into_iter()
            .map(|s| (s, h.observe(failed(), at(t0, s))))
            .filter(|(_, t)| t.is_some())
            .collect()
    }

    #[test]
    fn a_persistent_failure_degrades_once_with_its_reason() {
        let t0 = Instant::now();
        let mut h = KindHealth::default();
        let transitions = persistent(&mut h, t0);
        assert_eq!(
            transitions,
            [(50, Some(Transition::Degraded(FORBIDDEN.into())))]
        );
        assert_eq!(h.degraded(), Some(FORBIDDEN));
        // Further failures change nothing but the reason.
        assert_eq!(h.observe(Err("watch failed".into()), at(t0, 80)), None);
        assert_eq!(h.degraded(), Some("watch failed"));
    }

    #[test]
    fn the_first_success_recovers_a_degraded_kind() {
        let t0 = Instant::now();
        let mut h = KindHealth::default();
        persistent(&mut h, t0);
        assert_eq!(h.observe(Ok(()), at(t0, 60)), Some(Transition::Recovered));
        assert_eq!(h.degraded(), None);
        assert_eq!(h.observe(Ok(()), at(t0, 61)), None, "reported once");
        // A new run of failures starts from nothing.
        assert_eq!(h.observe(failed(), at(t0, 62)), None);
        assert_eq!(h.degraded(), None);
    }

    #[test]
    fn a_single_failure_or_a_short_burst_is_not_degraded() {
        let t0 = Instant::now();
        let mut h = KindHealth::default();
        // An API server restart: three quick failures, then the watch resumes silently.
        for s in [0, 1, 2] {
            assert_eq!(h.observe(failed(), at(t0, s)), None);
        }
        assert_eq!(h.tick(at(t0, 60)), None);
        assert_eq!(h.degraded(), None);
        // Long after, one more failure starts a new run instead of extending the old one.
        assert_eq!(h.observe(failed(), at(t0, 300)), None);
        assert_eq!(h.degraded(), None);
    }

    #[test]
    fn two_failures_spanning_the_threshold_are_not_enough() {
        let t0 = Instant::now();
        let mut h = KindHealth::default();
        assert_eq!(h.observe(failed(), at(t0, 0)), None);
        assert_eq!(h.observe(failed(), at(t0, 40)), None);
        assert_eq!(
            h.observe(failed(), at(t0, 41)),
            Some(Transition::Degraded(FORBIDDEN.into()))
        );
    }

    #[test]
    fn many_failures_within_the_threshold_are_not_enough() {
        let t0 = Instant::now();
        let mut h = KindHealth::default();
        for s in 0..DEGRADED_AFTER.as_secs() {
            assert_eq!(h.observe(failed(), at(t0, s)), None, "at {s} s");
        }
    }

    #[test]
    fn a_degraded_kind_that_stops_failing_recovers_after_the_quiet_period() {
        let t0 = Instant::now();
        let mut h = KindHealth::default();
        persistent(&mut h, t0);
        // The watch resumed without news: still degraded within QUIET of the last failure.
        assert_eq!(h.tick(at(t0, 50 + QUIET.as_secs())), None);
        assert_eq!(h.degraded(), Some(FORBIDDEN));
        assert_eq!(
            h.tick(at(t0, 51 + QUIET.as_secs())),
            Some(Transition::Recovered)
        );
        assert_eq!(h.tick(at(t0, 52 + QUIET.as_secs())), None, "reported once");
    }

    #[test]
    fn a_failure_after_the_quiet_period_ends_the_old_failures_first() {
        let t0 = Instant::now();
        let mut h = KindHealth::default();
        persistent(&mut h, t0);
        // No tick ran in between: the late failure reports the recovery and starts afresh.
        let late = at(t0, 51 + QUIET.as_secs());
        assert_eq!(h.observe(failed(), late), Some(Transition::Recovered));
        assert_eq!(h.degraded(), None);
    }

    #[test]
    fn failures_within_the_quiet_period_keep_a_kind_degraded() {
        let t0 = Instant::now();
        let mut h = KindHealth::default();
        persistent(&mut h, t0);
        let mut s = 50;
        for _ in 0..10 {
            s += 60;
            assert_eq!(h.tick(at(t0, s)), None);
            assert_eq!(h.observe(failed(), at(t0, s)), None);
        }
        assert_eq!(h.degraded(), Some(FORBIDDEN));
    }

    #[test]
    fn the_report_lists_degraded_kinds_only() {
        let health = WatchHealth {
            kinds: BTreeMap::from([
                ("EndpointSlice", Some(FORBIDDEN.to_owned())),
                ("Service", None),
            ]),
        };
        assert_eq!(
            health.degraded().collect::<Vec<_>>(),
            [("EndpointSlice", FORBIDDEN)]
        );
    }
}
