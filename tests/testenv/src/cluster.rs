//! One simulated cluster ([`TestCluster`]): its API server, controllers and the helpers tests
//! write objects with.

use std::path::Path;

use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Api, Resource};
use serde_json::json;

use crate::TestEnvError;
use crate::apiserver::ApiServer;
use crate::controllers::Controllers;

/// Field manager of everything the environment writes.
pub(crate) const MANAGER: &str = "federator-testenv";

/// One simulated cluster: a real kube-apiserver with its kubeconfig and a client.
pub struct TestCluster {
    pub(crate) name: String,
    pub(crate) server: ApiServer,
    pub(crate) controllers: Option<Controllers>,
}

impl std::fmt::Debug for TestCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCluster")
            .field("name", &self.name)
            .field("port", &self.server.port)
            .finish()
    }
}

impl TestCluster {
    /// The cluster's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A client with admin rights.
    pub fn client(&self) -> kube::Client {
        self.server.client.clone()
    }

    /// Path of a kubeconfig for the cluster (admin token, CA of its serving certificate).
    pub fn kubeconfig(&self) -> &Path {
        &self.server.kubeconfig
    }

    /// The kubeconfig's text.
    pub fn kubeconfig_text(&self) -> Result<String, TestEnvError> {
        std::fs::read_to_string(&self.server.kubeconfig).map_err(TestEnvError::io(format!(
            "reading {}",
            self.server.kubeconfig.display()
        )))
    }

    /// The loopback port the API server listens on.
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// Stops the API server (its storage stays), as when a cluster's control plane fails.
    pub fn stop(&mut self) {
        self.server.process.stop();
    }

    /// Starts a stopped API server again, same port and certificates, and waits until ready.
    pub async fn restart(&mut self) -> Result<(), TestEnvError> {
        self.server.restart().await
    }

    /// Whether the API server process is still running.
    pub fn is_running(&mut self) -> bool {
        self.server.process.check_running().is_ok()
    }

    /// Fails, with the log's tail, when one of the cluster's controllers (started by
    /// [`TestEnv::start_with_controllers`]) has exited.
    pub fn check_controllers(&mut self) -> Result<(), TestEnvError> {
        self.controllers
            .as_mut()
            .map_or(Ok(()), Controllers::check_running)
    }

    /// Creates or updates an object by server-side apply (namespaced objects need
    /// `metadata.namespace`).
    pub async fn apply<K: Object>(&self, object: &K) -> Result<K, TestEnvError> {
        self.server_side_apply(object, false).await
    }

    /// Replaces an object's status (as a controller or cloud provider would).
    pub async fn apply_status<K: Object>(&self, object: &K) -> Result<K, TestEnvError> {
        self.server_side_apply(object, true).await
    }

    async fn server_side_apply<K: Object>(
        &self,
        object: &K,
        status: bool,
    ) -> Result<K, TestEnvError> {
        let (api, name) = self.api_for(object);
        let params = PatchParams::apply(MANAGER).force();
        let patch = Patch::Apply(object);
        let result = if status {
            api.patch_status(&name, &params, &patch).await
        } else {
            api.patch(&name, &params, &patch).await
        };
        let what = if status {
            "applying status of"
        } else {
            "applying"
        };
        let applied = result.map_err(TestEnvError::kube(
            &self.name,
            format!("{what} {} {name}", K::kind(&())),
        ))?;
        typed(&self.name, applied)
    }

    /// Deletes an object; deleting one that is already gone is fine.
    pub async fn delete<K: Object>(&self, object: &K) -> Result<(), TestEnvError> {
        let (api, name) = self.api_for(object);
        match api.delete(&name, &Default::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(err) => Err(TestEnvError::kube(
                &self.name,
                format!("deleting {} {name}", K::kind(&())),
            )(err)),
        }
    }

    /// Creates namespace `name` if it does not exist.
    /// (A create, not an apply: applying again would drop labels others set on it since.)
    pub async fn create_namespace(&self, name: &str) -> Result<(), TestEnvError> {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client());
        match api
            .create(&Default::default(), &crate::objects::namespace(name))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(err) => Err(TestEnvError::kube(
                &self.name,
                format!("creating namespace {name}"),
            )(err)),
        }
    }

    /// Labels `istio-system` (creating it when missing) with `topology.istio.io/network`, as
    /// Istio's multi-network install does: Istio's own record of the cluster's network.
    pub async fn label_network(&self, network: &str) -> Result<(), TestEnvError> {
        self.apply_json(&json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": "istio-system",
                "labels": {"topology.istio.io/network": network},
            },
        }))
        .await
        .map(|_| ())
    }

    /// Publishes `ip` as the load-balancer address of the east-west gateway Service (creating
    /// `istio-system` and the Service when missing), as a cloud provider would.
    pub async fn set_gateway_address(&self, ip: &str) -> Result<(), TestEnvError> {
        self.create_namespace("istio-system").await?;
        let gateway = crate::objects::gateway_service();
        self.apply(&gateway).await?;
        let status = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": gateway.metadata.name, "namespace": "istio-system"},
            "status": {"loadBalancer": {"ingress": [{"ip": ip}]}},
        });
        let api: Api<k8s_openapi::api::core::v1::Service> =
            Api::namespaced(self.client(), "istio-system");
        api.patch_status(
            gateway.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(status),
        )
        .await
        .map_err(TestEnvError::kube(
            &self.name,
            "publishing the gateway address",
        ))?;
        Ok(())
    }

    /// An API for `object`'s kind, in its namespace when it has one, and its name.
    fn api_for<K: Object>(&self, object: &K) -> (Api<DynamicObject>, String) {
        let resource = ApiResource::erase::<K>(&());
        let api = match object.meta().namespace.as_deref() {
            Some(ns) => Api::namespaced_with(self.client(), ns, &resource),
            None => Api::all_with(self.client(), &resource),
        };
        (api, object.meta().name.clone().unwrap_or_default())
    }
}

/// What the cluster helpers accept: any typed Kubernetes object.
pub trait Object:
    Resource<DynamicType = ()>
    + Clone
    + serde::Serialize
    + serde::de::DeserializeOwned
    + std::fmt::Debug
{
}

impl<K> Object for K where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug
{
}

fn typed<K: Object>(cluster: &str, object: DynamicObject) -> Result<K, TestEnvError> {
    let value = serde_json::to_value(object)
        .map_err(|e| TestEnvError::Other(format!("cluster {cluster}: {e}")))?;
    serde_json::from_value(value)
        .map_err(|e| TestEnvError::Other(format!("cluster {cluster}: {e}")))
}
