use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// The part of an Argo Rollout federator reads: its pod template (or the Deployment it
/// borrows one from). Schema-less: the CRD belongs to Argo, federator only reads it.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "Rollout",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    /// Pod template of the rollout's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<PodTemplateSpec>,
    /// Reference to a Deployment whose template the rollout uses instead of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_ref: Option<serde_json::Value>,
}
