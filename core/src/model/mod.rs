//! Domain types shared by every part of federator: what a cluster, a workload, a Service,
//! its endpoints and a gateway look like once the Kubernetes details are stripped away.
//!
//! Nothing here knows about the Kubernetes API or does I/O; the `ingest` module turns API
//! objects into these types and the registry folds them.

mod labels;
mod mcs;
mod names;
mod objects;
mod policy;
mod port;

pub use labels::Labels;
pub use mcs::{
    CLUSTER_ID_PROPERTY, CLUSTERSET_DOMAIN, CLUSTERSET_ZONE, ClusterIdInfo, service_export,
};
pub use names::{
    ClusterName, Host, InvalidName, ObjectKey, validate_dns_label, validate_identity,
    validate_label_value,
};
pub use objects::{
    ClusterInfo, EndpointSliceInfo, GatewayInfo, Locality, MeshNamespaceInfo, NodeInfo, Object,
    ObjectRef, PassthroughClaimInfo, ReadyEndpoint, RolloutRole, ServiceInfo, WorkloadInfo,
    WorkloadKind,
};
pub use policy::{
    DependencyInfo, LocalityMode, PolicyInfo, PolicySource, RejectedInfo, TrafficPolicy,
};
pub use port::{MeshPort, Protocol, TargetPorts};
/// A name the registry stores: inline up to 23 bytes, shared (not copied) on clone beyond.
pub use smol_str::SmolStr;
