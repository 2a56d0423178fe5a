//! Reads a snapshot folder: one sub-folder per cluster with a `cluster.yaml` and any number of
//! YAML files of Kubernetes objects (`kubectl get -o yaml` output, Lists or multi-document).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::yaml::split_documents;
use crate::crd::{Dependency, GlobalTrafficPolicy};
use crate::ingest::{self, IngestConfig, IngestError, Ingested, Rollout};
use crate::model::{ClusterInfo, ClusterName, ObjectRef};
use crate::registry::Delta;

/// Name of the per-cluster settings file.
pub const CLUSTER_FILE: &str = "cluster.yaml";

/// A snapshot that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The folder could not be listed.
    #[error("cannot read snapshot folder {path}: {source}")]
    Read {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The folder has no cluster sub-folders.
    #[error(
        "snapshot folder {0} has no cluster folders (expected one folder per cluster with a {CLUSTER_FILE})"
    )]
    Empty(PathBuf),
}

/// A problem with one file, document or object of a snapshot; the rest still loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadProblem {
    /// Cluster folder it was found in.
    pub cluster: String,
    /// File and line (`east/services.yaml:12`).
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for LoadProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cluster {}: {}: {}",
            self.cluster, self.location, self.message
        )
    }
}

/// What a snapshot holds: deltas that rebuild every cluster, and the problems met.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Registration of each cluster followed by its objects.
    pub deltas: Vec<Delta>,
    /// Names of the clusters loaded, in folder order.
    pub clusters: Vec<ClusterName>,
    /// Problems met; none of them stopped the rest from loading.
    pub problems: Vec<LoadProblem>,
    /// Objects of kinds federator does not use, per kind.
    pub ignored: BTreeMap<String, usize>,
}

/// The settings file of a cluster folder.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterFile {
    name: Option<String>,
    network: Option<String>,
    region: Option<String>,
    zone: Option<String>,
}

/// Loads every cluster folder below `dir`.
pub fn load(dir: &Path, config: &IngestConfig) -> Result<Loaded, SnapshotError> {
    let read = |path: &Path| {
        fs::read_dir(path).map_err(|source| SnapshotError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let mut folders: Vec<PathBuf> = read(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    if folders.is_empty() {
        return Err(SnapshotError::Empty(dir.to_owned()));
    }
    let mut loaded = Loaded::default();
    for folder in folders {
        load_cluster(&folder, config, &mut loaded);
    }
    Ok(loaded)
}

fn load_cluster(folder: &Path, config: &IngestConfig, loaded: &mut Loaded) {
    let folder_name = folder
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let problem = |location: String, message: String| LoadProblem {
        cluster: folder_name.clone(),
        location,
        message,
    };
    let cluster_path = folder.join(CLUSTER_FILE);
    let file = match fs::read_to_string(&cluster_path) {
        Ok(text) => match serde_saphyr::from_str::<ClusterFile>(&text) {
            Ok(file) => file,
            Err(err) => {
                loaded.problems.push(problem(
                    display(&cluster_path),
                    format!(
                        "invalid cluster file, cluster skipped: {}",
                        err.to_string()
                            .lines()
                            .next()
                            .unwrap_or_default()
                            .trim_start_matches("error: ")
                    ),
                ));
                return;
            }
        },
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            loaded.problems.push(problem(
                display(&cluster_path),
                format!("missing; using the folder name {folder_name:?} as cluster and network"),
            ));
            ClusterFile {
                name: None,
                network: None,
                region: None,
                zone: None,
            }
        }
        Err(err) => {
            loaded.problems.push(problem(
                display(&cluster_path),
                format!("unreadable, cluster skipped: {err}"),
            ));
            return;
        }
    };
    let name = ClusterName::new(file.name.unwrap_or_else(|| folder_name.clone()));
    if loaded.clusters.contains(&name) {
        loaded.problems.push(problem(
            display(&cluster_path),
            format!("cluster name {name} is already used by another folder; cluster skipped"),
        ));
        return;
    }
    loaded.clusters.push(name.clone());
    loaded.deltas.push(Delta::UpsertCluster(ClusterInfo {
        name: name.clone(),
        network: file.network,
        region: file.region,
        zone: file.zone,
    }));

    let mut files: Vec<PathBuf> = match fs::read_dir(folder) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.file_name().is_some_and(|n| n != CLUSTER_FILE)
                    && p.extension()
                        .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
            })
            .collect(),
        Err(err) => {
            loaded
                .problems
                .push(problem(display(folder), format!("unreadable: {err}")));
            return;
        }
    };
    files.sort();
    let mut seen: BTreeMap<ObjectRef, String> = BTreeMap::new();
    for path in files {
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) => {
                loaded
                    .problems
                    .push(problem(display(&path), format!("unreadable: {err}")));
                continue;
            }
        };
        for doc in split_documents(&text) {
            let location = format!("{}:{}", display(&path), doc.line);
            // Pad with the lines before the document so the parser reports file lines.
            let padded = format!("{}{}", "\n".repeat(doc.line - 1), doc.text);
            let value: Value = match serde_saphyr::from_str(&padded) {
                Ok(value) => value,
                Err(err) => {
                    let err = err.to_string();
                    let summary = err
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .trim_start_matches("error: ");
                    loaded
                        .problems
                        .push(problem(location, format!("malformed YAML: {summary}")));
                    continue;
                }
            };
            let mut objects = Vec::new();
            flatten(value, &mut objects);
            for value in objects {
                match classify(value, config, &mut loaded.ignored) {
                    Ok(None) => {}
                    Ok(Some(ingested)) => {
                        for warning in ingested.warnings {
                            loaded.problems.push(problem(
                                location.clone(),
                                format!("{}: {warning}", ingested.object.reference()),
                            ));
                        }
                        let reference = ingested.object.reference();
                        if let Some(first) = seen.insert(reference.clone(), location.clone()) {
                            loaded.problems.push(problem(
                                location.clone(),
                                format!("{reference} is also defined at {first}; this later definition wins"),
                            ));
                        }
                        loaded
                            .deltas
                            .push(Delta::Upsert(name.clone(), ingested.object));
                    }
                    Err(err) => loaded
                        .problems
                        .push(problem(location.clone(), err.to_string())),
                }
            }
        }
    }
}

/// Expands `kind: List` documents into their items.
fn flatten(value: Value, out: &mut Vec<Value>) {
    let is_list = value
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k == "List" || k.ends_with("List"))
        && value.get("items").is_some_and(Value::is_array);
    if is_list {
        if let Some(Value::Array(items)) = value.get("items").cloned() {
            for item in items {
                flatten(item, out);
            }
        }
    } else {
        out.push(value);
    }
}

/// Converts one object, `Ok(None)` for kinds federator does not use (and workloads without
/// an identity).
fn classify(
    value: Value,
    config: &IngestConfig,
    ignored: &mut BTreeMap<String, usize>,
) -> Result<Option<Ingested>, IngestError> {
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    match (api_version, kind) {
        ("v1", "Service") => Ok(Some(ingest::service(&typed("Service", value)?, config)?)),
        ("discovery.k8s.io/v1", "EndpointSlice") => Ok(Some(ingest::endpoint_slice(&typed(
            "EndpointSlice",
            value,
        )?)?)),
        ("apps/v1", "Deployment") => ingest::deployment(&typed("Deployment", value)?, config),
        ("argoproj.io/v1alpha1", "Rollout") => {
            ingest::rollout(&typed::<Rollout>("Rollout", value)?, config)
        }
        ("v1", "Node") => Ok(Some(ingest::node(&typed("Node", value)?)?)),
        ("v1", "Namespace") => ingest::mesh_namespace(&typed("Namespace", value)?, config),
        ("networking.istio.io/v1" | "networking.istio.io/v1beta1", "Gateway") => {
            ingest::passthrough_claim(&typed("Gateway", value)?, config)
        }
        ("federator.io/v1alpha1", "GlobalTrafficPolicy") => {
            Ok(Some(ingest::policy(&typed::<GlobalTrafficPolicy>(
                "GlobalTrafficPolicy",
                value,
            )?)?))
        }
        ("federator.io/v1alpha1", "Dependency") => {
            Ok(Some(ingest::dependency(&typed::<Dependency>(
                "Dependency",
                value,
            )?)?))
        }
        ("admiral.io/v1alpha1", "GlobalTrafficPolicy") => Ok(Some(ingest::admiral_policy(
            &typed::<ingest::AdmiralGlobalTrafficPolicy>("GlobalTrafficPolicy", value)?,
            config,
        )?)),
        ("admiral.io/v1alpha1", "Dependency") => Ok(Some(ingest::admiral_dependency(&typed::<
            ingest::AdmiralDependency,
        >(
            "Dependency",
            value,
        )?)?)),
        ("multicluster.x-k8s.io/v1beta1" | "multicluster.x-k8s.io/v1alpha1", "ServiceExport") => {
            ingest::service_export(&typed::<ingest::ServiceExport>("ServiceExport", value)?)
        }
        ("about.k8s.io/v1alpha1", "ClusterProperty") => {
            ingest::cluster_id(&typed::<ingest::ClusterProperty>("ClusterProperty", value)?)
        }
        ("", _) | (_, "") => Err(IngestError::new(
            "object",
            name_of(&value),
            "apiVersion and kind are required",
        )),
        _ => {
            *ignored.entry(format!("{api_version}/{kind}")).or_default() += 1;
            Ok(None)
        }
    }
}

fn typed<T: DeserializeOwned>(kind: &'static str, value: Value) -> Result<T, IngestError> {
    let key = name_of(&value);
    serde_json::from_value(value)
        .map_err(|err| IngestError::new(kind, key, format!("not a valid {kind}: {err}")))
}

fn name_of(value: &Value) -> String {
    let meta = value.get("metadata");
    let get = |field| meta.and_then(|m| m.get(field)).and_then(Value::as_str);
    match (get("namespace"), get("name")) {
        (Some(ns), Some(name)) => format!("{ns}/{name}"),
        (None, Some(name)) => name.to_owned(),
        _ => "<unnamed>".to_owned(),
    }
}

fn display(path: &Path) -> String {
    // Keep the last two components (`east/services.yaml`): enough to find the file.
    let parts: Vec<_> = path.iter().map(|p| p.to_string_lossy()).collect();
    let start = parts.len().saturating_sub(2);
    parts[start..].join("/")
}
