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
use crate::render::render_cluster;

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

/// Loads `dir`, folds it into a registry and renders every cluster (or only `only`).
pub fn render_snapshot(
    dir: &Path,
    settings: &Settings,
    only: Option<&ClusterName>,
) -> Result<OfflineRender, SnapshotError> {
    let loaded = load(dir, &settings.ingest)?;
    let mut registry = Registry::new(settings.registry.clone());
    for delta in loaded.deltas {
        registry.apply(delta);
    }
    let clusters = loaded
        .clusters
        .iter()
        .filter(|c| only.is_none_or(|o| o == *c))
        .map(|cluster| ClusterOutput {
            cluster: cluster.clone(),
            hosts: render_cluster(&registry, cluster, &settings.render),
        })
        .collect();
    Ok(OfflineRender {
        clusters,
        load_problems: loaded.problems,
        diagnostics: registry.diagnostics(),
        ignored: loaded.ignored,
    })
}
