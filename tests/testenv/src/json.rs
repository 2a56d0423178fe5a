//! Objects of any kind as JSON (Istio's included, found by discovery): apply, read, delete
//! and dry-run create, for tests and the Istio harness.

use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams};

use crate::TestEnvError;
use crate::cluster::{MANAGER, TestCluster};

impl TestCluster {
    /// Creates or updates an object given as JSON (any kind the server knows, Istio's
    /// included) by server-side apply, and returns it as stored.
    pub async fn apply_json(
        &self,
        object: &serde_json::Value,
    ) -> Result<serde_json::Value, TestEnvError> {
        apply_json_with(&self.client(), self.name(), object).await
    }

    /// Reads an object like `object` (its `apiVersion`, `kind`, `metadata.namespace` and
    /// `metadata.name`; the rest is ignored), `None` when it does not exist.
    pub async fn get_json(
        &self,
        object: &serde_json::Value,
    ) -> Result<Option<serde_json::Value>, TestEnvError> {
        get_json_with(&self.client(), self.name(), object).await
    }

    /// Deletes an object given as JSON; deleting one that is already gone is fine.
    pub async fn delete_json(&self, object: &serde_json::Value) -> Result<(), TestEnvError> {
        let (api, name, kind) = dynamic_api(&self.client(), self.name(), object).await?;
        match api.delete(&name, &Default::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(err) => Err(TestEnvError::kube(
                self.name(),
                format!("deleting {kind} {name}"),
            )(err)),
        }
    }

    /// Creates `object` with `dryRun=All`: the API server runs every admission step (schema,
    /// CEL rules, validating webhooks) and stores nothing. `Err` holds the server's message.
    pub async fn dry_run_create(&self, object: &serde_json::Value) -> Result<(), String> {
        dry_run_create_with(&self.client(), self.name(), object).await
    }
}

/// Server-side applies a JSON object with `client` (of cluster `cluster`).
pub(crate) async fn apply_json_with(
    client: &kube::Client,
    cluster: &str,
    object: &serde_json::Value,
) -> Result<serde_json::Value, TestEnvError> {
    let (api, name, kind) = dynamic_api(client, cluster, object).await?;
    let applied = api
        .patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(object),
        )
        .await
        .map_err(TestEnvError::kube(
            cluster,
            format!("applying {kind} {name}"),
        ))?;
    serde_json::to_value(applied).map_err(|e| TestEnvError::Other(e.to_string()))
}

/// Reads the object `object` names, `None` when it does not exist.
pub(crate) async fn get_json_with(
    client: &kube::Client,
    cluster: &str,
    object: &serde_json::Value,
) -> Result<Option<serde_json::Value>, TestEnvError> {
    let (api, name, kind) = dynamic_api(client, cluster, object).await?;
    let found = api.get_opt(&name).await.map_err(TestEnvError::kube(
        cluster,
        format!("reading {kind} {name}"),
    ))?;
    found
        .map(serde_json::to_value)
        .transpose()
        .map_err(|e| TestEnvError::Other(e.to_string()))
}

/// Creates a JSON object with `dryRun=All`; `Err` holds the API server's message.
pub(crate) async fn dry_run_create_with(
    client: &kube::Client,
    cluster: &str,
    object: &serde_json::Value,
) -> Result<(), String> {
    let (api, _, _) = dynamic_api(client, cluster, object)
        .await
        .map_err(|e| e.to_string())?;
    let object: DynamicObject =
        serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
    let params = kube::api::PostParams {
        dry_run: true,
        field_manager: Some(MANAGER.into()),
    };
    match api.create(&params, &object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) => Err(status.message),
        Err(err) => Err(err.to_string()),
    }
}

/// An API for a JSON object's kind (found by discovery), its name and its kind.
async fn dynamic_api(
    client: &kube::Client,
    cluster: &str,
    object: &serde_json::Value,
) -> Result<(Api<DynamicObject>, String, String), TestEnvError> {
    let field = |path: &str| object.pointer(path).and_then(serde_json::Value::as_str);
    let (api_version, kind, name) = match (
        field("/apiVersion"),
        field("/kind"),
        field("/metadata/name"),
    ) {
        (Some(v), Some(k), Some(n)) => (v, k, n),
        _ => {
            return Err(TestEnvError::Other(format!(
                "cluster {cluster}: an object needs apiVersion, kind and metadata.name: {object}"
            )));
        }
    };
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
    let (resource, _) =
        kube::discovery::pinned_kind(client, &gvk)
            .await
            .map_err(TestEnvError::kube(
                cluster,
                format!("discovering {api_version} {kind}"),
            ))?;
    let api = match field("/metadata/namespace") {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    Ok((api, name.to_owned(), kind.to_owned()))
}
