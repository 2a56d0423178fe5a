//! Leader election: several replicas watch every cluster and keep warm registries; only the
//! one holding the lease writes. The decisions are pure
//! ([`federator_core::planner::election`]); this module reads and writes the lease (a
//! `coordination.k8s.io` Lease, [`lease`]) and publishes the term to the writers' [`Fence`].

mod elect;
pub mod etcd;
mod fence;
pub mod lease;

use std::future::Future;

pub use elect::{ElectionOptions, elect};
pub use federator_core::planner::election::{ElectionTiming, LeaseRecord, Term};
pub use fence::Fence;

/// Why the lease could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("lease {lease}: {reason}")]
pub struct LeaseError {
    /// Which lease (namespace/name, or the etcd key).
    pub lease: String,
    /// What went wrong, credential-free.
    pub reason: String,
}

/// Where the lease lives: reads it and writes it conditionally on the version last read.
pub trait LeaseStore: Send + 'static {
    /// The lease as stored now (`None`: there is none yet).
    fn read(&mut self) -> impl Future<Output = Result<Option<LeaseRecord>, LeaseError>> + Send;

    /// Writes `record` if the lease is still as last read; the record as stored, or `None`
    /// when someone else changed it first.
    fn claim(
        &mut self,
        record: &LeaseRecord,
    ) -> impl Future<Output = Result<Option<LeaseRecord>, LeaseError>> + Send;

    /// Clears the holder, if the lease is still as this replica last wrote it, so the next
    /// replica takes over at once instead of after a lease duration.
    fn release(&mut self) -> impl Future<Output = Result<(), LeaseError>> + Send;

    /// Where the lease is, for logs.
    fn describe(&self) -> String;
}

/// The term of a process that runs without an election (the only writer): it never ends.
pub fn sole_writer_term() -> Term {
    // Ten years: an Instant that far ahead stays representable on every platform.
    Term {
        number: 0,
        until: std::time::Instant::now() + std::time::Duration::from_secs(10 * 365 * 24 * 3600),
    }
}

/// Starts the election `election` describes: on the etcd store's etcd when that is the
/// store, else on a Lease in federator's namespace of the config cluster.
pub fn spawn(
    election: &ElectionOptions,
    run: &crate::runtime::RunOptions,
    config: &kube::Client,
    terms: tokio::sync::watch::Sender<Option<Term>>,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, LeaseError> {
    let election = election.clone();
    Ok(match &run.store {
        crate::state::StoreOptions::Etcd(etcd) => {
            let lease = etcd::EtcdLease::new(etcd, election.timing.lease())?;
            tokio::spawn(elect(lease, election, terms, metrics, stop))
        }
        crate::state::StoreOptions::Embedded { .. } => {
            let lease = lease::KubeLease::new(config.clone(), &run.namespace, &election.lease_name);
            tokio::spawn(elect(lease, election, terms, metrics, stop))
        }
    })
}
