//! Dependent clusters as users register them: labelled Secrets in the federator namespace,
//! each data key a cluster name and its value a kubeconfig.
//!
//! Parsing is pure and per key, so one bad kubeconfig never hides the good ones next to it.

pub mod health;
mod plan;
mod policy;
mod secret;

pub use plan::{ClusterPlan, Running, StoredSecret, plan};
pub use policy::{Allowance, KubeconfigPolicy, Refusal, current_context, refusal};
pub use secret::{
    ANNOTATION_NETWORK, ANNOTATION_REGION, ANNOTATION_ZONE, ClusterEntry, DEFAULT_MAX_KEYS,
    ParsedSecret, ProblemKind, SecretPolicy, SecretProblem, parse_secret,
};
