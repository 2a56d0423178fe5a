//! Work for one cluster's writer: which hosts to re-render, or everything. Pushes coalesce,
//! so a burst of changes becomes one pass, and a slow cluster only ever has one pass queued.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::Notify;

use crate::model::Host;

/// Pending work.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Work {
    /// Hosts to reconcile.
    pub hosts: BTreeSet<Host>,
    /// Reconcile everything (and collect garbage).
    pub full: bool,
    /// When the oldest watch event behind this work arrived.
    pub since: Option<Instant>,
}

impl Work {
    fn merge(&mut self, other: Work) {
        self.hosts.extend(other.hosts);
        self.full |= other.full;
        self.since = match (self.since, other.since) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    fn is_empty(&self) -> bool {
        self.hosts.is_empty() && !self.full
    }
}

/// A coalescing queue with one consumer.
#[derive(Debug, Default)]
pub struct WorkQueue {
    pending: Mutex<Work>,
    notify: Notify,
}

impl WorkQueue {
    /// Adds work.
    pub fn push(&self, work: Work) {
        if work.is_empty() {
            return;
        }
        match self.pending.lock() {
            Ok(mut pending) => pending.merge(work),
            Err(poisoned) => poisoned.into_inner().merge(work),
        }
        self.notify.notify_one();
    }

    /// Takes everything pending, waiting until there is something.
    pub async fn next(&self) -> Work {
        loop {
            let work = match self.pending.lock() {
                Ok(mut pending) => std::mem::take(&mut *pending),
                Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
            };
            if !work.is_empty() {
                return work;
            }
            self.notify.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pushes_coalesce_into_one_pass() {
        let q = WorkQueue::default();
        let h = |s: &str| Host::build("prod", s, "global").unwrap();
        let t0 = Instant::now();
        q.push(Work {
            hosts: [h("a")].into(),
            full: false,
            since: Some(t0 + std::time::Duration::from_millis(5)),
        });
        q.push(Work {
            hosts: [h("b")].into(),
            full: false,
            since: Some(t0),
        });
        q.push(Work::default());
        let work = q.next().await;
        assert_eq!(work.hosts.len(), 2);
        assert_eq!(work.since, Some(t0), "the oldest event counts");
        q.push(Work {
            full: true,
            ..Work::default()
        });
        assert!(q.next().await.full);
    }
}
