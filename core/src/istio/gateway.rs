use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Spec of a Gateway, which opens a port on gateway pods: here, the east-west gateway's mTLS
/// passthrough port for the global hosts (Istio's own cross-network sample passes only
/// `*.local`, so without it every cross-cluster connection to a global host is reset at the
/// remote gateway).
///
/// The same type reads users' Gateways, so every field the writer does not need is
/// optional and unknown TLS modes are accepted.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    /// Labels of the gateway pods the servers run on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
    /// The ports opened and what they accept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<GatewayServer>,
}

/// One port of a Gateway and the hosts it accepts.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayServer {
    /// The port.
    pub port: GatewayPort,
    /// Hosts accepted on it (`[namespace/]host`, wildcards allowed).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// TLS settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTls>,
}

/// A Gateway port.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct GatewayPort {
    /// Port number.
    pub number: u32,
    /// Protocol (`TLS` for passthrough).
    #[serde(default)]
    pub protocol: String,
    /// Port name.
    #[serde(default)]
    pub name: String,
}

/// TLS settings of a Gateway server.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct ServerTls {
    /// How TLS is handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ServerTlsMode>,
}

/// Istio's server TLS modes; only `AUTO_PASSTHROUGH` is written.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServerTlsMode {
    /// Routes on the SNI of Istio mTLS (`outbound_.<port>_.<subset>_.<host>`) without
    /// terminating it: what east-west gateways do.
    AutoPassthrough,
    /// Any other mode (users' Gateways).
    #[serde(other)]
    Other,
}
