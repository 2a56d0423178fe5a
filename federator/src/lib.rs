//! federator: multi-cluster service discovery for Istio meshes.
//!
//! Data flows one way: cluster objects are turned into typed deltas ([`ingest`]), folded into
//! the global [`registry`], and [`render`]ed into the Istio objects each cluster receives.
//! The registry and render are pure; reading files ([`snapshot`]) and talking to API
//! servers live at the edges.

pub mod clusters;
pub mod config;
pub mod crd;
pub mod dns;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod ingest;
pub mod istio;
pub mod metrics;
pub mod model;
pub mod offline;
pub mod registry;
pub mod render;
pub mod runtime;
pub mod sync;
pub mod watch;
