//! Helpers shared by the integration tests.

#![allow(dead_code)]

pub mod etcd;
pub mod live;
pub mod replica;
pub mod tools;
pub mod writes;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use federator::config::Settings;
use federator::offline::{OfflineRender, render_snapshot};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The example snapshot shipped in `examples/multicluster/snapshots`.
pub fn example_snapshot() -> PathBuf {
    repo_root().join("examples/multicluster/snapshots")
}

/// Renders a snapshot with default settings.
pub fn render(dir: &Path) -> OfflineRender {
    render_snapshot(dir, &Settings::default(), None).unwrap()
}

/// Every file below `dir`, by path relative to it.
pub fn read_tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    out
}
