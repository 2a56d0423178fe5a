use std::path::{Path, PathBuf};

use futures_util::future::try_join_all;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Api, Resource};
use serde_json::json;

use crate::apiserver::{self, ApiServer};
use crate::binaries::Binaries;
use crate::controllers::{self, Controllers};
use crate::etcd::{self, Etcd};
use crate::{TestEnvError, crds};

/// Field manager of everything the environment writes.
pub(crate) const MANAGER: &str = "federator-testenv";

/// One simulated cluster: a real kube-apiserver with its kubeconfig and a client.
pub struct TestCluster {
    name: String,
    server: ApiServer,
    controllers: Option<Controllers>,
}

impl std::fmt::Debug for TestCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCluster")
            .field("name", &self.name)
            .field("port", &self.server.port)
            .finish()
    }
}

impl std::fmt::Debug for TestEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEnv")
            .field("dir", &self.path)
            .field("clusters", &self.clusters)
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

/// A set of simulated clusters sharing one etcd, torn down on drop.
pub struct TestEnv {
    clusters: Vec<TestCluster>,
    etcd: Etcd,
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl TestEnv {
    /// `host:port` of the etcd every API server stores in: tests of federator's etcd store
    /// use it too, under prefixes of their own.
    pub fn etcd_endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.etcd.port)
    }

    /// Starts one kube-apiserver per name (in parallel) in a fresh temporary folder, installs
    /// the CRDs from `crds/`, and returns once every server is ready.
    pub async fn start(names: &[&str]) -> Result<Self, TestEnvError> {
        Self::start_in_temporary(names, false).await
    }

    /// Like [`TestEnv::start`], and each cluster also runs the real kube-controller-manager,
    /// kube-scheduler and kwok (see [`crate::controllers`]): Deployments get Pods on the
    /// kwok Nodes a test adds ([`crate::objects::kwok_node`]) and the real EndpointSlice
    /// controller writes the slices.
    pub async fn start_with_controllers(names: &[&str]) -> Result<Self, TestEnvError> {
        Self::start_in_temporary(names, true).await
    }

    async fn start_in_temporary(names: &[&str], controllers: bool) -> Result<Self, TestEnvError> {
        let dir = tempfile::Builder::new()
            .prefix("federator-testenv-")
            .tempdir()
            .map_err(TestEnvError::io("creating a temporary folder"))?;
        let path = dir.path().to_owned();
        let mut env = Self::start_all(&Binaries::locate()?, &path, names, controllers).await?;
        env.dir = Some(dir);
        Ok(env)
    }

    /// Like [`TestEnv::start`] (or [`TestEnv::start_with_controllers`] when `controllers`)
    /// but in `dir`, which is kept afterwards (for the demo).
    pub async fn start_in(
        dir: &Path,
        names: &[&str],
        controllers: bool,
    ) -> Result<Self, TestEnvError> {
        Self::start_all(&Binaries::locate()?, dir, names, controllers).await
    }

    /// Like [`TestEnv::start_in`] with the given binaries (no controllers).
    pub async fn start_with(
        binaries: &Binaries,
        dir: &Path,
        names: &[&str],
    ) -> Result<Self, TestEnvError> {
        Self::start_all(binaries, dir, names, false).await
    }

    async fn start_all(
        binaries: &Binaries,
        dir: &Path,
        names: &[&str],
        with_controllers: bool,
    ) -> Result<Self, TestEnvError> {
        let crds = crds::load(&Binaries::repo_root().join("crds"), &binaries.istio_crds)?;
        std::fs::create_dir_all(dir)
            .map_err(TestEnvError::io(format!("creating {}", dir.display())))?;
        let etcd = etcd::start(&binaries.etcd, dir).await?;
        let token = apiserver::random_token()?;
        let token_file = dir.join("tokens.csv");
        std::fs::write(&token_file, format!("{token},admin,admin,system:masters\n"))
            .map_err(TestEnvError::io("writing the token file"))?;
        let sa_key = dir.join("service-account.key");
        let sa_public_key = dir.join("service-account.pub");
        apiserver::write_service_account_keys(&sa_key, &sa_public_key)?;
        let crds = &crds;
        let starts = names.iter().map(|name| {
            let spec = apiserver::Spec {
                binary: &binaries.kube_apiserver,
                cluster: name,
                dir,
                etcd_url: &etcd.url,
                token_file: &token_file,
                token: &token,
                service_account_key: &sa_key,
                service_account_public_key: &sa_public_key,
            };
            let sa_key = &sa_key;
            async move {
                let server = apiserver::start(spec).await?;
                crds::install(name, &server.client, crds).await?;
                let controllers = if with_controllers {
                    Some(controllers::start(&controllers::Spec {
                        binaries,
                        cluster: name,
                        dir,
                        kubeconfig: &server.kubeconfig,
                        service_account_key: sa_key,
                        root_ca: &server.ca,
                    })?)
                } else {
                    None
                };
                Ok::<_, TestEnvError>(TestCluster {
                    name: (*name).to_owned(),
                    server,
                    controllers,
                })
            }
        });
        let clusters = try_join_all(starts).await?;
        Ok(Self {
            clusters,
            etcd,
            dir: None,
            path: dir.to_owned(),
        })
    }

    /// The cluster called `name`.
    ///
    /// # Panics
    /// When there is no such cluster: a mistake in the test itself.
    pub fn cluster(&self, name: &str) -> &TestCluster {
        self.clusters
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no cluster {name} in this test environment"))
    }

    /// The cluster called `name`, to stop or restart it.
    ///
    /// # Panics
    /// When there is no such cluster: a mistake in the test itself.
    pub fn cluster_mut(&mut self, name: &str) -> &mut TestCluster {
        self.clusters
            .iter_mut()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no cluster {name} in this test environment"))
    }

    /// Every cluster, in the order given to `start`.
    pub fn clusters(&self) -> &[TestCluster] {
        &self.clusters
    }

    /// The folder with kubeconfigs and logs.
    pub fn dir(&self) -> &Path {
        &self.path
    }

    /// Every loopback port the environment listens on.
    pub fn ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self.clusters.iter().map(|c| c.port()).collect();
        ports.push(self.etcd.port);
        ports
    }

    /// Process ids of every server (for tests that check nothing is left behind).
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .clusters
            .iter()
            .flat_map(|c| {
                let controllers = c.controllers.iter().flat_map(|c| &c.processes);
                std::iter::once(c.server.process.id()).chain(controllers.map(|p| p.id()))
            })
            .collect();
        pids.push(self.etcd.process.id());
        pids
    }

    /// Stops every process now (dropping does the same).
    pub fn stop(&mut self) {
        for cluster in &mut self.clusters {
            if let Some(controllers) = cluster.controllers.as_mut() {
                controllers.stop();
            }
            cluster.server.process.stop();
        }
        self.etcd.process.stop();
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        self.stop();
        if std::env::var_os("FEDERATOR_TESTENV_KEEP").is_some()
            && let Some(dir) = self.dir.take()
        {
            eprintln!("testenv: kept {}", dir.keep().display());
        }
    }
}
