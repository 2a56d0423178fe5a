//! The writers' side of leader election: whether this replica may start a write now.

use std::time::Instant;

use tokio::sync::watch;

use federator_core::planner::election::Term;

/// Whether this replica may write, read by every writer before each write. Time-based: a
/// term ends at its deadline whether or not anyone told the writers, so a replica whose
/// renewals stall stops writing on its own.
#[derive(Clone, Debug)]
pub struct Fence(watch::Receiver<Option<Term>>);

impl Fence {
    /// A fence that follows the terms published on `terms`.
    pub fn new(terms: watch::Receiver<Option<Term>>) -> Self {
        Self(terms)
    }

    /// The term this replica holds now, if any.
    pub fn term(&self) -> Option<Term> {
        self.0.borrow().filter(|t| Instant::now() < t.until)
    }

    /// Whether a write may start now.
    pub fn may_write(&self) -> bool {
        self.term().is_some()
    }

    /// Waits until this replica leads; `false` when the election is gone (shutting down).
    pub async fn leading(&mut self) -> bool {
        loop {
            if self.may_write() {
                return true;
            }
            if self.0.changed().await.is_err() {
                return false;
            }
        }
    }

    /// Completes when this replica's term ends (its deadline passes unrenewed, or it is
    /// given up); pending forever once the election is gone.
    pub async fn lost(&mut self) {
        loop {
            let Some(until) = self.term().map(|t| t.until) else {
                return;
            };
            tokio::select! {
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(until)) => {}
                changed = self.0.changed() => {
                    if changed.is_err() {
                        return std::future::pending().await;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_term_ends_at_its_deadline_without_any_message() {
        let (tx, rx) = watch::channel(None);
        let mut fence = Fence::new(rx);
        assert!(!fence.may_write());
        tx.send_replace(Some(Term {
            number: 4,
            until: Instant::now() + Duration::from_millis(200),
        }));
        assert!(fence.leading().await);
        assert_eq!(fence.term().map(|t| t.number), Some(4));
        fence.lost().await;
        assert!(
            !fence.may_write(),
            "the deadline passed: no write may start"
        );
    }
}
