//! Writing the rendered Istio objects into each cluster's sync namespace: one writer per
//! cluster, each with its own queue, so a slow or failing cluster never holds up another.
//! A pure plan ([`plan`]) decides each write; only this installation's objects are ever
//! changed or deleted, and every write is conditional on what was last read.

mod cleanup;
mod execute;
mod findings;
mod imports;
mod objects;
mod outside;
pub mod paged;
mod pass;
mod queue;
mod read;
mod rejections;
mod report;
mod sidecars;
mod writer;

pub use cleanup::cleanup;
pub use execute::FIELD_MANAGER;
pub use federator_core::planner::write as plan;
pub use objects::{desired, host_clusters, shared_map};
pub use queue::{Work, WorkQueue};
pub use writer::{Gates, WriterContext, spawn_writer};
