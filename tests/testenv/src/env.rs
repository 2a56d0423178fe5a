use std::path::{Path, PathBuf};

use futures_util::future::try_join_all;

use crate::apiserver;
use crate::binaries::Binaries;
use crate::cluster::TestCluster;
use crate::controllers;
use crate::etcd::{self, Etcd};
use crate::{TestEnvError, crds};

impl std::fmt::Debug for TestEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEnv")
            .field("dir", &self.path)
            .field("clusters", &self.clusters)
            .finish()
    }
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
        let crds = crds::load(
            &Binaries::repo_root().join("crds"),
            &binaries.istio_crds,
            &binaries.mcs_crds,
        )?;
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
