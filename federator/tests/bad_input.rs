//! A snapshot full of mistakes: each one is reported with the file, line, cluster and object
//! it concerns, and everything else still renders.

// A failed fixture or assertion should stop a test or benchmark loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::process::Command;

fn bad_snapshot() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/bad-snapshot")
}

fn problems() -> Vec<String> {
    support::render(&bad_snapshot())
        .load_problems
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn assert_reported(problems: &[String], needles: &[&str]) {
    assert!(
        problems
            .iter()
            .any(|p| needles.iter().all(|n| p.contains(n))),
        "no problem mentions all of {needles:?}; problems: {problems:#?}"
    );
}

#[test]
fn each_mistake_is_reported_where_it_is() {
    let p = problems();
    assert_reported(&p, &["cluster east", "east/bad.yaml:2", "malformed YAML"]);
    assert_reported(
        &p,
        &[
            "Deployment sample/bad-identity",
            "label identity",
            "not_a_dns_label",
        ],
    );
    assert_reported(
        &p,
        &["EndpointSlice sample/orphan", "kubernetes.io/service-name"],
    );
    assert_reported(&p, &["Service sample/wrong-types", "not a valid Service"]);
    assert_reported(&p, &["no-api-version", "apiVersion and kind are required"]);
    assert_reported(&p, &["Deployment <unnamed>", "metadata.name"]);
    assert_reported(
        &p,
        &[
            "GlobalTrafficPolicy sample/greeting",
            "summing to 100, got 60",
        ],
    );
    assert_reported(
        &p,
        &[
            "Service istio-system/istio-eastwestgateway-2",
            "no port 15443",
        ],
    );
    assert_reported(
        &p,
        &[
            "cluster broken",
            "broken/cluster.yaml",
            "invalid cluster file",
            "netwrok",
        ],
    );
    assert_eq!(p.len(), 9, "{p:#?}");
}

#[test]
fn conflicts_and_missing_gateways_are_diagnosed() {
    let rendered = support::render(&bad_snapshot());
    let diags: Vec<String> = rendered
        .diagnostics
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_reported(
        &diags,
        &[
            "cluster west",
            "Service sample/greeting",
            "9090",
            "conflict",
            "prod.greeting.global",
        ],
    );
    assert_reported(
        &diags,
        &[
            "cluster west",
            "gateway Service istio-system/istio-eastwestgateway",
            "no address",
        ],
    );
}

#[test]
fn everything_else_still_renders() {
    let rendered = support::render(&bad_snapshot());
    let clusters: Vec<_> = rendered
        .clusters
        .iter()
        .map(|c| c.cluster.as_str())
        .collect();
    assert_eq!(
        clusters,
        ["east", "west"],
        "the broken cluster is skipped, the others load"
    );
    for cluster in &rendered.clusters {
        assert_eq!(cluster.hosts.len(), 1, "{}", cluster.cluster);
        let se = &cluster.hosts[0].service_entry.spec;
        assert_eq!(se.hosts, ["prod.greeting.global"]);
        assert_eq!(se.ports[0].number, 8080, "the older Service's ports win");
        // Only east's backend serves: west's conflicts (and has no gateway address anyway).
        let clusters: Vec<_> = se
            .endpoints
            .iter()
            .map(|e| e.labels["federator.io/cluster"].as_str())
            .collect();
        assert_eq!(clusters, ["east"]);
    }
}

#[test]
fn the_cli_names_problems_and_strict_mode_fails() {
    let bin = env!("CARGO_BIN_EXE_federator");
    let out = Command::new(bin)
        .args(["render", "--snapshot"])
        .arg(bad_snapshot())
        .output()
        .unwrap();
    assert!(out.status.success(), "problems alone do not fail a render");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Deployment sample/bad-identity"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("kind: ServiceEntry").count(), 2, "{stdout}");

    let strict = Command::new(bin)
        .args(["render", "--strict", "--snapshot"])
        .arg(bad_snapshot())
        .output()
        .unwrap();
    assert_eq!(strict.status.code(), Some(2));

    let missing = Command::new(bin)
        .args(["render", "--snapshot", "/nonexistent/snapshot"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("cannot read snapshot folder /nonexistent/snapshot"),
        "{stderr}"
    );
}
