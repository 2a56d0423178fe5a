//! Sidecars for the workloads of an identity that declares its calls (a Dependency): each
//! such workload's Envoy is sent only its own namespace, Istio's, and the global hosts of the
//! identities it calls, instead of every host of the mesh.

use super::metadata::object_meta;
use super::{RenderOptions, Rendered};
use crate::istio::{IstioEgressListener, SidecarSpec, WorkloadSelector};
use crate::model::{ClusterName, WorkloadKind};
use crate::registry::{CallerWorkload, GlobalService};

/// Longest object name the API server takes (a DNS subdomain).
const MAX_NAME: usize = 253;

/// Name of the Sidecar of `workload`: the kind is part of it, so a Deployment and a Rollout
/// of the same name do not share one.
pub fn sidecar_name(workload: &CallerWorkload) -> String {
    let kind = match workload.kind {
        WorkloadKind::Deployment => "deployment",
        WorkloadKind::Rollout | WorkloadKind::RolloutVariant => "rollout",
        // Never a caller (an export has no identity), named all the same.
        WorkloadKind::ServiceExport => "serviceexport",
    };
    format!("federator-{kind}-{}", workload.key.name)
}

/// The Sidecars `service`'s workloads in `destination` need: one per workload, in its
/// namespace, selecting its pods. None when its identity declares no calls.
pub fn render(
    service: &GlobalService,
    destination: &ClusterName,
    suffix: &str,
    options: &RenderOptions,
) -> Vec<Rendered<SidecarSpec>> {
    let Some(calls) = &service.dependencies.calls else {
        return Vec::new();
    };
    let Some(workloads) = service.dependencies.workloads.get(destination) else {
        return Vec::new();
    };
    let mut hosts = vec!["./*".to_owned(), format!("{}/*", options.mesh_namespace)];
    // Every env of each identity called (and hosts yet to come), through one wildcard: a
    // Sidecar then follows the Dependency alone, never the comings and goings of hosts, so
    // a destination still starting up is never cut off.
    hosts.extend(
        calls
            .iter()
            .map(|identity| format!("{}/*.{identity}.{suffix}", options.namespace)),
    );
    // The clusterset services (MCS API), which a Dependency cannot name: exported to the
    // whole clusterset by their owners, they stay reachable.
    hosts.push(format!(
        "{}/*.{}",
        options.namespace,
        crate::model::CLUSTERSET_DOMAIN
    ));
    workloads
        .iter()
        .filter(|w| sidecar_name(w).len() <= MAX_NAME && !w.pod_labels.is_empty())
        // Never into Istio's, federator's or the system's own namespace: a Sidecar in Istio's
        // root namespace is the whole mesh's default.
        .filter(|w| {
            let ns = w.key.namespace.as_str();
            ns != options.mesh_namespace && ns != options.namespace && ns != "kube-system"
        })
        .map(|workload| {
            let mut metadata = object_meta(service, options);
            metadata.name = sidecar_name(workload);
            metadata.namespace = workload.key.namespace.to_string();
            Rendered {
                metadata,
                spec: SidecarSpec {
                    workload_selector: WorkloadSelector {
                        labels: workload.pod_labels.clone(),
                    },
                    egress: vec![IstioEgressListener {
                        hosts: hosts.clone(),
                    }],
                },
            }
        })
        .collect()
}
