//! Leader election, decided: given what was last read of the lease (a Kubernetes Lease or an
//! etcd key) and the local monotonic clock, whether to claim it, wait, or stop writing. The
//! edge reads and writes the lease and carries out the writes only while
//! [`Elector::leadership`] says so.
//!
//! Safety does not rest on synchronised clocks, only on clocks that run at about the same
//! rate (the assumption of Kubernetes' own leader election):
//! - a follower takes a lease over only after it has seen the same record, unchanged, for
//!   the lease's whole duration, counted from when it first read it;
//! - a leader's term lasts until `renew_deadline` after it *sent* its last successful claim,
//!   and `renew_deadline` is shorter than the lease duration.
//!
//! The record a follower reads was written after the leader sent it, so the follower's count
//! starts later than the leader's, and the leader stops writing `lease - renew_deadline`
//! before anyone else may start: that margin covers a write in flight when the term ends.

use std::time::{Duration, Instant};

/// A lease as read from its store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    /// Who holds it; `None` once released.
    pub holder: Option<String>,
    /// How long the holder's claim lasts after it was written, as the holder wrote it.
    pub duration: Duration,
    /// The holder's renewal stamp, opaque: compared only to notice a renewal.
    pub renewed: String,
    /// The term: how many times leadership changed hands.
    pub term: u64,
}

/// Timings of an election, checked to be safe (`retry < renew_deadline < lease`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElectionTiming {
    lease: Duration,
    renew_deadline: Duration,
    retry: Duration,
}

impl Default for ElectionTiming {
    /// Kubernetes' own defaults: a 15 s lease, renewed every 2 s, given up after 10 s
    /// without a successful renewal.
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry: Duration::from_secs(2),
        }
    }
}

/// Timings that would let two replicas write at once, or lose leadership between renewals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimingError {
    /// The renew deadline does not end before the lease.
    #[error(
        "the renew deadline ({renew_deadline:?}) must be shorter than the lease duration ({lease:?})"
    )]
    DeadlineNotBeforeLease {
        /// The lease duration.
        lease: Duration,
        /// The renew deadline.
        renew_deadline: Duration,
    },
    /// The retry period does not fit in the renew deadline.
    #[error(
        "the retry period ({retry:?}) must be shorter than the renew deadline ({renew_deadline:?})"
    )]
    RetryNotBeforeDeadline {
        /// The renew deadline.
        renew_deadline: Duration,
        /// The retry period.
        retry: Duration,
    },
}

impl ElectionTiming {
    /// Checked timings: `retry < renew_deadline < lease`.
    pub fn new(
        lease: Duration,
        renew_deadline: Duration,
        retry: Duration,
    ) -> Result<Self, TimingError> {
        if renew_deadline >= lease {
            return Err(TimingError::DeadlineNotBeforeLease {
                lease,
                renew_deadline,
            });
        }
        if retry >= renew_deadline || retry.is_zero() {
            return Err(TimingError::RetryNotBeforeDeadline {
                renew_deadline,
                retry,
            });
        }
        Ok(Self {
            lease,
            renew_deadline,
            retry,
        })
    }

    /// How long a claim lasts: followers wait this long after the last change they saw.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// How long after its last successful claim a leader stops writing.
    pub fn renew_deadline(&self) -> Duration {
        self.renew_deadline
    }

    /// How often a leader renews and a follower reads the lease.
    pub fn retry(&self) -> Duration {
        self.retry
    }
}

/// A leadership term held by this replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Term {
    /// The lease's term number.
    pub number: u64,
    /// Writes must not start at or after this instant unless the term is renewed.
    pub until: Instant,
}

/// What the edge should do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Write the lease as held by this replica, with this term number (the same when
    /// renewing, the next when taking over), conditional on the record last read.
    Claim {
        /// The term to write.
        term: u64,
    },
    /// Read the lease again at this instant.
    Wait {
        /// When.
        until: Instant,
    },
}

/// One replica's view of the election.
#[derive(Clone, Debug)]
pub struct Elector {
    identity: String,
    timing: ElectionTiming,
    /// The record last read, and when this replica first read it in that state.
    seen: Option<(LeaseRecord, Instant)>,
    /// This replica's term, while it holds one.
    leading: Option<Term>,
    /// When this replica last sent a claim.
    last_claim: Option<Instant>,
}

impl Elector {
    /// A replica called `identity` that holds no term yet.
    pub fn new(identity: impl Into<String>, timing: ElectionTiming) -> Self {
        Self {
            identity: identity.into(),
            timing,
            seen: None,
            leading: None,
            last_claim: None,
        }
    }

    /// This replica's name in the lease.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The timings.
    pub fn timing(&self) -> ElectionTiming {
        self.timing
    }

    /// The lease as read at `now` (`None`: there is no lease, or it was removed). A record
    /// naming another holder, or no record, ends this replica's term at once.
    pub fn observed(&mut self, record: Option<LeaseRecord>, now: Instant) {
        let Some(record) = record else {
            self.seen = None;
            self.leading = None;
            return;
        };
        if record.holder.as_deref() != Some(self.identity.as_str()) {
            self.leading = None;
        }
        let unchanged = self.seen.as_ref().is_some_and(|(old, _)| *old == record);
        if !unchanged {
            self.seen = Some((record, now));
        }
    }

    /// What to do at `now`.
    pub fn next(&self, now: Instant) -> Step {
        let Some((record, since)) = &self.seen else {
            return Step::Claim { term: 1 };
        };
        if let Some(term) = self.leading {
            // Renew every retry period while the term lasts.
            let due = self.last_claim.map_or(now, |at| at + self.timing.retry);
            if now >= due {
                return Step::Claim { term: term.number };
            }
            return Step::Wait { until: due };
        }
        if record.holder.as_deref().is_none_or(str::is_empty) {
            return Step::Claim {
                term: record.term + 1,
            };
        }
        // Held (by another replica, or in this one's name without a term here: a restart or
        // a hand edit). Taken over only once unchanged for a whole lease duration.
        let expires = *since + record.duration;
        if now >= expires {
            return Step::Claim {
                term: record.term + 1,
            };
        }
        Step::Wait {
            until: expires.min(now + self.timing.retry),
        }
    }

    /// Notes that a claim is being sent at `sent` (before the request goes out).
    pub fn claiming(&mut self, sent: Instant) {
        self.last_claim = Some(sent);
    }

    /// The claim sent at `sent` was stored as `record`: this replica leads until
    /// `sent + renew_deadline`.
    pub fn claimed(&mut self, record: LeaseRecord, sent: Instant) {
        self.leading = Some(Term {
            number: record.term,
            until: sent + self.timing.renew_deadline,
        });
        self.seen = Some((record, sent));
    }

    /// A claim failed (a conflict or an unreachable store): the term, if any, runs out on its
    /// own at its deadline; nothing extends it.
    pub fn claim_failed(&mut self, now: Instant) {
        if self.leading.is_some_and(|t| now >= t.until) {
            self.leading = None;
        }
    }

    /// This replica gives its term up (shutting down).
    pub fn resign(&mut self) {
        self.leading = None;
    }

    /// The term this replica holds at `now`: writes may start only while this is `Some`.
    pub fn leadership(&self, now: Instant) -> Option<Term> {
        self.leading.filter(|t| now < t.until)
    }
}

#[cfg(test)]
#[path = "election_tests.rs"]
mod tests;
