use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::future::try_join_all;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};

use crate::TestEnvError;

const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(60);

/// Every CRD the test clusters get: the federator CRDs below `dir` (recursively), Istio's
/// real CRDs from `istio_crds` (`.cache/istio/crd-all.gen.yaml`, which `setup.sh` copies
/// from the pinned `istio.io/istio` module), and the MCS API's from the folder `mcs_crds`
/// (`.cache/mcs`, from the pinned `sigs.k8s.io/mcs-api` module). Files may hold several
/// YAML documents.
pub(crate) fn load(
    dir: &Path,
    istio_crds: &Path,
    mcs_crds: &Path,
) -> Result<Vec<CustomResourceDefinition>, TestEnvError> {
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
    if !istio_crds.is_file() {
        return Err(TestEnvError::MissingBinary {
            what: "Istio's CRDs",
            path: istio_crds.to_owned(),
            hint: crate::binaries::SETUP_HINT,
        });
    }
    files.push(istio_crds.to_owned());
    for crd in ["serviceexports", "serviceimports"] {
        let path = mcs_crds.join(format!("multicluster.x-k8s.io_{crd}.yaml"));
        if !path.is_file() {
            return Err(TestEnvError::MissingBinary {
                what: "the MCS API's CRDs",
                path,
                hint: crate::binaries::SETUP_HINT,
            });
        }
        files.push(path);
    }
    let mut crds = Vec::new();
    for path in &files {
        crds.extend(load_file(path)?);
    }
    Ok(crds)
}

/// The CRDs in one (possibly multi-document) YAML file; empty documents are skipped.
fn load_file(path: &Path) -> Result<Vec<CustomResourceDefinition>, TestEnvError> {
    let text = std::fs::read_to_string(path)
        .map_err(TestEnvError::io(format!("reading {}", path.display())))?;
    let documents: Vec<Option<CustomResourceDefinition>> = serde_saphyr::from_multiple(&text)
        .map_err(|e| {
            TestEnvError::Other(format!("{} is not a list of CRDs: {e}", path.display()))
        })?;
    Ok(documents.into_iter().flatten().collect())
}

/// Applies all `crds` to a cluster at once, then waits until every one is established.
pub(crate) async fn install(
    cluster: &str,
    client: &kube::Client,
    crds: &[CustomResourceDefinition],
) -> Result<(), TestEnvError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply("federator-testenv").force();
    try_join_all(crds.iter().map(|crd| {
        let (api, params) = (&api, &params);
        async move {
            let name = crd.metadata.name.clone().unwrap_or_default();
            api.patch(&name, params, &Patch::Apply(crd))
                .await
                .map_err(TestEnvError::kube(
                    cluster,
                    format!("installing CRD {name}"),
                ))
        }
    }))
    .await?;
    let started = Instant::now();
    loop {
        let listed = api
            .list(&ListParams::default())
            .await
            .map_err(TestEnvError::kube(cluster, "listing CRDs"))?;
        let established: HashSet<String> = listed
            .items
            .into_iter()
            .filter(|crd| {
                crd.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c.type_ == "Established" && c.status == "True")
                    })
            })
            .filter_map(|crd| crd.metadata.name)
            .collect();
        let waiting: Vec<&str> = crds
            .iter()
            .filter_map(|crd| crd.metadata.name.as_deref())
            .filter(|name| !established.contains(*name))
            .collect();
        if waiting.is_empty() {
            return Ok(());
        }
        if started.elapsed() > ESTABLISH_TIMEOUT {
            return Err(TestEnvError::Other(format!(
                "cluster {cluster}: CRDs {waiting:?} not established after {ESTABLISH_TIMEOUT:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
