use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use k8s_openapi::api::core::v1::Secret;
use kube::config::Kubeconfig;

use crate::model::{ClusterInfo, ClusterName, validate_dns_label};

/// Secret annotation overriding the clusters' Istio network.
pub const ANNOTATION_NETWORK: &str = "federator.io/network";
/// Secret annotation overriding the clusters' region.
pub const ANNOTATION_REGION: &str = "federator.io/region";
/// Secret annotation overriding the clusters' zone.
pub const ANNOTATION_ZONE: &str = "federator.io/zone";

/// One cluster registered by a Secret.
#[derive(Clone, Debug)]
pub struct ClusterEntry {
    /// The cluster's settings (name and the Secret's overrides).
    pub info: ClusterInfo,
    /// How to reach it.
    pub kubeconfig: Kubeconfig,
    /// Changes whenever the kubeconfig or the overrides change: a new fingerprint means
    /// reconnecting (rotated credentials, moved server).
    pub fingerprint: u64,
}

/// A key of a Secret that could not be used, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Secret {secret} key {key:?}: {reason}")]
pub struct SecretProblem {
    /// `namespace/name` of the Secret.
    pub secret: String,
    /// The data key (cluster name).
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

/// The clusters a Secret registers, one result per data key, sorted by cluster name.
pub fn parse_secret(secret: &Secret) -> Vec<Result<ClusterEntry, SecretProblem>> {
    let meta = &secret.metadata;
    let secret_name = format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    );
    let annotations = meta.annotations.clone().unwrap_or_default();
    let overrides = [ANNOTATION_NETWORK, ANNOTATION_REGION, ANNOTATION_ZONE]
        .map(|k| annotations.get(k).filter(|v| !v.is_empty()).cloned());
    let data = secret.data.clone().unwrap_or_default();
    if data.is_empty() {
        return vec![Err(SecretProblem {
            secret: secret_name,
            key: String::new(),
            reason: "has no data: each key should be a cluster name holding its kubeconfig".into(),
        })];
    }
    data.into_iter()
        .map(|(key, value)| {
            let problem = |reason: String| SecretProblem {
                secret: secret_name.clone(),
                key: key.clone(),
                reason,
            };
            validate_dns_label(&key)
                .map_err(|r| problem(format!("not a valid cluster name: {r}")))?;
            let text = std::str::from_utf8(&value.0)
                .map_err(|_| problem("value is not UTF-8 text, so not a kubeconfig".into()))?;
            let kubeconfig = Kubeconfig::from_yaml(text)
                .map_err(|e| problem(format!("not a kubeconfig: {e}")))?;
            check_kubeconfig(&kubeconfig).map_err(problem)?;
            let mut hasher = DefaultHasher::new();
            value.0.hash(&mut hasher);
            overrides.hash(&mut hasher);
            let [network, region, zone] = overrides.clone();
            Ok(ClusterEntry {
                info: ClusterInfo {
                    name: ClusterName::new(&key),
                    network,
                    region,
                    zone,
                },
                kubeconfig,
                fingerprint: hasher.finish(),
            })
        })
        .collect()
}

/// The checks kube would otherwise only fail at connect time, with a message naming what is
/// missing.
fn check_kubeconfig(kubeconfig: &Kubeconfig) -> Result<(), String> {
    let context_name = kubeconfig
        .current_context
        .clone()
        .or_else(|| kubeconfig.contexts.first().map(|c| c.name.clone()))
        .ok_or("has no context")?;
    let context = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_ref())
        .ok_or_else(|| format!("current context {context_name:?} is not defined"))?;
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .and_then(|c| c.cluster.as_ref())
        .ok_or_else(|| {
            format!(
                "context {context_name:?} names cluster {:?}, which is not defined",
                context.cluster
            )
        })?;
    if cluster.server.as_deref().is_none_or(str::is_empty) {
        return Err(format!(
            "cluster {:?} has no server address",
            context.cluster
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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
        let entries: Vec<_> = parse_secret(&s).into_iter().map(Result::unwrap).collect();
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
        let results = parse_secret(&s);
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
        let base = parse_secret(&secret(&[("east", KUBECONFIG)], &[]))
            .remove(0)
            .unwrap()
            .fingerprint;
        let rotated = KUBECONFIG.replace("token: abc", "token: def");
        let rotated = parse_secret(&secret(&[("east", &rotated)], &[]))
            .remove(0)
            .unwrap()
            .fingerprint;
        let moved = parse_secret(&secret(
            &[("east", KUBECONFIG)],
            &[(ANNOTATION_NETWORK, "n")],
        ))
        .remove(0)
        .unwrap()
        .fingerprint;
        let same = parse_secret(&secret(&[("east", KUBECONFIG)], &[]))
            .remove(0)
            .unwrap()
            .fingerprint;
        assert_ne!(base, rotated);
        assert_ne!(base, moved);
        assert_eq!(base, same);
    }

    #[test]
    fn an_empty_secret_is_a_problem() {
        let results = parse_secret(&secret(&[], &[]));
        assert!(
            results[0]
                .as_ref()
                .unwrap_err()
                .reason
                .contains("has no data")
        );
    }
}
