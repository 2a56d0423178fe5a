//! The objects that give federator least-privilege access to a dependent cluster, and the
//! permissions whoever creates them needs.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::rules::{Permission, REMOTE_CLUSTER_RULES, REMOTE_SYNC_RULES};

/// Name of the ServiceAccount (and of its ClusterRole, Role and bindings).
pub const REMOTE_ACCOUNT: &str = "federator-remote";

/// Name of the Secret the cluster's token controller fills with the account's token.
pub const REMOTE_TOKEN_SECRET: &str = "federator-remote-token";

const RBAC: &str = "rbac.authorization.k8s.io";

/// federator's access to one dependent cluster, everything in its sync namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteAccess {
    /// The namespace federator writes to (and where the account lives).
    pub sync_namespace: String,
}

/// Every object federator's access consists of.
#[derive(Debug, Clone)]
pub struct RemoteObjects {
    /// The sync namespace.
    pub namespace: Namespace,
    /// `federator-remote`.
    pub service_account: ServiceAccount,
    /// The long-lived token Secret (`kubernetes.io/service-account-token`).
    pub token: Secret,
    /// Cluster-wide reads.
    pub cluster_role: ClusterRole,
    /// Binds the ClusterRole to the account.
    pub cluster_role_binding: ClusterRoleBinding,
    /// Istio objects in the sync namespace.
    pub role: Role,
    /// Binds the Role to the account.
    pub role_binding: RoleBinding,
}

impl RemoteAccess {
    fn meta(&self, name: &str, namespaced: bool) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_owned()),
            namespace: namespaced.then(|| self.sync_namespace.clone()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_owned(),
                "federator".to_owned(),
            )])),
            ..Default::default()
        }
    }

    /// Name of the ClusterRole and its binding, `federator-remote:<sync namespace>`: one per
    /// sync namespace, so that two installations in one cluster never rebind each other's.
    pub fn cluster_role_name(&self) -> String {
        format!("{REMOTE_ACCOUNT}:{}", self.sync_namespace)
    }

    fn subject(&self) -> Subject {
        Subject {
            kind: "ServiceAccount".into(),
            name: REMOTE_ACCOUNT.into(),
            namespace: Some(self.sync_namespace.clone()),
            ..Default::default()
        }
    }

    /// The objects to apply.
    pub fn objects(&self) -> RemoteObjects {
        let mut token = Secret {
            metadata: self.meta(REMOTE_TOKEN_SECRET, true),
            type_: Some("kubernetes.io/service-account-token".into()),
            ..Default::default()
        };
        token.metadata.annotations = Some(BTreeMap::from([(
            "kubernetes.io/service-account.name".to_owned(),
            REMOTE_ACCOUNT.to_owned(),
        )]));
        let cluster_role = self.cluster_role_name();
        let role_ref = |kind: &str, name: &str| RoleRef {
            api_group: RBAC.into(),
            kind: kind.into(),
            name: name.into(),
        };
        RemoteObjects {
            namespace: Namespace {
                metadata: ObjectMeta {
                    name: Some(self.sync_namespace.clone()),
                    ..Default::default()
                },
                ..Default::default()
            },
            service_account: ServiceAccount {
                metadata: self.meta(REMOTE_ACCOUNT, true),
                ..Default::default()
            },
            token,
            cluster_role: ClusterRole {
                metadata: self.meta(&cluster_role, false),
                rules: Some(
                    REMOTE_CLUSTER_RULES
                        .iter()
                        .map(|r| r.policy_rule())
                        .collect(),
                ),
                ..Default::default()
            },
            cluster_role_binding: ClusterRoleBinding {
                metadata: self.meta(&cluster_role, false),
                role_ref: role_ref("ClusterRole", &cluster_role),
                subjects: Some(vec![self.subject()]),
            },
            role: Role {
                metadata: self.meta(REMOTE_ACCOUNT, true),
                rules: Some(REMOTE_SYNC_RULES.iter().map(|r| r.policy_rule()).collect()),
            },
            role_binding: RoleBinding {
                metadata: self.meta(REMOTE_ACCOUNT, true),
                role_ref: role_ref("Role", REMOTE_ACCOUNT),
                subjects: Some(vec![self.subject()]),
            },
        }
    }

    /// What the person running `cluster add --create-service-account` must be allowed,
    /// besides holding what the roles grant (see [`RemoteAccess::granted`]): create and patch
    /// every object (server-side apply needs both) and read the token; the namespace's
    /// creation only when it is missing.
    pub fn required(&self, namespace_exists: bool) -> Vec<Permission> {
        let ns = Some(self.sync_namespace.as_str());
        let mut needed = Vec::new();
        let mut both = |group: &'static str, resource: &'static str, namespace: Option<&str>| {
            for verb in ["create", "patch"] {
                needed.push(Permission {
                    verb,
                    group,
                    resource,
                    namespace: namespace.map(str::to_owned),
                });
            }
        };
        both("", "serviceaccounts", ns);
        both("", "secrets", ns);
        both(RBAC, "clusterroles", None);
        both(RBAC, "clusterrolebindings", None);
        both(RBAC, "roles", ns);
        both(RBAC, "rolebindings", ns);
        if !namespace_exists {
            needed.push(Permission {
                verb: "create",
                group: "",
                resource: "namespaces",
                namespace: None,
            });
        }
        needed.push(Permission {
            verb: "get",
            group: "",
            resource: "secrets",
            namespace: ns.map(str::to_owned),
        });
        needed
    }

    /// What the ClusterRole (`cluster_wide`) or the Role grants. RBAC lets only someone who
    /// holds all of it create the role and its binding, unless they may `escalate` and
    /// `bind` such roles ([`RemoteAccess::escalation`]).
    pub fn granted(&self, cluster_wide: bool) -> Vec<Permission> {
        if cluster_wide {
            REMOTE_CLUSTER_RULES
                .iter()
                .flat_map(|r| r.permissions(None))
                .collect()
        } else {
            let ns = Some(self.sync_namespace.as_str());
            REMOTE_SYNC_RULES
                .iter()
                .flat_map(|r| r.permissions(ns))
                .collect()
        }
    }

    /// `escalate` and `bind` on ClusterRoles (`cluster_wide`) or on Roles in the sync
    /// namespace: with both, granting needs no holding.
    pub fn escalation(&self, cluster_wide: bool) -> Vec<Permission> {
        let (resource, namespace) = if cluster_wide {
            ("clusterroles", None)
        } else {
            ("roles", Some(self.sync_namespace.clone()))
        };
        ["escalate", "bind"]
            .into_iter()
            .map(|verb| Permission {
                verb,
                group: RBAC,
                resource,
                namespace: namespace.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> RemoteAccess {
        RemoteAccess {
            sync_namespace: "federator-sync".into(),
        }
    }

    #[test]
    fn the_bindings_name_the_account_in_the_sync_namespace() {
        let objects = access().objects();
        for subjects in [
            &objects.cluster_role_binding.subjects,
            &objects.role_binding.subjects,
        ] {
            let subject = &subjects.as_ref().unwrap()[0];
            assert_eq!(subject.name, REMOTE_ACCOUNT);
            assert_eq!(subject.namespace.as_deref(), Some("federator-sync"));
        }
        assert_eq!(objects.cluster_role_binding.role_ref.kind, "ClusterRole");
        assert_eq!(objects.role_binding.role_ref.kind, "Role");
        assert_eq!(
            objects.role.metadata.namespace.as_deref(),
            Some("federator-sync")
        );
        assert!(objects.cluster_role.metadata.namespace.is_none());
        let annotations = objects.token.metadata.annotations.unwrap();
        assert_eq!(
            annotations["kubernetes.io/service-account.name"],
            REMOTE_ACCOUNT
        );
    }

    #[test]
    fn creating_the_namespace_is_required_only_when_it_is_missing() {
        let creates_ns = |exists| {
            access()
                .required(exists)
                .iter()
                .any(|p| p.resource == "namespaces" && p.verb == "create")
        };
        assert!(creates_ns(false));
        assert!(!creates_ns(true));
        let required = access().required(true);
        assert!(required.iter().any(
            |p| p.to_string() == "create clusterroles.rbac.authorization.k8s.io (cluster-wide)"
        ));
        assert!(
            access().granted(false).iter().any(|p| p.to_string()
                == "delete serviceentries.networking.istio.io in namespace federator-sync"),
            "granting a permission needs it"
        );
        assert!(access().granted(true).iter().all(|p| p.namespace.is_none()));
        let escalate: Vec<String> = access()
            .escalation(false)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            escalate,
            [
                "escalate roles.rbac.authorization.k8s.io in namespace federator-sync",
                "bind roles.rbac.authorization.k8s.io in namespace federator-sync"
            ]
        );
    }
}
