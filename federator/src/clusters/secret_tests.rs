//! Cluster Secrets: one result per key, policy refusals, and what errors may say.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;

const KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: 'https://127.0.0.1:6443'}
users:
- name: u
  user: {token: abc}
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
";

fn secret(data: &[(&str, &str)], annotations: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some("clusters".into()),
            namespace: Some("federator".into()),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Default::default()
    }
}

#[test]
fn every_key_is_a_cluster_with_the_secrets_overrides() {
    let s = secret(
        &[("east", KUBECONFIG), ("west", KUBECONFIG)],
        &[
            (ANNOTATION_NETWORK, "net-1"),
            (ANNOTATION_REGION, "us-east-1"),
        ],
    );
    let entries: Vec<_> = parse_secret(&s, &SecretPolicy::default())
        .keys
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].info.name.as_str(), "east");
    assert_eq!(entries[0].info.network.as_deref(), Some("net-1"));
    assert_eq!(entries[0].info.region.as_deref(), Some("us-east-1"));
    assert_eq!(entries[0].info.zone, None);
}

#[test]
fn bad_keys_are_reported_one_by_one() {
    let no_server = KUBECONFIG.replace(
        "server: 'https://127.0.0.1:6443'",
        "insecure-skip-tls-verify: true",
    );
    let s = secret(
        &[
            ("good", KUBECONFIG),
            ("garbage", "{not: [yaml"),
            ("Bad_Name", KUBECONFIG),
            ("noserver", &no_server),
        ],
        &[],
    );
    let results = parse_secret(&s, &SecretPolicy::default()).keys;
    let errors: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(ToString::to_string)
        .collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("key \"Bad_Name\"") && e.contains("not a valid cluster name")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("key \"garbage\"") && e.contains("not a kubeconfig")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("key \"noserver\"") && e.contains("no server address")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .all(|e| e.starts_with("Secret federator/clusters"))
    );
}

#[test]
fn the_fingerprint_changes_with_credentials_and_overrides() {
    let fingerprint = |kubeconfig: &str, annotations: &[(&str, &str)]| {
        parse_secret(
            &secret(&[("east", kubeconfig)], annotations),
            &SecretPolicy::default(),
        )
        .keys
        .remove(0)
        .unwrap()
        .fingerprint
    };
    let base = fingerprint(KUBECONFIG, &[]);
    let rotated = fingerprint(&KUBECONFIG.replace("token: abc", "token: def"), &[]);
    let moved = fingerprint(KUBECONFIG, &[(ANNOTATION_NETWORK, "n")]);
    let same = fingerprint(KUBECONFIG, &[]);
    assert_ne!(base, rotated);
    assert_ne!(base, moved);
    assert_eq!(base, same);
}

#[test]
fn an_empty_secret_is_a_problem() {
    let results = parse_secret(&secret(&[], &[]), &SecretPolicy::default()).keys;
    assert!(
        results[0]
            .as_ref()
            .unwrap_err()
            .reason
            .contains("has no data")
    );
}

#[test]
fn parse_errors_never_quote_the_kubeconfig() {
    // A mis-indented line next to the token: the YAML parser's message would show it.
    let broken = KUBECONFIG.replace(
        "  user: {token: abc}",
        "  user:\n  token: s3cr3t-T0KEN\n   x: [",
    );
    let results = parse_secret(&secret(&[("east", &broken)], &[]), &SecretPolicy::default()).keys;
    let err = results[0].as_ref().unwrap_err().to_string();
    assert!(
        err.contains("not a kubeconfig") && err.contains("line "),
        "{err}"
    );
    assert!(!err.contains("s3cr3t"), "{err}");
    assert!(!err.contains("token"), "{err}");
}

#[test]
fn refused_fields_are_insecure_problems_naming_key_and_field() {
    let exec = KUBECONFIG.replace(
        "user: {token: abc}",
        "user: {exec: {command: /bin/touch, args: [/tmp/x], apiVersion: client.authentication.k8s.io/v1}}",
    );
    let results = parse_secret(
        &secret(&[("east", &exec), ("west", KUBECONFIG)], &[]),
        &SecretPolicy::default(),
    )
    .keys;
    let err = results[0].as_ref().unwrap_err();
    assert_eq!(err.kind, ProblemKind::Insecure);
    assert_eq!(err.kind.reason(), "InsecureClusterKubeconfig");
    assert_eq!(err.key, "east");
    assert!(err.reason.starts_with("users[u].user.exec"), "{err}");
    assert!(!err.reason.contains("/bin/touch"), "{err}");
    assert!(results[1].is_ok());
    let allowed = SecretPolicy {
        kubeconfig: KubeconfigPolicy::allowing([super::super::policy::Allowance::Exec]),
        ..SecretPolicy::default()
    };
    assert!(parse_secret(&secret(&[("east", &exec)], &[]), &allowed).keys[0].is_ok());
}

#[test]
fn debug_output_shows_no_credential() {
    let entry = parse_secret(
        &secret(&[("east", KUBECONFIG)], &[]),
        &SecretPolicy::default(),
    )
    .keys
    .remove(0)
    .unwrap();
    let text = format!("{entry:?}");
    assert!(text.contains("east") && !text.contains("abc"), "{text}");
}

#[test]
fn bad_annotations_are_reported_and_ignored() {
    let s = secret(
        &[("east", KUBECONFIG)],
        &[
            (ANNOTATION_REGION, "us/east"),
            (ANNOTATION_ZONE, "us-east-1a"),
        ],
    );
    let parsed = parse_secret(&s, &SecretPolicy::default());
    let entry = parsed.keys[0].as_ref().unwrap();
    assert_eq!(entry.info.region, None);
    assert_eq!(entry.info.zone.as_deref(), Some("us-east-1a"));
    assert_eq!(parsed.problems.len(), 1);
    assert_eq!(parsed.problems[0].kind, ProblemKind::BadAnnotation);
    assert_eq!(parsed.problems[0].key, ANNOTATION_REGION);
    assert!(
        parsed.problems[0].reason.contains("'/'"),
        "{:?}",
        parsed.problems
    );
}

#[test]
fn keys_past_the_cap_are_ignored_and_reported() {
    let s = secret(
        &[("a", KUBECONFIG), ("b", KUBECONFIG), ("c", KUBECONFIG)],
        &[],
    );
    let policy = SecretPolicy {
        max_keys: 2,
        ..SecretPolicy::default()
    };
    let parsed = parse_secret(&s, &policy);
    let names: Vec<String> = parsed
        .keys
        .iter()
        .map(|r| r.as_ref().unwrap().info.name.to_string())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(parsed.problems[0].kind, ProblemKind::TooManyKeys);
    assert!(
        parsed.problems[0].reason.contains("keys c and later"),
        "{:?}",
        parsed.problems
    );
}
