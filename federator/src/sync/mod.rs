//! Writing the rendered Istio objects into each cluster's sync namespace: one writer per
//! cluster, each with its own queue, so a slow or failing cluster never holds up another.
//! Writes are server-side applies of what differs; only objects carrying federator's
//! ownership label are ever changed or deleted.

mod findings;
pub mod paged;
mod queue;
mod writer;

pub use federator_core::planner::{Action, Desired, Existing, decide, fingerprint};
pub use queue::{Work, WorkQueue};
pub use writer::{FIELD_MANAGER, Gates, WriterContext, spawn_writer};
