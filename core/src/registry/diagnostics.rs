//! Problems the registry can see in the combined state of all clusters: conflicts and
//! missing pieces that leave a host or a cluster only partly served. Each names the cluster
//! and object concerned; none stops anything else from working.

use std::fmt;

use crate::model::{ClusterName, ObjectKey};

use super::Registry;
use super::findings::FindingObject;

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
    /// A short CamelCase reason (an Event reason, a metric label).
    pub reason: &'static str,
    /// The Kubernetes object to fix, in `cluster`, when there is one.
    pub subject: Option<FindingObject>,
    /// Already reported live elsewhere (the writers' setup findings, the host quota), so the
    /// diagnostics reporter only counts it.
    pub reported_elsewhere: bool,
}

impl Diagnostic {
    fn new(
        severity: Severity,
        reason: &'static str,
        cluster: Option<&ClusterName>,
        object: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity,
            cluster: cluster.cloned(),
            object: object.into(),
            message: message.into(),
            reason,
            subject: None,
            reported_elsewhere: false,
        }
    }

    fn about(mut self, subject: FindingObject) -> Self {
        self.subject = Some(subject);
        self
    }

    fn elsewhere(mut self) -> Self {
        self.reported_elsewhere = true;
        self
    }
}

fn namespaced(api_version: &'static str, kind: &'static str, key: &ObjectKey) -> FindingObject {
    FindingObject {
        api_version,
        kind,
        namespace: Some(key.namespace.to_string()),
        name: key.name.to_string(),
    }
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
        let mut out = self.warnings();
        out.extend(self.unselected_workloads());
        out.sort();
        out
    }

    /// The problems that leave something out of the config (severity warning), sorted. They
    /// cost a pass over hosts and clusters; the live reporter recomputes them as the
    /// registry changes.
    pub fn warnings(&self) -> Vec<Diagnostic> {
        use Severity::Warning;
        let mut out = Vec::new();
        for entry in self.hosts.values() {
            let service = &entry.service;
            let host = &service.host;
            if let Some(err) = &entry.vip_error {
                let message = format!("{err}; the host is not rendered until one frees up");
                out.push(Diagnostic::new(
                    Warning,
                    "VipRangeExhausted",
                    None,
                    format!("host {host}"),
                    message,
                ));
            }
            // Worked out only for the few hosts that have a conflict: this loop visits every
            // host, and the registry loop runs it live.
            let wanted = if service.rejected.is_empty() {
                String::new()
            } else {
                port_list(&service.ports)
            };
            for rejected in &service.rejected {
                let message = format!(
                    "ports [{}] conflict with ports [{wanted}] of host {host} \
                     (set by its oldest Service); this backend is left out",
                    port_list(&rejected.backend.ports),
                );
                let object = format!("Service {}", rejected.backend.service);
                let subject = namespaced("v1", "Service", &rejected.backend.service);
                out.push(
                    Diagnostic::new(
                        Warning,
                        "PortConflict",
                        Some(&rejected.cluster),
                        object,
                        message,
                    )
                    .about(subject),
                );
            }
            if let Some(applied) = &service.policy {
                let candidates = self.policy_candidates(&service.identity, &service.env);
                for shadowed in candidates.iter().skip(1) {
                    let message = format!(
                        "ignored for host {host}: {} in cluster {} takes precedence ({})",
                        applied.info.reference(),
                        applied.cluster,
                        super::PRECEDENCE
                    );
                    let object = shadowed.info.reference().to_string();
                    let subject = namespaced(
                        shadowed.info.api.api_version(),
                        "GlobalTrafficPolicy",
                        &shadowed.info.key,
                    );
                    out.push(
                        Diagnostic::new(
                            Warning,
                            "PolicyShadowed",
                            Some(&shadowed.cluster),
                            object,
                            message,
                        )
                        .about(subject),
                    );
                }
            }
        }
        for (name, state) in self.clusters.iter() {
            let cluster = Some(name);
            // Admiral's objects get no status from federator: what is wrong with them is
            // reported as an Event instead.
            for rejected in state.rejected.values() {
                let (kind, key) = match &rejected.reference {
                    crate::model::ObjectRef::AdmiralPolicy(key) => ("GlobalTrafficPolicy", key),
                    crate::model::ObjectRef::AdmiralDependency(key) => ("Dependency", key),
                    _ => continue,
                };
                let subject = namespaced("admiral.io/v1alpha1", kind, key);
                out.push(
                    Diagnostic::new(
                        Warning,
                        "InvalidAdmiralObject",
                        cluster,
                        rejected.reference.to_string(),
                        format!("ignored: {}", rejected.reason),
                    )
                    .about(subject),
                );
            }
            for policy in state.policies.values().filter(|p| !p.ignored.is_empty()) {
                let subject =
                    namespaced(policy.api.api_version(), "GlobalTrafficPolicy", &policy.key);
                let message = format!("no equivalent in federator: {}", policy.ignored.join("; "));
                out.push(
                    Diagnostic::new(
                        Warning,
                        "FieldIgnored",
                        cluster,
                        policy.reference().to_string(),
                        message,
                    )
                    .about(subject),
                );
            }
            let over = self.hosts_over_quota(name);
            if over > 0 {
                let message = format!(
                    "{over} hosts not exported: the cluster has more than \
                     --max-hosts-per-cluster={}",
                    self.config.max_hosts_per_cluster
                );
                out.push(
                    Diagnostic::new(Warning, "HostQuotaExceeded", cluster, "host quota", message)
                        .elsewhere(),
                );
            }
            for finding in self.cluster_findings(name) {
                let subject = finding.object();
                let object = subject.to_string();
                let diagnostic = Diagnostic::new(
                    Warning,
                    finding.reason(),
                    cluster,
                    object,
                    finding.to_string(),
                );
                out.push(diagnostic.about(subject).elsewhere());
            }
            if state.gateway_addresses.is_empty() {
                let serving = state
                    .by_host
                    .values()
                    .filter_map(|links| links.backends.as_deref())
                    .flatten()
                    .any(|b| b.ready_count() > 0);
                if serving {
                    let message = "no address known: \
                        this cluster's backends are not offered to other clusters";
                    out.push(Diagnostic::new(
                        Warning,
                        "NoGatewayAddress",
                        cluster,
                        "east-west gateway",
                        message,
                    ));
                }
            }
        }
        out.sort();
        out
    }

    /// Workloads no Service with mesh ports selects (severity info): a check of every
    /// workload against its namespace's Services, too costly to repeat on every change of a
    /// large registry, so only `federator render` reports it.
    fn unselected_workloads(&self) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for (name, state) in self.clusters.iter() {
            let cluster = Some(name);
            for workload in state.all_workloads() {
                let id = (workload.kind, workload.key.clone());
                // An export names its Service (its own status says when it is missing).
                if workload.kind != crate::model::WorkloadKind::ServiceExport
                    && !state.invalid_workloads.contains_key(&id)
                    && state.services_selecting(workload).is_empty()
                {
                    let message = format!(
                        "identity {} env {} has no Service with mesh ports selecting its pods",
                        workload.identity, workload.env
                    );
                    let object = format!("{} {}", workload.kind, workload.key);
                    let (api_version, kind) = workload.kind.api();
                    let subject = namespaced(api_version, kind, &workload.key);
                    out.push(
                        Diagnostic::new(Severity::Info, "NoMeshService", cluster, object, message)
                            .about(subject),
                    );
                }
            }
        }
        out
    }
}

fn port_list(ports: &[crate::model::MeshPort]) -> String {
    ports
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
