//! Specs of the Multicluster Services API (`multicluster.x-k8s.io/v1beta1`) objects
//! federator writes, limited to the fields it sets: the ServiceImport each cluster gets for a
//! clusterset service. Like [`crate::istio`], plain serde types; the edge wraps them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Spec of a ServiceImport: how a clusterset service looks from an importing cluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceImportSpec {
    /// `ClusterSetIP` or `Headless`.
    #[serde(rename = "type")]
    pub import_type: ServiceImportType,
    /// The service's ports, as its exports agree on them.
    pub ports: Vec<ServiceImportPort>,
    /// The clusterset IP (federator's VIP for the service); empty for a headless service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<String>,
}

/// The two kinds of clusterset service.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ServiceImportType {
    /// Reached through one clusterset IP.
    ClusterSetIP,
    /// Reached through its endpoints' own addresses.
    Headless,
}

/// One port of a ServiceImport.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceImportPort {
    /// The Service port's name (may be empty for a single unnamed port).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `TCP` (federator carries TCP ports only).
    pub protocol: String,
    /// The port number.
    pub port: u16,
}
