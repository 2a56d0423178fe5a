//! federator: multi-cluster service discovery for Istio meshes.
//!
//! Data flows one way: cluster objects are turned into typed deltas ([`ingest`]), folded into
//! the global [`registry`], [`render`]ed into the Istio objects each cluster receives and
//! exported as [`dns`] answers. The registry, render and DNS answers are pure; the model,
//! registry, render and the write decisions live in the `federator-core` crate (re-exported
//! here under their old paths), which cannot reach kube or tokio. This crate is the edge that
//! does the I/O: [`offline`] reads snapshot folders, [`clusters`] turns Secrets into clusters,
//! [`watch`] streams their objects, [`sync`] writes to them, and [`runtime`] wires the live
//! controller together.

pub mod access;
pub mod api;
pub mod clusters;
pub mod config;
pub mod connect;
pub mod crd;
pub mod dns;
pub mod events;
pub mod ingest;
pub mod istio;
pub mod leader;
pub mod memory;
pub mod metrics;
pub mod offline;
pub mod runtime;
pub mod shard;
pub mod state;
pub mod sync;
pub mod upstream;
pub mod watch;

#[cfg(any(test, feature = "fixtures"))]
pub use federator_core::fixtures;
pub use federator_core::{model, registry, render};
