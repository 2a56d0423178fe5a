use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// The part of an Argo Rollout federator reads: its pod template (or the Deployment it
/// borrows one from) and the Services its strategy names. Schema-less: the CRD belongs to
/// Argo, federator only reads it.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "Rollout",
    namespaced,
    status = "RolloutStatus",
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
    /// How it rolls out: the Services of each side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<RolloutStrategy>,
}

/// A Rollout's strategy, reduced to the Services it names.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStrategy {
    /// Blue-green: an active and a preview Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<BlueGreenStrategy>,
    /// Canary: a stable and a canary Service (both optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryStrategy>,
}

/// The Services of a blue-green Rollout.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreenStrategy {
    /// Serves production traffic: the global host's backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_service: Option<String>,
    /// Serves the new version before promotion: `preview.<env>.<identity>.<suffix>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_service: Option<String>,
}

/// The Services of a canary Rollout.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStrategy {
    /// Serves the stable version: the global host's backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_service: Option<String>,
    /// Serves the canary: `canary.<env>.<identity>.<suffix>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_service: Option<String>,
    /// How Argo shifts traffic; with `istio`, federator splits the global host as Argo
    /// weights the Rollout's VirtualService.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_routing: Option<TrafficRouting>,
}

/// A canary's traffic routing, as far as federator reads it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrafficRouting {
    /// Istio traffic routing (its VirtualService and DestinationRule), when used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub istio: Option<serde_json::Value>,
    /// The total weight (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_traffic_weight: Option<i32>,
}

/// What Argo reports of a Rollout, as far as federator reads it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct RolloutStatus {
    /// The canary's progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryStatus>,
}

/// A canary's progress.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct CanaryStatus {
    /// The weights Argo set on the traffic routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<TrafficWeights>,
}

/// The weights Argo set on the traffic routing.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct TrafficWeights {
    /// The canary side.
    #[serde(default)]
    pub canary: WeightDestination,
}

/// One side's weight.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct WeightDestination {
    /// Its weight, out of the routing's `maxTrafficWeight`.
    #[serde(default)]
    pub weight: i32,
}

impl Rollout {
    /// The canary's share of traffic in percent, when Argo weights it through Istio traffic
    /// routing and has reported the weight; `None` otherwise (the stable Service alone).
    pub fn canary_weight(&self) -> Option<u32> {
        let canary = self.spec.strategy.as_ref()?.canary.as_ref()?;
        let routing = canary.traffic_routing.as_ref()?;
        routing.istio.as_ref()?;
        let max = routing.max_traffic_weight.filter(|m| *m > 0).unwrap_or(100);
        let weight = self
            .status
            .as_ref()?
            .canary
            .as_ref()?
            .weights
            .as_ref()?
            .canary
            .weight;
        let weight = i64::from(weight.clamp(0, max));
        // A canary with any weight keeps at least 1 %, rather than being dropped.
        let percent = (weight * 100 / i64::from(max)).max(weight.min(1));
        u32::try_from(percent).ok()
    }
}
