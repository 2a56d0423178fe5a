use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Spec of a Sidecar, which limits what a workload's Envoy is told about: without one every
/// sidecar holds every host of the mesh, and memory grows with the mesh until sidecars are
/// killed. federator writes one per workload whose identity declares its calls (a
/// Dependency), letting through only the hosts it calls.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SidecarSpec {
    /// The pods it applies to.
    pub workload_selector: WorkloadSelector,
    /// What those pods may reach.
    pub egress: Vec<IstioEgressListener>,
}

/// Labels that select the pods a Sidecar applies to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct WorkloadSelector {
    /// Every label must match.
    pub labels: BTreeMap<String, String>,
}

/// One egress listener of a Sidecar: the hosts its pods are sent.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct IstioEgressListener {
    /// `namespace/host` entries (`.` for the Sidecar's namespace, `*` wildcards).
    pub hosts: Vec<String>,
}
