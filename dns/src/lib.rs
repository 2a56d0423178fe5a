//! DNS authority for federator's global zones.
//!
//! Answers the zones federator owns (default `global.`) and nothing else: it is never a
//! recursive or open resolver, and it does no zone transfers. Besides federator's global
//! hosts ([`HostRecord`]) it answers the Kubernetes Multicluster Services records of exported
//! services ([`ClustersetRecord`], under `clusterset.local.`). Answers come from an immutable
//! [`Snapshot`] of the registry, precomputed per name and swapped atomically on change, so
//! a query never waits for a writer and does no work beyond a map lookup. A registry change
//! becomes a [`Snapshot::update`] that copies only the names it touches.
//!
//! [`answer`] is the pure decision; [`DnsHandler`] puts it behind hickory-server's request
//! handling, and [`serve`] runs our own UDP and TCP loops around it. Over UDP the common
//! query (one question for a name and type with records, at most a bare EDNS record) is
//! answered from wire-format answers precomputed with the snapshot, the same bytes hickory
//! would send; everything else goes through hickory. The loops add a cap on TCP
//! connections and an idle timeout ([`ServeOptions`]), backoff on accept errors, and every
//! answer or dropped message counted in [`DnsMetrics`]. Until the registry is read,
//! [`Snapshot::starting`] answers SERVFAIL rather than a negative answer clients would cache.

#![forbid(unsafe_code)]

mod answer;
mod clusterset;
mod fast;
mod handler;
mod metrics;
mod names;
mod server;
mod sharded;
mod snapshot;
mod sources;
mod zone;

pub use answer::{Answer, answer};
pub use clusterset::{ClustersetMember, ClustersetRecord, SrvPort};
pub use handler::{DnsHandler, SnapshotHandle};
pub use metrics::{DnsMetrics, DropLabels, QueryLabels};
pub use server::{ServeOptions, Sockets, bind, serve};
pub use snapshot::{Change, HostRecord, Snapshot, SnapshotConfig, SnapshotError};
pub use zone::{Zone, ZoneError};
