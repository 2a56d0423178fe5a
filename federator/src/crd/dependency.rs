use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Declares which identities a source identity calls, as Admiral's `Dependency` does.
///
/// Each workload of the source gets an Istio Sidecar that sends its Envoy only its own
/// namespace, Istio's, and the global hosts of the destinations (instead of every host of
/// the mesh); with `--export-scope dependents` a destination's hosts go only to the clusters
/// its callers (and it) run in. Several Dependencies of one source add up.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "federator.io",
    version = "v1alpha1",
    kind = "Dependency",
    namespaced,
    status = "DependencyStatus",
    printcolumn = r#"{"name":"Source","type":"string","jsonPath":".spec.source"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct DependencySpec {
    /// Identity of the calling workload.
    pub source: String,
    /// Identities it calls.
    pub destinations: Vec<String>,
}

/// What federator last concluded about a Dependency.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DependencyStatus {
    /// Standard conditions: `Accepted` (valid and in force), `ResolvedRefs` (every identity
    /// it names runs somewhere).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The identities named that no cluster runs (yet).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown_identities: Vec<String>,
    /// The `metadata.generation` these conditions concern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
