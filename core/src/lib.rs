//! federator-core: the pure core of federator.
//!
//! Everything here is a function of its inputs: the domain [`model`], the Istio specs
//! federator writes ([`istio`], and [`mcs`] for the Multicluster Services API), the global [`registry`] that folds every cluster's objects
//! into global hosts, the [`render`]ing of the objects each cluster receives, and the
//! [`planner`]'s decision of what to write. The crate deliberately does not depend on `kube`,
//! `k8s-openapi` or `tokio`: with no API client, no Kubernetes types and no async runtime in
//! reach, nothing here can do I/O, read a clock or block, and the compiler (not review)
//! keeps it that way. The `federator` crate is the edge that talks to clusters and wraps
//! these types in Kubernetes objects; tests and benchmarks of the core need no cluster.

#![forbid(unsafe_code)]

#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod istio;
pub mod mcs;
pub mod model;
pub mod planner;
pub mod registry;
pub mod render;
mod stable_hash;
