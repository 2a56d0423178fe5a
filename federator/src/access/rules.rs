//! What federator does in a dependent cluster, as RBAC rules: read what the watchers read,
//! publish Events and the status of its own policies, manage the Istio objects it writes in
//! the sync namespace, and the Sidecars of Dependencies in their workloads' namespaces.

use k8s_openapi::api::rbac::v1::PolicyRule;

/// One RBAC rule: verbs on resources of one API group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// API group (`""` for the core group).
    pub group: &'static str,
    /// Resources (plural names).
    pub resources: &'static [&'static str],
    /// Verbs.
    pub verbs: &'static [&'static str],
}

const READ: &[&str] = &["get", "list", "watch"];

/// Cluster-wide rules of the `federator-remote` ClusterRole: the kinds the watchers read in
/// every namespace (`watch/streams.rs`), Events on them (diagnostics name the Service or
/// Deployment they concern, in its own namespace), the status of GlobalTrafficPolicies and
/// Dependencies (their conditions), Sidecars (a Dependency's goes into the namespace of
/// each workload of its source; the writer lists them by federator's label and changes only
/// its own), and the MCS API: ServiceExports read (and their status written), ServiceImports
/// written into their Services' namespaces, the cluster's id read from its ClusterProperty.
pub const REMOTE_CLUSTER_RULES: &[Rule] = &[
    Rule {
        group: "",
        resources: &["services", "nodes", "namespaces"],
        verbs: READ,
    },
    Rule {
        group: "discovery.k8s.io",
        resources: &["endpointslices"],
        verbs: READ,
    },
    Rule {
        group: "apps",
        resources: &["deployments"],
        verbs: READ,
    },
    Rule {
        group: "argoproj.io",
        resources: &["rollouts"],
        verbs: READ,
    },
    Rule {
        group: "federator.io",
        resources: &["globaltrafficpolicies", "dependencies"],
        verbs: READ,
    },
    Rule {
        group: "admiral.io",
        resources: &["globaltrafficpolicies", "dependencies"],
        verbs: READ,
    },
    Rule {
        group: "federator.io",
        resources: &["globaltrafficpolicies/status", "dependencies/status"],
        verbs: &["patch"],
    },
    Rule {
        group: "networking.istio.io",
        resources: &["sidecars"],
        verbs: &["get", "list", "create", "patch", "delete"],
    },
    Rule {
        group: "networking.istio.io",
        resources: &["gateways"],
        verbs: READ,
    },
    Rule {
        group: "multicluster.x-k8s.io",
        resources: &["serviceexports"],
        verbs: READ,
    },
    Rule {
        group: "multicluster.x-k8s.io",
        resources: &["serviceexports/status"],
        verbs: &["patch"],
    },
    Rule {
        group: "multicluster.x-k8s.io",
        resources: &["serviceimports"],
        verbs: &["get", "list", "create", "patch", "delete"],
    },
    Rule {
        group: "about.k8s.io",
        resources: &["clusterproperties"],
        verbs: READ,
    },
    Rule {
        group: "events.k8s.io",
        resources: &["events"],
        verbs: &["create", "patch"],
    },
];

/// Rules of the `federator-remote` Role in the sync namespace: the Istio objects federator
/// writes there, with the verbs the writers use (`sync/`: read one, list, create, JSON
/// patch, delete; never replace or watch), and nothing else (no Secrets, no other namespace).
pub const REMOTE_SYNC_RULES: &[Rule] = &[Rule {
    group: "networking.istio.io",
    resources: &["serviceentries", "destinationrules", "gateways"],
    verbs: &["get", "list", "create", "patch", "delete"],
}];

impl Rule {
    /// The rule as the RBAC API spells it.
    pub fn policy_rule(&self) -> PolicyRule {
        let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        PolicyRule {
            api_groups: Some(vec![self.group.to_owned()]),
            resources: Some(strings(self.resources)),
            verbs: strings(self.verbs),
            ..Default::default()
        }
    }

    /// Every single permission the rule grants, in `namespace` (`None`: cluster-wide).
    pub fn permissions(&self, namespace: Option<&str>) -> Vec<Permission> {
        self.resources
            .iter()
            .flat_map(|resource| {
                self.verbs.iter().map(move |verb| Permission {
                    verb,
                    group: self.group,
                    resource,
                    namespace: namespace.map(str::to_owned),
                })
            })
            .collect()
    }
}

/// One permission someone needs: a verb on a resource, in a namespace or cluster-wide.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Permission {
    /// The verb (`create`, `get`, ...).
    pub verb: &'static str,
    /// API group (`""` for the core group).
    pub group: &'static str,
    /// Resource (plural).
    pub resource: &'static str,
    /// Namespace, `None` for cluster-wide.
    pub namespace: Option<String>,
}

impl std::fmt::Display for Permission {
    /// `create clusterroles.rbac.authorization.k8s.io (cluster-wide)`, as `kubectl auth
    /// can-i` spells it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)?;
        if !self.group.is_empty() {
            write!(f, ".{}", self.group)?;
        }
        match &self.namespace {
            Some(ns) => write!(f, " in namespace {ns}"),
            None => write!(f, " (cluster-wide)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_remote_role_cannot_touch_secrets_or_write_outside_istio_kinds() {
        let everything: Vec<Permission> = REMOTE_CLUSTER_RULES
            .iter()
            .chain(REMOTE_SYNC_RULES)
            .flat_map(|r| r.permissions(None))
            .collect();
        assert!(everything.iter().all(|p| p.resource != "secrets"));
        let writes = ["create", "update", "patch", "delete"];
        for p in everything.iter().filter(|p| writes.contains(&p.verb)) {
            assert!(
                p.group == "networking.istio.io"
                    || p.resource == "serviceimports"
                    || p.resource == "events"
                    || p.resource.ends_with("/status"),
                "{p} writes something federator does not write"
            );
        }
        for p in REMOTE_CLUSTER_RULES
            .iter()
            .flat_map(|r| r.permissions(None))
            .filter(|p| writes.contains(&p.verb))
        {
            assert!(
                p.resource == "events"
                    || p.resource == "sidecars"
                    || p.resource == "serviceimports"
                    || p.resource.ends_with("/status"),
                "{p}: cluster-wide rules only read, publish Events and status, and write Sidecars and ServiceImports"
            );
        }
        assert!(
            !everything.iter().any(|p| writes.contains(&p.verb)
                && p.resource.starts_with("globaltrafficpolicies")
                && !p.resource.ends_with("/status")),
            "federator never changes a policy's spec"
        );
    }

    #[test]
    fn a_permission_reads_like_kubectl_auth_can_i() {
        let p = Permission {
            verb: "create",
            group: "rbac.authorization.k8s.io",
            resource: "clusterroles",
            namespace: None,
        };
        assert_eq!(
            p.to_string(),
            "create clusterroles.rbac.authorization.k8s.io (cluster-wide)"
        );
        let p = Permission {
            verb: "get",
            group: "",
            resource: "secrets",
            namespace: Some("federator-sync".into()),
        };
        assert_eq!(p.to_string(), "get secrets in namespace federator-sync");
    }
}
