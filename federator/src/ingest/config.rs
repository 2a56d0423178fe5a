use std::collections::BTreeMap;

/// A metadata key to read a value from: a label or an annotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetaKey {
    /// `metadata.labels[key]`.
    Label(String),
    /// `metadata.annotations[key]`.
    Annotation(String),
}

impl MetaKey {
    /// Shorthand for a label key.
    pub fn label(key: &str) -> Self {
        Self::Label(key.to_owned())
    }

    /// Shorthand for an annotation key.
    pub fn annotation(key: &str) -> Self {
        Self::Annotation(key.to_owned())
    }
}

/// Where identity and env are read from, in order of precedence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityKeys {
    /// Keys tried for the identity; a workload without any is not federated.
    pub identity: Vec<MetaKey>,
    /// Keys tried for the env.
    pub env: Vec<MetaKey>,
    /// Env used when no key is present.
    pub default_env: String,
}

impl Default for IdentityKeys {
    /// Admiral's keys, so Admiral users migrate without relabelling anything.
    fn default() -> Self {
        Self {
            identity: vec![MetaKey::label("identity"), MetaKey::annotation("identity")],
            env: vec![
                MetaKey::annotation("federator.io/env"),
                MetaKey::annotation("admiral.io/env"),
                MetaKey::label("admiral.io/env"),
                MetaKey::label("env"),
            ],
            default_env: "default".into(),
        }
    }
}

/// Which Service is a cluster's east-west gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewaySelector {
    /// Namespace it lives in.
    pub namespace: String,
    /// Labels it carries.
    pub labels: BTreeMap<String, String>,
    /// The mTLS passthrough port.
    pub port: u16,
}

impl Default for GatewaySelector {
    fn default() -> Self {
        Self {
            namespace: "istio-system".into(),
            labels: BTreeMap::from([("istio".into(), "eastwestgateway".into())]),
            port: 15443,
        }
    }
}

/// Everything that decides how cluster objects are read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestConfig {
    /// Identity and env keys.
    pub identity: IdentityKeys,
    /// The east-west gateway.
    pub gateway: GatewaySelector,
    /// The namespace Istio runs in, whose `topology.istio.io/network` label is Istio's own
    /// record of the cluster's network.
    pub mesh_namespace: String,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            identity: IdentityKeys::default(),
            gateway: GatewaySelector::default(),
            mesh_namespace: "istio-system".into(),
        }
    }
}
