//! Every object rendered for the example passes its published CRD schema, checked strictly
//! (a field the schema does not know is an error here, where a real API server would
//! silently prune it): Istio's (`../shared/istio/networking-crds.yaml`, Istio 1.30), and for
//! ServiceImports the MCS API's (`.cache/mcs`, from the pinned `sigs.k8s.io/mcs-api`).

// A failed fixture or assertion should stop a test or benchmark loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;

use serde_json::Value;

fn istio_crds() -> Option<PathBuf> {
    let path = support::repo_root().join("../shared/istio/networking-crds.yaml");
    present(path, "it sits beside the repository in CI")
}

/// `path` when it exists; otherwise skipped with `why` (a failure in CI, which has it).
fn present(path: PathBuf, why: &str) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing ({why})",
        path.display()
    );
    eprintln!("skipping: {} not found ({why})", path.display());
    None
}

/// The `spec` schema of `name`'s `version`, with `additionalProperties: false` added to
/// every object that lists its properties and does not preserve unknown fields.
fn spec_schema(crds: &str, name: &str, version: &str) -> Value {
    let docs: Vec<Value> = serde_saphyr::from_multiple(crds).unwrap();
    let crd = docs
        .into_iter()
        .find(|d| d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in the CRDs given"));
    let versions = crd["spec"]["versions"].as_array().unwrap();
    let v = versions.iter().find(|v| v["name"] == version).unwrap();
    let mut schema = v["schema"]["openAPIV3Schema"]["properties"]["spec"].clone();
    make_strict(&mut schema);
    schema
}

fn make_strict(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let preserve =
                map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
            if map.contains_key("properties")
                && !map.contains_key("additionalProperties")
                && !preserve
            {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            for value in map.values_mut() {
                make_strict(value);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(make_strict),
        _ => {}
    }
}

fn errors(validator: &jsonschema::Validator, spec: &Value) -> Vec<String> {
    validator
        .iter_errors(spec)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn rendered_objects_pass_istio_schemas() {
    let Some(path) = istio_crds() else { return };
    let crds = std::fs::read_to_string(path).unwrap();
    let se = jsonschema::validator_for(&spec_schema(
        &crds,
        "serviceentries.networking.istio.io",
        "v1",
    ))
    .unwrap();
    let dr = jsonschema::validator_for(&spec_schema(
        &crds,
        "destinationrules.networking.istio.io",
        "v1",
    ))
    .unwrap();
    let rendered = support::render(&support::example_snapshot());
    let mut checked = 0;
    for cluster in &rendered.clusters {
        for host in &cluster.hosts {
            let se_spec = serde_json::to_value(&host.service_entry.spec).unwrap();
            let dr_spec = serde_json::to_value(&host.destination_rule.spec).unwrap();
            assert_eq!(
                errors(&se, &se_spec),
                Vec::<String>::new(),
                "{} ServiceEntry in {}",
                host.service_entry.spec.hosts[0],
                cluster.cluster
            );
            assert_eq!(
                errors(&dr, &dr_spec),
                Vec::<String>::new(),
                "{} DestinationRule in {}",
                host.destination_rule.spec.host,
                cluster.cluster
            );
            checked += 2;
        }
    }
    assert_eq!(checked, 54, "3 clusters x 9 hosts x 2 objects");

    // The Sidecars of the example's Dependency (catalog in east-a and east-b).
    let sidecar =
        jsonschema::validator_for(&spec_schema(&crds, "sidecars.networking.istio.io", "v1"))
            .unwrap();
    let sidecars: Vec<_> = rendered.clusters.iter().flat_map(|c| &c.sidecars).collect();
    assert_eq!(sidecars.len(), 2, "catalog's Sidecar in east-a and east-b");
    for rendered_sidecar in &sidecars {
        let spec = serde_json::to_value(&rendered_sidecar.spec).unwrap();
        assert_eq!(
            errors(&sidecar, &spec),
            Vec::<String>::new(),
            "Sidecar {}/{}",
            rendered_sidecar.metadata.namespace,
            rendered_sidecar.metadata.name
        );
    }

    // The check has teeth: a misspelt field or a wrong type is caught.
    let mut bad =
        serde_json::to_value(&rendered.clusters[0].hosts[0].destination_rule.spec).unwrap();
    bad["trafficPolicy"]["outlierDetection"]["consecutive5xxError"] = 5.into();
    assert!(!errors(&dr, &bad).is_empty());
    let mut bad = serde_json::to_value(&rendered.clusters[0].hosts[0].service_entry.spec).unwrap();
    bad["location"] = "INSIDE".into();
    assert!(!errors(&se, &bad).is_empty());
    let mut bad = serde_json::to_value(&sidecars[0].spec).unwrap();
    bad["egress"][0]["host"] = "./*".into();
    assert!(!errors(&sidecar, &bad).is_empty());
}

/// The MCS API's ServiceImport CRD, as `setup.sh` copies it from the pinned
/// `sigs.k8s.io/mcs-api` module (`.cache/mcs`, or `FEDERATOR_MCS_CRDS`).
fn service_import_crd() -> Option<String> {
    let dir = std::env::var_os("FEDERATOR_MCS_CRDS")
        .map(PathBuf::from)
        .unwrap_or_else(|| support::repo_root().join(".cache/mcs"));
    let path = dir.join("multicluster.x-k8s.io_serviceimports.yaml");
    let path = present(path, "tests/testenv/setup.sh copies it")?;
    Some(std::fs::read_to_string(path).unwrap())
}

#[test]
fn rendered_service_imports_pass_the_mcs_api_schema() {
    let Some(crd) = service_import_crd() else {
        return;
    };
    let schema = jsonschema::validator_for(&spec_schema(
        &crd,
        "serviceimports.multicluster.x-k8s.io",
        "v1beta1",
    ))
    .unwrap();
    let rendered = support::render(&support::example_snapshot());
    let imports: Vec<_> = rendered
        .clusters
        .iter()
        .flat_map(|c| &c.service_imports)
        .collect();
    assert_eq!(
        imports.len(),
        3,
        "shop/cart's ServiceImport in each of the 3 clusters"
    );
    for import in &imports {
        let spec = serde_json::to_value(&import.spec).unwrap();
        assert_eq!(
            errors(&schema, &spec),
            Vec::<String>::new(),
            "{}",
            import.metadata.name
        );
    }
    // The check has teeth: a type the API does not know is caught.
    let mut bad = serde_json::to_value(&imports[0].spec).unwrap();
    bad["type"] = "ClusterIP".into();
    assert!(!errors(&schema, &bad).is_empty());
}
