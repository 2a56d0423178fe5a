//! DNS authority for federator's global zones.
//!
//! Answers the zones federator owns (default `global.`) and nothing else: it is never a
//! recursive or open resolver, and it does no zone transfers. Answers come from an immutable
//! [`Snapshot`] of the registry, precomputed per name and swapped atomically on change, so
//! a query never waits for a writer and does no work beyond a map lookup.
//!
//! [`answer`] is the pure decision; [`DnsHandler`] puts it behind hickory-server for UDP and
//! TCP.

#![forbid(unsafe_code)]

mod answer;
mod handler;
mod metrics;
mod snapshot;
mod zone;

pub use answer::{Answer, answer};
pub use handler::{DnsHandler, SnapshotHandle, Sockets, bind, serve};
pub use metrics::DnsMetrics;
pub use snapshot::{HostRecord, Snapshot, SnapshotConfig, SnapshotError};
pub use zone::{Zone, ZoneError};
