//! The etcd store: allocations as keys under a prefix, two per allocation (host -> address
//! and address -> host), each claim a transaction that succeeds only if neither key exists,
//! so two replicas can never hand out one VIP twice. The same client runs the leader
//! election when the etcd store is used ([`crate::leader::etcd`]).

mod client;
mod store;
mod traffic;
mod watch;

pub use client::{EtcdClient, EtcdError, EtcdOptions, prefix_end};
pub use store::EtcdStore;
pub use traffic::{CallLabels, EtcdTraffic};
pub use watch::{Change, KeyWatch};

/// The generated etcd v3 messages and clients (a subset of etcd's API, `proto/etcdserverpb`).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("etcdserverpb");
}
