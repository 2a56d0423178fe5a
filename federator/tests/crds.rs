//! `crds/` holds exactly what the Rust types generate. When this fails, run
//! `cargo run -- crds --out crds` and commit the result.

// A failed fixture or assertion should stop a test or benchmark loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use federator::crd::crd_files;

#[test]
fn committed_crds_match_the_rust_types() {
    let dir = support::repo_root().join("crds");
    let committed = support::read_tree(&dir);
    let generated = crd_files();
    let mut stale = Vec::new();
    for file in &generated {
        let yaml = file.yaml().unwrap();
        if committed.get(&file.path) != Some(&yaml) {
            stale.push(file.path.clone());
        }
    }
    let extra: Vec<_> = committed
        .keys()
        .filter(|p| p.ends_with(".yaml") && !generated.iter().any(|f| &f.path == *p))
        .collect();
    assert!(
        stale.is_empty() && extra.is_empty(),
        "crds/ is stale (regenerate with `cargo run -- crds --out crds`): differs {stale:?}, not generated {extra:?}"
    );
}

#[test]
fn crds_are_for_the_expected_groups() {
    let names: Vec<_> = crd_files()
        .iter()
        .map(|f| f.crd.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "globaltrafficpolicies.federator.io",
            "dependencies.federator.io",
        ]
    );
}
