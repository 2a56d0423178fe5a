use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::istio::OutlierDetection;

/// How traffic to an identity's global hosts spreads over regions and when it fails over.
///
/// Without a policy a host gets Istio's topology default (same zone, same region, then
/// anywhere) and federator's default outlier detection.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "federator.io",
    version = "v1alpha1",
    kind = "GlobalTrafficPolicy",
    namespaced,
    shortname = "gtp",
    status = "GlobalTrafficPolicyStatus",
    printcolumn = r#"{"name":"Identity","type":"string","jsonPath":".spec.identity"}"#,
    printcolumn = r#"{"name":"Env","type":"string","jsonPath":".spec.env"}"#,
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.mode"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct GlobalTrafficPolicySpec {
    /// Identity whose global hosts this policy governs.
    pub identity: String,
    /// Env the policy applies to; every env of the identity when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Locality load-balancing mode.
    #[serde(default)]
    pub mode: PolicyMode,
    /// Regions in order of preference (mode `failover`): each region fails over to the next,
    /// the last to the first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failover: Vec<String>,
    /// Share of traffic per region in percent, summing to 100 (mode `distribute`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distribute: Vec<RegionWeight>,
    /// Outlier-detection settings (Istio's fields) replacing federator's defaults field by
    /// field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
}

/// Locality load-balancing mode of a GlobalTrafficPolicy.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PolicyMode {
    /// Istio's locality default: nearest healthy locality first.
    #[default]
    Topology,
    /// An ordered list of regions to fail over through.
    Failover,
    /// Fixed weights per region.
    Distribute,
}

/// A region and its share of traffic.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct RegionWeight {
    /// Region name as in the nodes' `topology.kubernetes.io/region` label.
    pub region: String,
    /// Percent of traffic.
    pub weight: u32,
}

/// What federator last concluded about a policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GlobalTrafficPolicyStatus {
    /// Standard conditions: `Accepted` (the policy is valid), `Conflicted` (another policy
    /// takes precedence for some of its hosts, or it is invalid).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` these conditions concern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The global hosts it governs now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}
