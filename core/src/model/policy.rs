use super::{ObjectKey, ObjectRef};
use crate::istio::OutlierDetection;

/// How traffic to a global host is spread over localities: the validated form of a
/// GlobalTrafficPolicy, free of Kubernetes types.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct TrafficPolicy {
    /// Locality load-balancing mode.
    pub mode: LocalityMode,
    /// Outlier detection overrides, in Istio's terms; unset fields keep federator's
    /// defaults.
    pub outlier: OutlierDetection,
}

/// Locality load-balancing mode.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub enum LocalityMode {
    /// Istio's default: same zone, then same region, then anywhere.
    #[default]
    Topology,
    /// Ordered list of regions: each region fails over to the next one in the list (the
    /// last back to the first).
    Failover(Vec<String>),
    /// Fixed share of traffic per region, in percent, summing to 100.
    Distribute(Vec<(String, u32)>),
}

/// Which API a GlobalTrafficPolicy or Dependency comes from: federator's own, or Admiral's,
/// read as it is so a team migrates without rewriting its objects.
#[derive(
    serde::Serialize,
    serde::Deserialize,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
)]
pub enum PolicySource {
    /// `federator.io/v1alpha1`. Takes precedence over Admiral's for the same host.
    #[default]
    Federator,
    /// `admiral.io/v1alpha1`.
    Admiral,
}

impl PolicySource {
    /// The API version of its objects.
    pub fn api_version(self) -> &'static str {
        match self {
            Self::Federator => "federator.io/v1alpha1",
            Self::Admiral => "admiral.io/v1alpha1",
        }
    }
}

/// A validated GlobalTrafficPolicy, keyed to the identity (and optionally env) it governs.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PolicyInfo {
    /// Its API.
    pub api: PolicySource,
    /// Namespace and name of the GlobalTrafficPolicy object.
    pub key: ObjectKey,
    /// Identity the policy applies to.
    pub identity: String,
    /// Env the policy applies to; `None` means every env of the identity.
    pub env: Option<String>,
    /// What the policy asks for.
    pub policy: TrafficPolicy,
    /// Creation time; the oldest policy wins when several target the same host.
    pub created: Option<i64>,
    /// `metadata.generation` read: the status says which one it concerns.
    pub generation: Option<i64>,
    /// Fields with no equivalent in federator (an Admiral policy's extra `dnsPrefix`
    /// hosts), each said in a sentence: reported on the object.
    pub ignored: Vec<String>,
}

impl PolicyInfo {
    /// The reference that deletes it.
    pub fn reference(&self) -> ObjectRef {
        match self.api {
            PolicySource::Federator => ObjectRef::Policy(self.key.clone()),
            PolicySource::Admiral => ObjectRef::AdmiralPolicy(self.key.clone()),
        }
    }
}

/// A validated Dependency: the identities a source identity calls. Its workloads get a
/// Sidecar that admits only those identities' global hosts, and (with the `dependents`
/// export scope) those hosts go to the clusters it runs in.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DependencyInfo {
    /// Its API.
    pub api: PolicySource,
    /// Namespace and name of the Dependency object.
    pub key: ObjectKey,
    /// Identity of the calling workloads.
    pub source: String,
    /// Identities they call, sorted and without repeats.
    pub destinations: Vec<String>,
    /// `metadata.generation` read: the status says which one it concerns.
    pub generation: Option<i64>,
}

/// An object with a status of its own (a GlobalTrafficPolicy, a Dependency) that cannot be
/// used: kept so its status can say why, while it has no effect.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RejectedInfo {
    /// Which object (its kind and key).
    pub reference: ObjectRef,
    /// `metadata.generation` read.
    pub generation: Option<i64>,
    /// What is wrong with it.
    pub reason: String,
}
