//! The election loop: reads the lease, asks the elector what to do, claims or waits, and
//! publishes the term this replica holds.

use std::time::Instant;

use tokio::sync::watch;
use tracing::{info, warn};

use super::{LeaseError, LeaseRecord, LeaseStore, Term};
use crate::metrics::Metrics;
use federator_core::planner::election::{ElectionTiming, Elector, Step};

/// How long a leader that gives its lease up waits, after closing its writers' fence, for a
/// write already sent to land.
const IN_FLIGHT_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// How this replica takes part in the election.
#[derive(Clone, Debug)]
pub struct ElectionOptions {
    /// This replica's name in the lease (unique per process: the pod name and a random
    /// suffix).
    pub identity: String,
    /// Name of the Lease object in federator's namespace.
    pub lease_name: String,
    /// Lease duration, renew deadline and retry period.
    pub timing: ElectionTiming,
}

/// Runs the election until `stop` turns true, publishing this replica's term on `terms`;
/// then gives the lease up if it held it.
pub async fn elect(
    mut store: impl LeaseStore,
    options: ElectionOptions,
    terms: watch::Sender<Option<Term>>,
    metrics: std::sync::Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let timing = options.timing;
    let mut elector = Elector::new(options.identity.clone(), timing);
    let lease = store.describe();
    info!(
        lease,
        identity = options.identity,
        "taking part in leader election"
    );
    loop {
        let read = bounded(&lease, timing, store.read()).await;
        // Taken after the answer: the record read was written before this instant, so a
        // follower's count never starts before the leader's renewal.
        let now = Instant::now();
        let pause = match read {
            Ok(record) => {
                elector.observed(record, now);
                match elector.next(Instant::now()) {
                    // Read again at once after a claim that succeeded (the elector then
                    // says when to renew); a refused or failed one waits a retry period.
                    Step::Claim { term } => (!claim(&mut store, &mut elector, term, &lease).await)
                        .then(|| Instant::now() + timing.retry()),
                    Step::Wait { until } => Some(until),
                }
            }
            Err(err) => {
                warn!(error = %err, "cannot read the lease; retrying");
                elector.claim_failed(now);
                Some(now + timing.retry())
            }
        };
        publish(&elector, &terms, &metrics, &lease);
        if let Some(until) = pause {
            tokio::select! {
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(until)) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        if *stop.borrow() {
            break;
        }
    }
    let held = elector.leadership(Instant::now()).is_some();
    elector.resign();
    publish(&elector, &terms, &metrics, &lease);
    if held {
        // The writers are stopped and the fence is closed; a request already on the wire
        // lands before the next leader may start.
        tokio::time::sleep(IN_FLIGHT_GRACE).await;
        match bounded(&lease, timing, store.release()).await {
            Ok(()) => info!(lease, "lease released"),
            Err(err) => {
                warn!(error = %err, "cannot release the lease; the next leader waits for it to expire")
            }
        }
    }
}

/// Sends one claim and notes its outcome; whether it succeeded.
async fn claim(store: &mut impl LeaseStore, elector: &mut Elector, term: u64, lease: &str) -> bool {
    let sent = Instant::now();
    elector.claiming(sent);
    let record = LeaseRecord {
        holder: Some(elector.identity().to_owned()),
        duration: elector.timing().lease(),
        renewed: String::new(),
        term,
    };
    match bounded(lease, elector.timing(), store.claim(&record)).await {
        Ok(Some(stored)) => {
            elector.claimed(stored, sent);
            true
        }
        Ok(None) => {
            elector.claim_failed(Instant::now());
            false
        }
        Err(err) => {
            warn!(error = %err, term, "cannot write the lease");
            elector.claim_failed(Instant::now());
            false
        }
    }
}

/// A request to the lease's store, given up after one retry period (a hung store must not
/// hold the loop past the term's deadline).
async fn bounded<T>(
    lease: &str,
    timing: ElectionTiming,
    request: impl std::future::Future<Output = Result<T, LeaseError>>,
) -> Result<T, LeaseError> {
    match tokio::time::timeout(timing.retry(), request).await {
        Ok(result) => result,
        Err(_) => Err(LeaseError {
            lease: lease.to_owned(),
            reason: format!("no answer within {:?}", timing.retry()),
        }),
    }
}

/// Tells the writers (and the metrics and logs) about a change of term.
fn publish(elector: &Elector, terms: &watch::Sender<Option<Term>>, metrics: &Metrics, lease: &str) {
    let now = elector.leadership(Instant::now());
    terms.send_if_modified(|current| {
        if *current == now {
            return false;
        }
        match (current.map(|t| t.number), now.map(|t| t.number)) {
            (None, Some(term)) => info!(lease, term, "leading: this replica writes"),
            (Some(term), None) => warn!(lease, term, "no longer leading: writes stop"),
            (Some(old), Some(new)) if old != new => info!(lease, term = new, "leading a new term"),
            _ => {}
        }
        *current = now;
        true
    });
    metrics.leader.set(i64::from(now.is_some()));
    if let Some(term) = now {
        metrics
            .leader_term
            .set(i64::try_from(term.number).unwrap_or(i64::MAX));
    }
}
