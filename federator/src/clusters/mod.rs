//! Dependent clusters as users register them: labelled Secrets in the federator namespace,
//! each data key a cluster name and its value a kubeconfig.
//!
//! Parsing is pure and per key, so one bad kubeconfig never hides the good ones next to it.

mod policy;
mod secret;

pub use federator_core::planner::clusters::{Running, plan};
/// The cluster health machine, from the core.
pub use federator_core::planner::health;

/// The cluster-set plan for Secret entries.
pub type ClusterPlan = federator_core::planner::clusters::ClusterPlan<ClusterEntry>;
/// A parsed cluster Secret, as the cluster-set plan reads it.
pub type StoredSecret = federator_core::planner::clusters::StoredSecret<ClusterEntry>;
pub use policy::{Allowance, KubeconfigPolicy, Refusal, current_context, refusal};
pub use secret::{
    ANNOTATION_NETWORK, ANNOTATION_REGION, ANNOTATION_ZONE, ClusterEntry, DEFAULT_MAX_KEYS,
    ParsedSecret, ProblemKind, SecretPolicy, SecretProblem, parse_secret,
};
