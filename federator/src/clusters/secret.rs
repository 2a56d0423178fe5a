use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use k8s_openapi::api::core::v1::Secret;
use kube::config::{Kubeconfig, KubeconfigError};

use super::policy::{KubeconfigPolicy, current_context, refusal};
use crate::model::{ClusterInfo, ClusterName, validate_dns_label, validate_label_value};

/// Secret annotation overriding the clusters' Istio network.
pub const ANNOTATION_NETWORK: &str = "federator.io/network";
/// Secret annotation overriding the clusters' region.
pub const ANNOTATION_REGION: &str = "federator.io/region";
/// Secret annotation overriding the clusters' zone.
pub const ANNOTATION_ZONE: &str = "federator.io/zone";

/// Default of [`SecretPolicy::max_keys`]: far more clusters than one Secret should carry,
/// few enough that one Secret cannot make federator open thousands of connections.
pub const DEFAULT_MAX_KEYS: usize = 100;

/// What cluster Secrets may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretPolicy {
    /// Which kubeconfig contents beyond inline credentials are allowed.
    pub kubeconfig: KubeconfigPolicy,
    /// At most this many keys (clusters) per Secret are used, the first by name.
    pub max_keys: usize,
}

impl Default for SecretPolicy {
    fn default() -> Self {
        Self {
            kubeconfig: KubeconfigPolicy::default(),
            max_keys: DEFAULT_MAX_KEYS,
        }
    }
}

/// One cluster registered by a Secret. Its `Debug` shows the settings, never the
/// kubeconfig (kube's own `Debug` would print exec arguments and environment).
#[derive(Clone)]
pub struct ClusterEntry {
    /// The cluster's settings (name and the Secret's overrides).
    pub info: ClusterInfo,
    /// How to reach it.
    pub kubeconfig: Kubeconfig,
    /// Changes whenever the kubeconfig or the overrides change: a new fingerprint means
    /// reconnecting (rotated credentials, moved server).
    pub fingerprint: u64,
}

impl federator_core::planner::clusters::Candidate for ClusterEntry {
    fn name(&self) -> &crate::model::ClusterName {
        &self.info.name
    }
    fn fingerprint(&self) -> u64 {
        self.fingerprint
    }
}

impl std::fmt::Debug for ClusterEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterEntry")
            .field("info", &self.info)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// What kind of problem a Secret has; it becomes the reason of the Event on the Secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// Not a usable kubeconfig, or a bad cluster name.
    Invalid,
    /// A kubeconfig field the policy refuses.
    Insecure,
    /// A Secret-wide setting (annotation) that is ignored.
    BadAnnotation,
    /// More keys than allowed.
    TooManyKeys,
}

impl ProblemKind {
    /// The Event reason.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Invalid => "InvalidClusterKubeconfig",
            Self::Insecure => "InsecureClusterKubeconfig",
            Self::BadAnnotation => "InvalidClusterAnnotation",
            Self::TooManyKeys => "TooManyClusters",
        }
    }
}

/// A key of a Secret that could not be used, or a setting of it that is ignored, and why.
///
/// The reason never quotes the kubeconfig: it names fields and positions only, because it
/// goes into log lines and Events that readers of the namespace can see.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Secret {secret} key {key:?}: {reason}")]
pub struct SecretProblem {
    /// `namespace/name` of the Secret.
    pub secret: String,
    /// The data key (cluster name), or the annotation for a Secret-wide problem.
    pub key: String,
    /// What kind of problem.
    pub kind: ProblemKind,
    /// What is wrong and what to do.
    pub reason: String,
}

/// What a Secret registers: one result per data key (sorted by cluster name), and the
/// problems of the Secret as a whole (ignored annotations, keys past the cap).
#[derive(Debug, Default)]
pub struct ParsedSecret {
    /// One result per used data key.
    pub keys: Vec<Result<ClusterEntry, SecretProblem>>,
    /// Problems that concern no single key; the keys are used regardless.
    pub problems: Vec<SecretProblem>,
}

/// Parses a cluster Secret under `policy`.
pub fn parse_secret(secret: &Secret, policy: &SecretPolicy) -> ParsedSecret {
    let meta = &secret.metadata;
    let secret_name = format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    );
    let problem = |key: &str, kind: ProblemKind, reason: String| SecretProblem {
        secret: secret_name.clone(),
        key: key.to_owned(),
        kind,
        reason,
    };
    let mut parsed = ParsedSecret::default();
    let annotations = meta.annotations.clone().unwrap_or_default();
    let overrides = [ANNOTATION_NETWORK, ANNOTATION_REGION, ANNOTATION_ZONE].map(|k| {
        let value = annotations.get(k).filter(|v| !v.is_empty())?;
        match validate_label_value(value) {
            Ok(()) => Some(value.clone()),
            Err(why) => {
                let note = format!(
                    "annotation {k} is ignored: {why}; it must be a Kubernetes label value"
                );
                parsed
                    .problems
                    .push(problem(k, ProblemKind::BadAnnotation, note));
                None
            }
        }
    });
    let data = secret.data.clone().unwrap_or_default();
    if data.is_empty() {
        let note = "has no data: each key should be a cluster name holding its kubeconfig";
        parsed
            .keys
            .push(Err(problem("", ProblemKind::Invalid, note.into())));
        return parsed;
    }
    if data.len() > policy.max_keys {
        let ignored: Vec<&str> = data
            .keys()
            .skip(policy.max_keys)
            .map(String::as_str)
            .collect();
        let note = format!(
            "has {} keys, more than the {} allowed per Secret (--max-clusters-per-secret); \
             keys {} and later are ignored: split the clusters over several Secrets",
            data.len(),
            policy.max_keys,
            ignored.first().copied().unwrap_or_default()
        );
        parsed
            .problems
            .push(problem("", ProblemKind::TooManyKeys, note));
    }
    for (key, value) in data.into_iter().take(policy.max_keys) {
        let invalid = |reason: String| problem(&key, ProblemKind::Invalid, reason);
        let entry = (|| {
            validate_dns_label(&key)
                .map_err(|r| invalid(format!("not a valid cluster name: {r}")))?;
            let text = std::str::from_utf8(&value.0)
                .map_err(|_| invalid("value is not UTF-8 text, so not a kubeconfig".into()))?;
            let kubeconfig = Kubeconfig::from_yaml(text)
                .map_err(|e| invalid(format!("not a kubeconfig: {}", describe_yaml_error(&e))))?;
            check_kubeconfig(&kubeconfig).map_err(invalid)?;
            if let Some(refused) = refusal(&kubeconfig, &policy.kubeconfig) {
                return Err(problem(&key, ProblemKind::Insecure, refused.to_string()));
            }
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
        })();
        parsed.keys.push(entry);
    }
    parsed
}

/// A kubeconfig parse error in words that quote nothing of the input: the YAML parser's own
/// message shows the lines around the error, which may hold a token.
fn describe_yaml_error(error: &KubeconfigError) -> String {
    let location = match error {
        KubeconfigError::Parse(e) => e.location(),
        _ => None,
    };
    match location {
        Some(at) => format!(
            "the YAML does not parse or lacks a required field (line {}, column {})",
            at.line(),
            at.column()
        ),
        None => "the YAML does not parse or lacks a required field".into(),
    }
}

/// The checks kube would otherwise only fail at connect time, with a message naming what is
/// missing. Names of contexts and clusters are the user's own labels, not credentials.
fn check_kubeconfig(kubeconfig: &Kubeconfig) -> Result<(), String> {
    let (context_name, context) = current_context(kubeconfig).ok_or("has no context")?;
    let context =
        context.ok_or_else(|| format!("current context {context_name:?} is not defined"))?;
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
#[path = "secret_tests.rs"]
mod tests;
