//! Specs of the Istio `networking.istio.io/v1` objects, limited to the fields federator writes.
//!
//! Hand-written rather than generated so the types stay small and their field order (which
//! is the order of the rendered YAML) stays stable; render tests check the output against
//! Istio's published schemas. Only the specs live here, as plain serde types: the
//! Kubernetes objects around them (`apiVersion`, `kind`, `metadata`) belong to the edge,
//! which wraps these specs for the API server.

mod destination_rule;
mod gateway;
mod service_entry;
mod sidecar;

pub use destination_rule::{
    ClientTls, DestinationRuleSpec, Distribute, Failover, LoadBalancer, LocalityLbSetting,
    OutlierDetection, TlsMode, TrafficPolicy,
};
pub use gateway::{GatewayPort, GatewayServer, GatewaySpec, ServerTls, ServerTlsMode};
pub use service_entry::{Location, Resolution, ServiceEntrySpec, ServicePort, WorkloadEntry};
pub use sidecar::{IstioEgressListener, SidecarSpec, WorkloadSelector};
