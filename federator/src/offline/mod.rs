//! Offline mode: render the Istio config for a snapshot of clusters, without any API
//! server. Used by `federator render` (GitOps, reviews, trying federator out).

mod load;
mod output;
mod yaml;

use std::path::Path;

pub use load::{CLUSTER_FILE, LoadProblem, Loaded, SnapshotError, load};
pub use output::{ClusterOutput, to_yaml, write_dir};

use crate::config::Settings;
use crate::model::ClusterName;
use crate::registry::{Diagnostic, Registry};
use crate::render::{eastwest_gateway, render_cluster, render_service_import, render_sidecars};

/// The result of rendering a snapshot.
#[derive(Debug)]
pub struct OfflineRender {
    /// Rendered objects per cluster, in cluster order.
    pub clusters: Vec<ClusterOutput>,
    /// Problems reading the snapshot.
    pub load_problems: Vec<LoadProblem>,
    /// Problems the registry sees in the combined state.
    pub diagnostics: Vec<Diagnostic>,
    /// Objects of kinds federator ignores, per kind.
    pub ignored: std::collections::BTreeMap<String, usize>,
}

/// A snapshot folded into a registry.
#[derive(Debug)]
pub struct LoadedRegistry {
    /// The registry of every cluster's objects.
    pub registry: Registry,
    /// The clusters, in folder order.
    pub clusters: Vec<ClusterName>,
    /// Problems reading the snapshot.
    pub problems: Vec<LoadProblem>,
    /// Objects of kinds federator ignores, per kind.
    pub ignored: std::collections::BTreeMap<String, usize>,
}

/// Loads `dir` and folds it into a registry (for `render` and `dns`).
pub fn load_registry(dir: &Path, settings: &Settings) -> Result<LoadedRegistry, SnapshotError> {
    let loaded = load(dir, &settings.ingest)?;
    let mut registry = Registry::new(settings.registry.clone());
    for delta in loaded.deltas {
        registry.apply(delta);
    }
    Ok(LoadedRegistry {
        registry,
        clusters: loaded.clusters,
        problems: loaded.problems,
        ignored: loaded.ignored,
    })
}

/// Loads `dir`, folds it into a registry and renders every cluster (or only `only`).
pub fn render_snapshot(
    dir: &Path,
    settings: &Settings,
    only: Option<&ClusterName>,
) -> Result<OfflineRender, SnapshotError> {
    let loaded = load_registry(dir, settings)?;
    let registry = &loaded.registry;
    let view = registry.full_view();
    let clusters = loaded
        .clusters
        .iter()
        .filter(|c| only.is_none_or(|o| o == *c))
        .map(|cluster| ClusterOutput {
            cluster: cluster.clone(),
            hosts: render_cluster(&view, cluster, &settings.render),
            gateway: eastwest_gateway(&view, cluster, &settings.render),
            sidecars: view
                .services()
                .flat_map(|service| render_sidecars(&view, service, cluster, &settings.render))
                .collect(),
            // The same in every cluster: the MCS API imports a clusterset service everywhere.
            service_imports: view.services().filter_map(render_service_import).collect(),
        })
        .collect();
    Ok(OfflineRender {
        clusters,
        diagnostics: registry.diagnostics(),
        load_problems: loaded.problems,
        ignored: loaded.ignored,
    })
}
