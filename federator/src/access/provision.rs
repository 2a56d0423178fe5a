//! Creates federator's access in a dependent cluster and reads its token: first checks, with
//! SelfSubjectAccessReviews, that the caller may do all of it (so a refusal changes
//! nothing and names every missing permission), then server-side applies the objects.

use std::time::Duration;

use backon::{ConstantBuilder, Retryable};
use futures::stream::{self, StreamExt};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Client, Resource};

use super::remote::{REMOTE_ACCOUNT, REMOTE_TOKEN_SECRET, RemoteAccess};
use super::rules::Permission;

/// Field manager of what `cluster add` applies.
const MANAGER: &str = "federator-cli";

/// How long the cluster's token controller may take to fill the token Secret.
const TOKEN_WAIT: Duration = Duration::from_secs(30);

/// Why federator's access could not be set up; each names the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The caller lacks permissions; nothing was changed.
    #[error(
        "cluster {cluster}: you may not create federator's access, nothing was changed; \
         missing permissions: {}",
        .missing.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    Missing {
        /// The cluster (context) name.
        cluster: String,
        /// Every permission the caller lacks.
        missing: Vec<Permission>,
    },
    /// The API server refused or failed a request.
    #[error("cluster {cluster}: {action}: {source}")]
    Kube {
        /// The cluster (context) name.
        cluster: String,
        /// What was being done.
        action: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Applying one object failed after the permission check passed.
    #[error(
        "cluster {cluster}: applying {object}: {source}{hint}; already applied: {done} \
         (no ServiceAccount token was made unless both are listed)",
        hint = conflict_hint(source),
        done = if applied.is_empty() { "nothing".to_owned() } else { applied.join(", ") }
    )]
    Apply {
        /// The cluster (context) name.
        cluster: String,
        /// The object that failed (kind and name).
        object: String,
        /// The objects applied before it, in order.
        applied: Vec<String>,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The Secret named like the token is not a token of the account.
    #[error(
        "cluster {cluster}: Secret {namespace}/{REMOTE_TOKEN_SECRET} is not a \
         kubernetes.io/service-account-token Secret of ServiceAccount {REMOTE_ACCOUNT}; \
         refusing to register its content"
    )]
    NotAToken {
        /// The cluster (context) name.
        cluster: String,
        /// The sync namespace.
        namespace: String,
    },
    /// The token Secret stayed empty.
    #[error(
        "cluster {cluster}: Secret {namespace}/{REMOTE_TOKEN_SECRET} got no token within {}s: \
         the cluster's token controller (kube-controller-manager) did not fill it",
        TOKEN_WAIT.as_secs()
    )]
    NoToken {
        /// The cluster (context) name.
        cluster: String,
        /// The sync namespace.
        namespace: String,
    },
}

/// For a conflict: who else manages the object, and what to do.
fn conflict_hint(error: &kube::Error) -> &'static str {
    match error {
        kube::Error::Api(status) if status.code == 409 => {
            " (another manager owns these fields, such as the Helm chart's remote mode: \
             register with --use-service-account instead)"
        }
        _ => "",
    }
}

fn kube_error(cluster: &str, action: String) -> impl FnOnce(kube::Error) -> ProvisionError + '_ {
    move |source| ProvisionError::Kube {
        cluster: cluster.to_owned(),
        action,
        source,
    }
}

/// Creates (or updates) every object of `access` in `cluster` and returns the account's token.
pub async fn provision(
    client: &Client,
    cluster: &str,
    access: &RemoteAccess,
) -> Result<String, ProvisionError> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    // A namespace one may not read is taken as there (it usually is): creating it is then
    // neither required nor tried, and if it is missing after all, applying the Role says so.
    let namespace_exists = match namespaces.get_opt(&access.sync_namespace).await {
        Ok(found) => found.is_some(),
        Err(kube::Error::Api(status)) if status.code == 403 => true,
        Err(err) => {
            return Err(kube_error(
                cluster,
                format!("reading namespace {}", access.sync_namespace),
            )(err));
        }
    };
    let mut needed = access.required(namespace_exists);
    for cluster_wide in [true, false] {
        // Granting needs holding what is granted, unless one may escalate and bind.
        if !missing_permissions(client, cluster, access.escalation(cluster_wide))
            .await?
            .is_empty()
        {
            needed.extend(access.granted(cluster_wide));
        }
    }
    let missing = missing_permissions(client, cluster, needed).await?;
    if !missing.is_empty() {
        return Err(ProvisionError::Missing {
            cluster: cluster.to_owned(),
            missing,
        });
    }
    let objects = access.objects();
    let mut applied = Applied {
        client,
        cluster,
        done: Vec::new(),
    };
    if !namespace_exists {
        applied.apply(&objects.namespace).await?;
    }
    // Roles and bindings before the account and its token: when a step is refused after
    // all (an admission policy, an authorizer RBAC's escalation check does not consult),
    // no credential has been made.
    applied.apply(&objects.cluster_role).await?;
    applied.apply(&objects.role).await?;
    applied.apply(&objects.cluster_role_binding).await?;
    applied.apply(&objects.role_binding).await?;
    applied.apply(&objects.service_account).await?;
    applied.apply(&objects.token).await?;
    read_token(client, cluster, access).await
}

/// What can be server-side applied here: any typed Kubernetes object.
trait Applicable: Resource<DynamicType = ()> + serde::Serialize {}

impl<K: Resource<DynamicType = ()> + serde::Serialize> Applicable for K {}

/// Applies objects one by one and remembers which, for the error when one fails.
struct Applied<'a> {
    client: &'a Client,
    cluster: &'a str,
    done: Vec<String>,
}

impl Applied<'_> {
    async fn apply<K: Applicable>(&mut self, object: &K) -> Result<(), ProvisionError> {
        let what = format!(
            "{} {}",
            K::kind(&()),
            object.meta().name.as_deref().unwrap_or_default()
        );
        match apply(self.client, object).await {
            Ok(()) => {
                self.done.push(what);
                Ok(())
            }
            Err(source) => Err(ProvisionError::Apply {
                cluster: self.cluster.to_owned(),
                object: what,
                applied: self.done.clone(),
                source,
            }),
        }
    }
}

/// The permissions of `required` the caller does not have.
async fn missing_permissions(
    client: &Client,
    cluster: &str,
    required: Vec<Permission>,
) -> Result<Vec<Permission>, ProvisionError> {
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let answers: Vec<_> = stream::iter(required)
        .map(|permission| {
            let reviews = reviews.clone();
            async move {
                let review = SelfSubjectAccessReview {
                    spec: SelfSubjectAccessReviewSpec {
                        resource_attributes: Some(ResourceAttributes {
                            verb: Some(permission.verb.into()),
                            group: Some(permission.group.into()),
                            resource: Some(permission.resource.into()),
                            namespace: permission.namespace.clone(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                let answer = reviews.create(&PostParams::default(), &review).await;
                (permission, answer)
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let mut missing = Vec::new();
    for (permission, answer) in answers {
        let review = answer.map_err(kube_error(
            cluster,
            format!("asking whether you may {permission}"),
        ))?;
        if !review.status.is_some_and(|s| s.allowed) {
            missing.push(permission);
        }
    }
    missing.sort();
    Ok(missing)
}

/// Server-side applies `object` (in its namespace, if any), without forcing: a field another
/// manager owns (the chart's remote mode, another tool) is a conflict, not taken over.
async fn apply<K: Applicable>(client: &Client, object: &K) -> Result<(), kube::Error> {
    let meta = object.meta();
    let name = meta.name.clone().unwrap_or_default();
    let resource = ApiResource::erase::<K>(&());
    let api: Api<DynamicObject> = match &meta.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let mut body = serde_json::to_value(object).map_err(kube::Error::SerdeError)?;
    body["apiVersion"] = K::api_version(&()).into();
    body["kind"] = K::kind(&()).into();
    api.patch(&name, &PatchParams::apply(MANAGER), &Patch::Apply(body))
        .await?;
    Ok(())
}

/// The token the cluster's token controller wrote into `federator-remote-token` (waiting
/// for it, up to 30 s, after a fresh create).
pub async fn read_token(
    client: &Client,
    cluster: &str,
    access: &RemoteAccess,
) -> Result<String, ProvisionError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &access.sync_namespace);
    let empty = || ProvisionError::NoToken {
        cluster: cluster.to_owned(),
        namespace: access.sync_namespace.clone(),
    };
    let attempt = || async {
        let secret = secrets.get(REMOTE_TOKEN_SECRET).await.map_err(kube_error(
            cluster,
            format!("reading Secret {REMOTE_TOKEN_SECRET}"),
        ))?;
        let of_account = secret
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("kubernetes.io/service-account.name"))
            .is_some_and(|name| name == REMOTE_ACCOUNT);
        if secret.type_.as_deref() != Some("kubernetes.io/service-account-token") || !of_account {
            return Err(ProvisionError::NotAToken {
                cluster: cluster.to_owned(),
                namespace: access.sync_namespace.clone(),
            });
        }
        secret
            .data
            .and_then(|mut data| data.remove("token"))
            .and_then(|token| String::from_utf8(token.0).ok())
            .filter(|token| !token.is_empty())
            .ok_or_else(empty)
    };
    let interval = Duration::from_millis(250);
    let times = usize::try_from(TOKEN_WAIT.as_millis() / interval.as_millis()).unwrap_or(120);
    attempt
        .retry(
            ConstantBuilder::default()
                .with_delay(interval)
                .with_max_times(times),
        )
        .when(|err| matches!(err, ProvisionError::NoToken { .. }))
        .await
}
