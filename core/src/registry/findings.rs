//! Problems of one cluster's mesh setup that leave cross-cluster traffic broken or partly
//! served, each tied to the object to fix: reported live as Events on that object, offline
//! as diagnostics.

use std::fmt;

use crate::model::{ClusterName, ObjectKey, WorkloadKind};

use super::Registry;

/// A problem of one cluster's setup, naming the object concerned.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ClusterFinding {
    /// The Secret's network override and Istio's network label disagree.
    NetworkMismatch {
        /// The Istio system namespace carrying the label.
        namespace: String,
        /// What Istio's label says.
        labelled: String,
        /// What the Secret's `federator.io/network` annotation says (and federator uses).
        configured: String,
    },
    /// The east-west gateway Service publishes no address.
    GatewayWithoutAddress {
        /// The gateway Service.
        service: ObjectKey,
    },
    /// A user's Gateway already passes global hosts through on the gateway port.
    PassthroughClaimed {
        /// The user's Gateway.
        gateway: ObjectKey,
        /// Its hosts covering global hosts.
        hosts: Vec<String>,
    },
    /// A workload's env and identity make no valid global host (longer than a DNS name or
    /// a Kubernetes object name may be): it is not exported.
    InvalidHost {
        /// Deployment or Rollout.
        kind: WorkloadKind,
        /// The workload.
        workload: ObjectKey,
        /// Why.
        reason: String,
    },
    /// A workload spells its env or identity differently from another workload of the same
    /// global host (`Payments` and `payments`); its backends are not exported.
    SpellingConflict {
        /// Deployment or Rollout.
        kind: WorkloadKind,
        /// The workload.
        workload: ObjectKey,
        /// The global host both spellings make.
        host: String,
        /// How this workload writes `env.identity`.
        spelling: String,
        /// The spelling exported (empty: lower-case).
        exported: String,
    },
}

/// The Kubernetes object a finding is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FindingObject {
    /// `apiVersion`.
    pub api_version: &'static str,
    /// `kind`.
    pub kind: &'static str,
    /// Namespace, for namespaced objects.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl fmt::Display for FindingObject {
    /// `Kind namespace/name`, or `Kind name` for cluster-scoped objects.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

impl ClusterFinding {
    /// A short CamelCase reason, as Events carry.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NetworkMismatch { .. } => "NetworkMismatch",
            Self::GatewayWithoutAddress { .. } => "GatewayWithoutAddress",
            Self::PassthroughClaimed { .. } => "GlobalHostsClaimed",
            Self::SpellingConflict { .. } => "IdentitySpellingConflict",
            Self::InvalidHost { .. } => "InvalidGlobalHost",
        }
    }

    /// The object to put the Event on.
    pub fn object(&self) -> FindingObject {
        match self {
            Self::NetworkMismatch { namespace, .. } => FindingObject {
                api_version: "v1",
                kind: "Namespace",
                namespace: None,
                name: namespace.clone(),
            },
            Self::GatewayWithoutAddress { service } => FindingObject {
                api_version: "v1",
                kind: "Service",
                namespace: Some(service.namespace.to_string()),
                name: service.name.to_string(),
            },
            Self::PassthroughClaimed { gateway, .. } => FindingObject {
                api_version: "networking.istio.io/v1",
                kind: "Gateway",
                namespace: Some(gateway.namespace.to_string()),
                name: gateway.name.to_string(),
            },
            Self::SpellingConflict { kind, workload, .. }
            | Self::InvalidHost { kind, workload, .. } => FindingObject {
                api_version: kind.api().0,
                kind: kind.api().1,
                namespace: Some(workload.namespace.to_string()),
                name: workload.name.to_string(),
            },
        }
    }
}

impl fmt::Display for ClusterFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NetworkMismatch {
                namespace,
                labelled,
                configured,
            } => write!(
                f,
                "Namespace {namespace} is labelled topology.istio.io/network={labelled} but the \
                 cluster Secret's federator.io/network annotation says {configured}; federator \
                 uses {configured}, istiod uses {labelled} and may rewrite or drop endpoints of \
                 either network: make them agree"
            ),
            Self::GatewayWithoutAddress { service } => write!(
                f,
                "east-west gateway Service {service} has no address (no load-balancer ingress, \
                 external IP or NodePort with node addresses): other clusters cannot reach this \
                 cluster's backends, so they are left out of their config"
            ),
            Self::PassthroughClaimed { gateway, hosts } => write!(
                f,
                "Gateway {gateway} already passes {} on the east-west gateway port; federator \
                 leaves its own Gateway out of this cluster (its servers must use tls mode \
                 AUTO_PASSTHROUGH for cross-cluster traffic to work)",
                hosts.join(", ")
            ),
            Self::InvalidHost { reason, .. } => write!(
                f,
                "not exported: {reason}; global hosts are named <env>.<identity>.<suffix> and \
                 name the Istio objects, so they must fit a DNS name (253 characters, labels \
                 of 63): shorten the env or identity"
            ),
            Self::SpellingConflict {
                host,
                spelling,
                exported,
                ..
            } => {
                let exported = if exported.is_empty() {
                    "lower-case"
                } else {
                    exported.as_str()
                };
                write!(
                    f,
                    "its env.identity {spelling:?} and another workload's ({exported}) both make \
                     host {host}; global names are lower-case, so they are one name for two \
                     spellings: only {exported} is exported, this workload is not; spell them \
                     the same if they are one service, or rename one"
                )
            }
        }
    }
}

impl Registry {
    /// The setup problems of `cluster`, sorted.
    pub fn cluster_findings(&self, cluster: &ClusterName) -> Vec<ClusterFinding> {
        let Some(state) = self.clusters.get(cluster) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let (Some(namespace), Some(configured)) =
            (&state.mesh_namespace, state.info.network.as_deref())
            && let Some(labelled) = namespace.network.as_deref()
            && labelled != configured
        {
            out.push(ClusterFinding::NetworkMismatch {
                namespace: namespace.name.clone(),
                labelled: labelled.to_owned(),
                configured: configured.to_owned(),
            });
        }
        if state.gateway_addresses.is_empty() {
            out.extend(state.gateways.keys().map(|service| {
                ClusterFinding::GatewayWithoutAddress {
                    service: service.clone(),
                }
            }));
        }
        out.extend(self.passthrough_claims(cluster).into_iter().map(|claim| {
            ClusterFinding::PassthroughClaimed {
                gateway: claim.key,
                hosts: claim.hosts,
            }
        }));
        out.extend(state.invalid_workloads.iter().map(|((kind, key), reason)| {
            ClusterFinding::InvalidHost {
                kind: *kind,
                workload: key.clone(),
                reason: reason.clone(),
            }
        }));
        out.extend(state.held.spelling_conflicts().filter_map(
            |((kind, key), host, why)| match why {
                super::Held::SpellingConflict { spelling, exported } => {
                    Some(ClusterFinding::SpellingConflict {
                        kind: *kind,
                        workload: key.clone(),
                        host: host.to_string(),
                        spelling: spelling.clone(),
                        exported: exported.clone(),
                    })
                }
                super::Held::OverQuota => None,
            },
        ));
        out.sort();
        out
    }
}
