//! Writing rendered objects as YAML: to one stream, or to one file per object.

use std::fs;
use std::io;
use std::path::Path;

use serde::Serialize;

use crate::istio::{DestinationRule, Gateway, GatewaySpec, ServiceEntry, Sidecar, SidecarSpec};
use crate::model::ClusterName;
use crate::render::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, Rendered, RenderedHost};
use federator_core::mcs::ServiceImportSpec;

/// The objects rendered for one cluster.
#[derive(Debug, Clone)]
pub struct ClusterOutput {
    /// The destination cluster.
    pub cluster: ClusterName,
    /// Its objects, by host.
    pub hosts: Vec<RenderedHost>,
    /// The Gateway for its east-west gateway, when it gets one.
    pub gateway: Option<Rendered<GatewaySpec>>,
    /// The Sidecars of the workloads whose identity declares its calls.
    pub sidecars: Vec<Rendered<SidecarSpec>>,
    /// The ServiceImports of the clusterset services (MCS API).
    pub service_imports: Vec<Rendered<ServiceImportSpec>>,
}

impl ClusterOutput {
    /// `(file name, YAML)` per object: the Gateway, then ServiceEntry and DestinationRule
    /// of each host, then the Sidecars (`sidecar-<namespace>.<name>.yaml`) and the
    /// ServiceImports (`serviceimport-<namespace>.<name>.yaml`), each as the
    /// Kubernetes object the cluster would receive.
    pub fn files(&self) -> Result<Vec<(String, String)>, serde_saphyr::ser::Error> {
        let mut out = Vec::new();
        if let Some(gateway) = &self.gateway {
            let name = &gateway.metadata.name;
            let object = Gateway::from(gateway.clone());
            out.push((format!("gateway-{name}.yaml"), yaml(&object)?));
        }
        for host in &self.hosts {
            let name = &host.service_entry.metadata.name;
            let service_entry = ServiceEntry::from(host.service_entry.clone());
            let destination_rule = DestinationRule::from(host.destination_rule.clone());
            out.push((format!("serviceentry-{name}.yaml"), yaml(&service_entry)?));
            out.push((
                format!("destinationrule-{name}.yaml"),
                yaml(&destination_rule)?,
            ));
        }
        for sidecar in &self.sidecars {
            let (namespace, name) = (&sidecar.metadata.namespace, &sidecar.metadata.name);
            let object = Sidecar::from(sidecar.clone());
            out.push((format!("sidecar-{namespace}.{name}.yaml"), yaml(&object)?));
        }
        for import in &self.service_imports {
            let (namespace, name) = (&import.metadata.namespace, &import.metadata.name);
            let object = serde_json::json!({
                "apiVersion": "multicluster.x-k8s.io/v1beta1",
                "kind": "ServiceImport",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": import.metadata.labels,
                    "annotations": import.metadata.annotations,
                },
                "spec": import.spec,
            });
            out.push((
                format!("serviceimport-{namespace}.{name}.yaml"),
                yaml(&object)?,
            ));
        }
        Ok(out)
    }
}

fn yaml<T: Serialize>(value: &T) -> Result<String, serde_saphyr::ser::Error> {
    serde_saphyr::to_string(value)
}

/// All clusters' objects as one multi-document YAML stream, each document headed by a
/// comment naming its cluster.
pub fn to_yaml(clusters: &[ClusterOutput]) -> Result<String, serde_saphyr::ser::Error> {
    let mut out = String::new();
    for cluster in clusters {
        for (_, doc) in cluster.files()? {
            out.push_str("---\n# cluster: ");
            out.push_str(cluster.cluster.as_str());
            out.push('\n');
            out.push_str(&doc);
        }
    }
    Ok(out)
}

/// Writes `dir/<cluster>/<kind>-<host>.yaml` for every object and removes files of earlier
/// runs that federator wrote but no longer renders (files without federator's ownership
/// label are never touched).
pub fn write_dir(dir: &Path, clusters: &[ClusterOutput]) -> io::Result<()> {
    for cluster in clusters {
        let folder = dir.join(cluster.cluster.as_str());
        fs::create_dir_all(&folder)?;
        let files = cluster.files().map_err(io::Error::other)?;
        let marker = format!("{MANAGED_BY_LABEL}: {MANAGED_BY_VALUE}");
        for entry in fs::read_dir(&folder)? {
            let path = entry?.path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            let stale =
                name.is_some_and(|n| n.ends_with(".yaml") && !files.iter().any(|(f, _)| *f == n));
            if stale && fs::read_to_string(&path).is_ok_and(|t| t.contains(&marker)) {
                fs::remove_file(&path)?;
            }
        }
        for (name, text) in files {
            let path = folder.join(name);
            if fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                fs::write(&path, text)?;
            }
        }
    }
    Ok(())
}
