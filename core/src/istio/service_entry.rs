use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Spec of a ServiceEntry, which adds a host to Istio's service registry: here, one global
/// host with its VIP, ports and the endpoints (local Services, remote gateways) that serve it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEntrySpec {
    /// Host names the entry is reachable under.
    pub hosts: Vec<String>,
    /// Virtual IPs of the hosts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// Ports the hosts offer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ServicePort>,
    /// Inside or outside the mesh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// How endpoint addresses are resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    /// The endpoints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<WorkloadEntry>,
    /// Namespaces the entry is visible in (`*`: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub export_to: Vec<String>,
}

/// A port of a ServiceEntry.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct ServicePort {
    /// Port number clients use.
    pub number: u32,
    /// Protocol (`HTTP`, `GRPC`, `TCP`, ...).
    pub protocol: String,
    /// Port name; endpoints map it to their own port.
    pub name: String,
}

/// Whether the service is part of the mesh.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Location {
    /// Outside the mesh (no mTLS).
    MeshExternal,
    /// Inside the mesh: sidecars speak mTLS to it.
    MeshInternal,
}

/// How the proxy resolves endpoint addresses.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Resolution {
    /// Pass through to the original destination.
    None,
    /// Endpoint addresses are IPs.
    Static,
    /// Endpoint addresses are resolved by DNS, every address used.
    Dns,
    /// Endpoint addresses are resolved by DNS, one address used at a time.
    DnsRoundRobin,
}

/// One endpoint of a ServiceEntry.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadEntry {
    /// IP or host name.
    pub address: String,
    /// Port per ServiceEntry port name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ports: BTreeMap<String, u32>,
    /// Labels; `security.istio.io/tlsMode: istio` makes clients use mTLS.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Istio network of the endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// `region/zone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    /// Load-balancing weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}
