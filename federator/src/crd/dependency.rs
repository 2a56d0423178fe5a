use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Declares which identities a source identity calls, as Admiral's `Dependency` does.
///
/// federator exports every global host to every cluster by default (Admiral syncs nothing
/// without a Dependency); the record exists so Admiral users can migrate their manifests
/// unchanged and so exports can be narrowed to declared dependencies.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[kube(
    group = "federator.io",
    version = "v1alpha1",
    kind = "Dependency",
    namespaced,
    printcolumn = r#"{"name":"Source","type":"string","jsonPath":".spec.source"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct DependencySpec {
    /// Identity of the calling workload.
    pub source: String,
    /// Identities it calls.
    pub destinations: Vec<String>,
}
