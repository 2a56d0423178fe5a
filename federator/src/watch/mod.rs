//! Per-cluster watchers: stream every kind federator reads from one cluster, turn the
//! objects into registry deltas, and say when the first full list of every kind is in.

mod cluster;
mod steps;
mod streams;
mod tracker;

pub use cluster::{ClusterWatch, Update, WatchMessage, WatchState, watch_cluster};
pub use tracker::{ApiKey, Commit, Step, Tracker};
