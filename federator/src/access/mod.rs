//! Least-privilege access for federator in a dependent ("remote") cluster: the
//! `federator-remote` ServiceAccount, what it may do ([`rules`]), the objects that grant it
//! ([`remote`]), and the edge that creates them and reads the ServiceAccount's token
//! ([`provision`], used by `federator cluster add --create-service-account`).
//!
//! The Helm chart's `remote` mode renders the same objects for GitOps users; a test keeps
//! the two identical.

pub mod provision;
pub mod remote;
pub mod rules;

pub use provision::{ProvisionError, provision, read_token};
pub use remote::{REMOTE_ACCOUNT, REMOTE_TOKEN_SECRET, RemoteAccess};
pub use rules::{Permission, REMOTE_CLUSTER_RULES, REMOTE_SYNC_RULES, Rule};
