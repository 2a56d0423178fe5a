//! federator's own custom resources (group `federator.io`, version `v1alpha1`) and the
//! generation of their CRD manifests.

mod dependency;
mod generate;
mod global_traffic_policy;

pub use dependency::{Dependency, DependencySpec, DependencyStatus};
pub use generate::{CrdFile, crd_files};
pub use global_traffic_policy::{
    GlobalTrafficPolicy, GlobalTrafficPolicySpec, GlobalTrafficPolicyStatus, PolicyMode,
    RegionWeight,
};
