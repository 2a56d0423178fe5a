use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams};

use crate::TestEnvError;

const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(60);

/// Every CRD manifest below `dir` (recursively).
pub(crate) fn load(dir: &Path) -> Result<Vec<CustomResourceDefinition>, TestEnvError> {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let entries =
            std::fs::read_dir(&d).map_err(TestEnvError::io(format!("reading {}", d.display())))?;
        for entry in entries {
            let path = entry
                .map_err(TestEnvError::io(format!("reading {}", d.display())))?
                .path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .map_err(TestEnvError::io(format!("reading {}", path.display())))?;
            serde_saphyr::from_str(&text)
                .map_err(|e| TestEnvError::Other(format!("{} is not a CRD: {e}", path.display())))
        })
        .collect()
}

/// Applies `crds` to a cluster and waits until each is established.
pub(crate) async fn install(
    cluster: &str,
    client: &kube::Client,
    crds: &[CustomResourceDefinition],
) -> Result<(), TestEnvError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply("federator-testenv").force();
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &params, &Patch::Apply(crd))
            .await
            .map_err(TestEnvError::kube(
                cluster,
                format!("installing CRD {name}"),
            ))?;
    }
    let started = Instant::now();
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        loop {
            let current = api
                .get(&name)
                .await
                .map_err(TestEnvError::kube(cluster, format!("reading CRD {name}")))?;
            let established = current
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                break;
            }
            if started.elapsed() > ESTABLISH_TIMEOUT {
                return Err(TestEnvError::Other(format!(
                    "cluster {cluster}: CRD {name} not established after {ESTABLISH_TIMEOUT:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}
