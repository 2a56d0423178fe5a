//! Dependent clusters as users register them: labelled Secrets in the federator namespace,
//! each data key a cluster name and its value a kubeconfig.
//!
//! Parsing is pure and per key, so one bad kubeconfig never hides the good ones next to it.

mod secret;

pub use secret::{
    ANNOTATION_NETWORK, ANNOTATION_REGION, ANNOTATION_ZONE, ClusterEntry, SecretProblem,
    parse_secret,
};
