//! Problems the registry can see in the combined state of all clusters: conflicts and
//! missing pieces that leave a host or a cluster only partly served. Each names the cluster
//! and object concerned; none stops anything else from working.

use std::fmt;

use crate::model::ClusterName;

use super::Registry;

/// How bad a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Something is left out of the config: traffic may not go where the user expects.
    Warning,
    /// Worth knowing, nothing is left out.
    Info,
}

/// One problem, naming where it is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// How bad it is.
    pub severity: Severity,
    /// Cluster concerned, when it is about one cluster.
    pub cluster: Option<ClusterName>,
    /// Object or host concerned (e.g. `Service shop/cart`, `host prod.cart.global`).
    pub object: String,
    /// What is wrong and what it causes.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(cluster) = &self.cluster {
            write!(f, "cluster {cluster}: ")?;
        }
        write!(f, "{}: {}", self.object, self.message)
    }
}

impl Registry {
    /// Every problem in the current state, sorted (warnings first).
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for entry in self.hosts.values() {
            let service = &entry.service;
            if let Some(err) = &entry.vip_error {
                out.push(Diagnostic {
                    severity: Severity::Warning,
                    cluster: None,
                    object: format!("host {}", service.host),
                    message: format!("{err}; the host is not rendered until one frees up"),
                });
            }
            for rejected in &service.rejected {
                let ports: Vec<String> = rejected
                    .backend
                    .ports
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                let want: Vec<String> = service.ports.iter().map(ToString::to_string).collect();
                out.push(Diagnostic {
                    severity: Severity::Warning,
                    cluster: Some(rejected.cluster.clone()),
                    object: format!("Service {}", rejected.backend.service),
                    message: format!(
                        "ports [{}] conflict with ports [{}] of host {} (set by its oldest Service); this backend is left out",
                        ports.join(", "),
                        want.join(", "),
                        service.host
                    ),
                });
            }
            let applied = service.policy.as_ref();
            for shadowed in self
                .policy_candidates(&service.identity, &service.env)
                .into_iter()
                .skip(1)
            {
                let Some(applied) = applied else { break };
                out.push(Diagnostic {
                    severity: Severity::Warning,
                    cluster: Some(shadowed.cluster.clone()),
                    object: format!("GlobalTrafficPolicy {}", shadowed.info.key),
                    message: format!(
                        "ignored for host {}: GlobalTrafficPolicy {} in cluster {} takes precedence",
                        service.host, applied.info.key, applied.cluster
                    ),
                });
            }
        }
        for (name, state) in &self.clusters {
            for ((kind, key), reason) in &state.invalid_workloads {
                out.push(Diagnostic {
                    severity: Severity::Warning,
                    cluster: Some(name.clone()),
                    object: format!("{kind} {key}"),
                    message: format!("not federated: {reason}"),
                });
            }
            for workload in state.workloads.values() {
                if !state
                    .invalid_workloads
                    .contains_key(&(workload.kind, workload.key.clone()))
                    && state.services_selecting(workload).is_empty()
                {
                    out.push(Diagnostic {
                        severity: Severity::Info,
                        cluster: Some(name.clone()),
                        object: format!("{} {}", workload.kind, workload.key),
                        message: format!(
                            "identity {} env {} has no Service with mesh ports selecting its pods",
                            workload.identity, workload.env
                        ),
                    });
                }
            }
            if state.gateway_addresses.is_empty() {
                for gateway in state.gateways.values() {
                    out.push(Diagnostic {
                        severity: Severity::Warning,
                        cluster: Some(name.clone()),
                        object: format!("gateway Service {}", gateway.key),
                        message: "has no address yet (no load-balancer ingress, external IP or usable NodePort)".into(),
                    });
                }
                let serving = state
                    .host_backends
                    .values()
                    .flatten()
                    .any(|b| b.ready_count() > 0);
                if serving {
                    out.push(Diagnostic {
                        severity: Severity::Warning,
                        cluster: Some(name.clone()),
                        object: "east-west gateway".into(),
                        message: "no address known: this cluster's backends are not offered to other clusters".into(),
                    });
                }
            }
        }
        out.sort();
        out
    }
}
