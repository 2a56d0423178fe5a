//! The election loop: reads the lease, asks the elector what to do, claims or waits, and
//! publishes the term this replica holds.

use std::time::Instant;

use tokio::sync::watch;
use tracing::{info, warn};

use super::{LeaseError, LeaseRecord, LeaseStore, Term};
use crate::metrics::Metrics;
use federator_core::planner::election::{ElectionTiming, Elector, Step};

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
        let now = Instant::now();
        match bounded(timing, store.read()).await {
            Ok(record) => {
                elector.observed(record, now);
                match elector.next(Instant::now()) {
                    Step::Claim { term } => claim(&mut store, &mut elector, term).await,
                    Step::Wait { until } => {
                        publish(&elector, &terms, &metrics, &lease);
                        let wake = tokio::time::Instant::from_std(until);
                        tokio::select! {
                            () = tokio::time::sleep_until(wake) => {}
                            _ = stop.wait_for(|s| *s) => break,
                        }
                    }
                }
            }
            Err(err) => {
                warn!(error = %err, "cannot read the lease; retrying");
                elector.claim_failed(Instant::now());
                publish(&elector, &terms, &metrics, &lease);
                tokio::select! {
                    () = tokio::time::sleep(timing.retry()) => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
        }
        publish(&elector, &terms, &metrics, &lease);
        if *stop.borrow() {
            break;
        }
    }
    let held = elector.leadership(Instant::now()).is_some();
    elector.resign();
    publish(&elector, &terms, &metrics, &lease);
    if held {
        match bounded(timing, store.release()).await {
            Ok(()) => info!(lease, "lease released"),
            Err(err) => {
                warn!(error = %err, "cannot release the lease; the next leader waits for it to expire")
            }
        }
    }
}

/// Sends one claim and notes its outcome.
async fn claim(store: &mut impl LeaseStore, elector: &mut Elector, term: u64) {
    let sent = Instant::now();
    elector.claiming(sent);
    let record = LeaseRecord {
        holder: Some(elector.identity().to_owned()),
        duration: elector.timing().lease(),
        renewed: String::new(),
        term,
    };
    match bounded(elector.timing(), store.claim(&record)).await {
        Ok(Some(stored)) => elector.claimed(stored, sent),
        Ok(None) => elector.claim_failed(Instant::now()),
        Err(err) => {
            warn!(error = %err, term, "cannot write the lease");
            elector.claim_failed(Instant::now());
        }
    }
}

/// A request to the lease's store, given up after one retry period (a hung store must not
/// hold the loop past the term's deadline).
async fn bounded<T>(
    timing: ElectionTiming,
    request: impl std::future::Future<Output = Result<T, LeaseError>>,
) -> Result<T, LeaseError> {
    match tokio::time::timeout(timing.retry(), request).await {
        Ok(result) => result,
        Err(_) => Err(LeaseError {
            lease: String::new(),
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
