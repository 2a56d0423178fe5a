//! What to write: the pure decisions behind every write to a cluster.
//!
//! The writer in the edge reads the sync namespace and renders what it wants; whether each
//! object is kept, applied, deleted or left alone as someone else's is decided here, from
//! fingerprints and metadata only, so the rule can be tested without an API server.

mod object;

pub use object::{Action, Desired, Existing, decide, fingerprint};
