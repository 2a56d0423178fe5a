//! The example snapshot renders exactly to the committed files in
//! `examples/multicluster/rendered/`. After an intended change, regenerate them with
//! `UPDATE_GOLDEN=1 cargo test -p federator --test golden` and review the diff.

// A failed fixture or assertion should stop a test or benchmark loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use federator::offline::write_dir;
use support::*;

#[test]
fn example_snapshot_renders_to_the_golden_files() {
    let rendered = render(&example_snapshot());
    let golden = repo_root().join("examples/multicluster/rendered");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        write_dir(&golden, &rendered.clusters).unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    write_dir(out.path(), &rendered.clusters).unwrap();
    let got = read_tree(out.path());
    let want = read_tree(&golden);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "rendered files differ from examples/multicluster/rendered"
    );
    for (path, text) in &got {
        assert_eq!(text, &want[path], "{path} differs from the golden file");
    }
}

#[test]
fn example_snapshot_has_no_problems() {
    let rendered = render(&example_snapshot());
    assert!(
        rendered.load_problems.is_empty(),
        "{:#?}",
        rendered.load_problems
    );
    let warnings: Vec<_> = rendered
        .diagnostics
        .iter()
        .filter(|d| d.severity == federator::registry::Severity::Warning)
        .collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
}

#[test]
fn example_covers_what_the_readme_promises() {
    let rendered = render(&example_snapshot());
    let hosts = |cluster: &str| -> Vec<String> {
        rendered
            .clusters
            .iter()
            .find(|c| c.cluster.as_str() == cluster)
            .unwrap()
            .hosts
            .iter()
            .map(|h| h.service_entry.spec.hosts[0].clone())
            .collect()
    };
    // Every cluster sees every serving host, including ones it does not run; an Argo
    // Rollout's preview (blue-green) and canary Services get hosts of their own.
    // A ServiceExport's Service gets its clusterset name, and a ServiceImport everywhere.
    let all = [
        "canary.prod.search.global",
        "cart.shop.svc.clusterset.local",
        "preview.prod.reviews.global",
        "prod.catalog.global",
        "prod.greeting.global",
        "prod.payments.global",
        "prod.reviews.global",
        "prod.search.global",
        "stage.inventory.global",
    ];
    for cluster in ["east-a", "east-b", "west"] {
        assert_eq!(hosts(cluster), all, "{cluster}");
        let imports: Vec<_> = rendered
            .clusters
            .iter()
            .find(|c| c.cluster.as_str() == cluster)
            .unwrap()
            .service_imports
            .iter()
            .map(|i| format!("{}/{}", i.metadata.namespace, i.metadata.name))
            .collect();
        assert_eq!(imports, ["shop/cart"], "{cluster}");
    }
    // Re-rendering into the same folder changes nothing and removes only stale files of ours.
    let out = tempfile::tempdir().unwrap();
    federator::offline::write_dir(out.path(), &rendered.clusters).unwrap();
    std::fs::write(out.path().join("west/notes.yaml"), "# mine\n").unwrap();
    std::fs::write(
        out.path().join("west/serviceentry-prod.old.global.yaml"),
        "metadata:\n  labels:\n    app.kubernetes.io/managed-by: federator\n",
    )
    .unwrap();
    federator::offline::write_dir(out.path(), &rendered.clusters).unwrap();
    assert!(
        out.path().join("west/notes.yaml").exists(),
        "files that are not ours stay"
    );
    assert!(
        !out.path()
            .join("west/serviceentry-prod.old.global.yaml")
            .exists(),
        "our stale files go"
    );
}
