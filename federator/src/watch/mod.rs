//! Per-cluster watchers: stream every kind federator reads from one cluster, turn the
//! objects into registry deltas, say when the first full list of every kind is in, and
//! which kinds keep failing.

mod cluster;
mod health;
mod steps;
mod streams;
mod tracker;

pub use cluster::{ClusterWatch, Update, WatchMessage, WatchState, watch_cluster};
pub use health::{KindHealth, Transition, WatchHealth};
pub use tracker::{ApiKey, Commit, Step, Tracker};
