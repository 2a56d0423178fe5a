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

use super::remote::{REMOTE_TOKEN_SECRET, RemoteAccess};
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
    // Unreadable counts as missing: then creating it is required, and checked.
    let namespace_exists = matches!(
        namespaces.get_opt(&access.sync_namespace).await,
        Ok(Some(_))
    );
    let missing = missing_permissions(client, cluster, access.required(namespace_exists)).await?;
    if !missing.is_empty() {
        return Err(ProvisionError::Missing {
            cluster: cluster.to_owned(),
            missing,
        });
    }
    let objects = access.objects();
    if !namespace_exists {
        apply(client, cluster, &objects.namespace).await?;
    }
    apply(client, cluster, &objects.service_account).await?;
    apply(client, cluster, &objects.token).await?;
    apply(client, cluster, &objects.cluster_role).await?;
    apply(client, cluster, &objects.cluster_role_binding).await?;
    apply(client, cluster, &objects.role).await?;
    apply(client, cluster, &objects.role_binding).await?;
    read_token(client, cluster, access).await
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

/// Server-side applies `object` (in its namespace, if any).
async fn apply<K>(client: &Client, cluster: &str, object: &K) -> Result<(), ProvisionError>
where
    K: Resource<DynamicType = ()>
        + serde::Serialize
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let meta = object.meta();
    let name = meta.name.clone().unwrap_or_default();
    let resource = ApiResource::erase::<K>(&());
    let api: Api<DynamicObject> = match &meta.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let mut body = serde_json::to_value(object).map_err(|e| ProvisionError::Kube {
        cluster: cluster.to_owned(),
        action: format!("encoding {} {name}", K::kind(&())),
        source: kube::Error::SerdeError(e),
    })?;
    body["apiVersion"] = K::api_version(&()).into();
    body["kind"] = K::kind(&()).into();
    api.patch(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(body),
    )
    .await
    .map_err(kube_error(
        cluster,
        format!("applying {} {name}", K::kind(&())),
    ))?;
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
