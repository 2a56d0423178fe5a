use std::fmt;

use smol_str::SmolStr;

use super::{
    ClusterName, DependencyInfo, Host, Labels, MeshPort, ObjectKey, PolicyInfo, PolicySource,
    RejectedInfo, TargetPorts,
};

/// What federator knows of a dependent cluster beyond what it watches: its name and the
/// overrides given on its Secret (or the offline cluster file).
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ClusterInfo {
    /// Registered name of the cluster.
    pub name: ClusterName,
    /// Istio network of the cluster as its Secret overrides it; otherwise the network label
    /// of the cluster's Istio system namespace, else the cluster name.
    pub network: Option<String>,
    /// Region override; otherwise taken from the cluster's Nodes.
    pub region: Option<String>,
    /// Zone override for endpoints whose zone is unknown.
    pub zone: Option<String>,
}

impl ClusterInfo {
    /// A cluster with no overrides.
    pub fn new(name: impl Into<ClusterName>) -> Self {
        Self {
            name: name.into(),
            network: None,
            region: None,
            zone: None,
        }
    }

    /// The Istio network of this cluster's endpoints: the override, else the network Istio
    /// records for the cluster (`mesh`), else the cluster name.
    pub fn network<'a>(&'a self, mesh: Option<&'a str>) -> &'a str {
        self.network
            .as_deref()
            .or(mesh)
            .unwrap_or(self.name.as_str())
    }
}

/// Region and zone of an endpoint, as Istio's `locality` (`region/zone`) expresses them.
#[derive(
    serde::Serialize,
    serde::Deserialize,
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
)]
pub struct Locality {
    /// Region, e.g. `us-east-1`.
    pub region: Option<SmolStr>,
    /// Zone within the region, e.g. `us-east-1a`.
    pub zone: Option<SmolStr>,
}

impl Locality {
    /// The `region/zone` string Istio expects, or `None` when the region is unknown (a zone
    /// without a region means nothing to Istio).
    pub fn to_istio(&self) -> Option<String> {
        let region = self.region.as_deref()?;
        Some(match self.zone.as_deref() {
            Some(zone) => format!("{region}/{zone}"),
            None => region.to_owned(),
        })
    }
}

/// A Kubernetes Service reduced to what routing needs.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ServiceInfo {
    /// Namespace and name.
    pub key: ObjectKey,
    /// Pod selector; a Service without one never matches a workload.
    pub selector: Labels,
    /// Mesh ports (TCP ports only; UDP/SCTP ports are dropped by ingest with a warning).
    /// Shared with the backends built from the Service.
    pub ports: std::sync::Arc<[MeshPort]>,
    /// `clusterIP: None`: used only when no regular Service matches the workload.
    pub headless: bool,
    /// Creation time in seconds since the epoch; the oldest Service decides a host's ports.
    pub created: Option<i64>,
    /// Whether Argo Rollouts pinned its selector to one ReplicaSet (an active, preview,
    /// stable or canary Service): it then serves only a Rollout that names it.
    pub pinned: bool,
}

/// One ready endpoint address (a pod) and where it runs. Local backends are rendered per
/// address, so that each zone is really preferred and outlier detection ejects one bad pod
/// rather than a whole Service.
#[derive(
    serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub struct ReadyEndpoint {
    /// The endpoint's IP address.
    pub address: SmolStr,
    /// Node the endpoint runs on, when the slice says.
    pub node: Option<SmolStr>,
    /// Zone the slice reports for the endpoint.
    pub zone: Option<SmolStr>,
    /// The endpoint's `hostname` (a StatefulSet pod's), naming it in the MCS DNS.
    pub hostname: Option<SmolStr>,
}

/// An EndpointSlice reduced to its ready endpoints and the ports they listen on.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct EndpointSliceInfo {
    /// Namespace and name of the slice.
    pub key: ObjectKey,
    /// Name of the Service the slice belongs to (label `kubernetes.io/service-name`).
    pub service: SmolStr,
    /// The port each endpoint listens on (the Service's target port), by Service port name
    /// (`""` for a Service's single unnamed port). Shared with the backends built from it.
    pub ports: TargetPorts,
    /// One entry per ready endpoint address.
    pub ready: Vec<ReadyEndpoint>,
}

/// Kind of object that runs a workload's pods.
#[derive(
    serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub enum WorkloadKind {
    /// `apps/v1` Deployment.
    Deployment,
    /// Argo `Rollout`.
    Rollout,
    /// The preview (blue-green) or canary side of an Argo Rollout, which the registry derives
    /// from the Rollout to give that Service a host of its own.
    RolloutVariant,
    /// A `multicluster.x-k8s.io` ServiceExport: its Service becomes the clusterset service
    /// `<name>.<namespace>.svc.clusterset.local`.
    ServiceExport,
}

impl WorkloadKind {
    /// The API version and kind of the object behind it (a variant is its Rollout's).
    pub fn api(self) -> (&'static str, &'static str) {
        match self {
            Self::Deployment => ("apps/v1", "Deployment"),
            Self::Rollout | Self::RolloutVariant => ("argoproj.io/v1alpha1", "Rollout"),
            Self::ServiceExport => ("multicluster.x-k8s.io/v1beta1", "ServiceExport"),
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.api().1)
    }
}

/// The second host an Argo Rollout gets besides `<env>.<identity>.<suffix>`.
#[derive(
    serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub enum RolloutRole {
    /// A blue-green Rollout's preview Service: `preview.<env>.<identity>.<suffix>`.
    Preview,
    /// A canary Rollout's canary Service: `canary.<env>.<identity>.<suffix>`.
    Canary,
}

impl RolloutRole {
    /// The first label of its host.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Preview => "preview",
            Self::Canary => "canary",
        }
    }
}

/// A Deployment or Rollout that carries an identity.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct WorkloadInfo {
    /// Deployment or Rollout.
    pub kind: WorkloadKind,
    /// Namespace and name.
    pub key: ObjectKey,
    /// Identity (validated DNS label, lower-case).
    pub identity: SmolStr,
    /// Environment (validated DNS label, lower-case).
    pub env: SmolStr,
    /// `env.identity` as written when either had upper-case letters, else empty: two
    /// spellings of one host are a conflict to report, not one service.
    pub spelling: SmolStr,
    /// Creation time (Unix seconds): of two spellings of one host, the older keeps it.
    pub created: Option<i64>,
    /// Labels of the pod template: Services select on them.
    pub pod_labels: Labels,
    /// The one Service that backs its host, when not every Service selecting its pods does:
    /// an Argo Rollout's active (blue-green) or stable (canary) Service, or, for its
    /// variant, the preview or canary Service.
    pub service: Option<SmolStr>,
    /// For a Rollout, its preview or canary Service, which gets a host of its own; for the
    /// variant derived from it, which one it is.
    pub rollout_role: Option<(RolloutRole, SmolStr)>,
    /// `metadata.generation`, for the status conditions federator writes on it (kept only
    /// for ServiceExports).
    pub generation: Option<i64>,
    /// For a canary Rollout whose Istio traffic routing Argo weights, the canary's share of
    /// traffic in percent: its host then goes to the stable and canary Services in that
    /// proportion, as the Rollout's own VirtualService does.
    pub canary_weight: Option<u32>,
}

impl WorkloadInfo {
    /// The global host its pods serve: `<env>.<identity>.<suffix>`, or for a Rollout's
    /// variant `<preview|canary>.<env>.<identity>.<suffix>`.
    pub fn host(&self, suffix: &str) -> Result<Host, super::InvalidName> {
        if self.kind == WorkloadKind::ServiceExport {
            return Host::clusterset(&self.key.name, &self.key.namespace);
        }
        let host = Host::build(&self.env, &self.identity, suffix)?;
        match (self.kind, &self.rollout_role) {
            (WorkloadKind::RolloutVariant, Some((role, _))) => host.with_prefix(role.prefix()),
            _ => Ok(host),
        }
    }

    /// The variant a Rollout with a preview or canary Service gets: the same pods, backed
    /// by that Service only.
    pub fn rollout_variant(&self) -> Option<WorkloadInfo> {
        let (role, service) = self
            .rollout_role
            .as_ref()
            .filter(|_| self.kind == WorkloadKind::Rollout)?;
        Some(WorkloadInfo {
            kind: WorkloadKind::RolloutVariant,
            service: Some(service.clone()),
            rollout_role: Some((*role, service.clone())),
            ..self.clone()
        })
    }
}

/// A Node's locality and addresses.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// Node name, as EndpointSlices refer to it.
    pub name: String,
    /// Region and zone from the node's topology labels.
    pub locality: Locality,
    /// External then internal addresses, for NodePort gateways.
    pub addresses: Vec<String>,
}

/// The east-west gateway Service of a cluster.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct GatewayInfo {
    /// Namespace and name of the gateway Service.
    pub key: ObjectKey,
    /// Load-balancer ingress IPs/hostnames and external IPs.
    pub addresses: Vec<String>,
    /// The Service port for mTLS passthrough (normally 15443).
    pub port: u16,
    /// The NodePort behind that port, used with node addresses when no address is published.
    pub node_port: Option<u16>,
}

/// The namespace Istio runs in (`istio-system`), reduced to Istio's own record of the
/// cluster's network: its `topology.istio.io/network` label.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MeshNamespaceInfo {
    /// Name of the namespace.
    pub name: String,
    /// The network label, when set.
    pub network: Option<String>,
}

/// A user's Istio Gateway on the east-west gateway's passthrough port. When its hosts cover
/// global hosts it claims them, and federator leaves its own Gateway out of that cluster
/// rather than fight over the same hosts and port.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PassthroughClaimInfo {
    /// Namespace and name of the Gateway.
    pub key: ObjectKey,
    /// The hosts of its servers on that port.
    pub hosts: Vec<String>,
}

/// An object of a cluster, as the registry consumes it.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub enum Object {
    /// A Service (not the gateway).
    Service(ServiceInfo),
    /// An EndpointSlice.
    EndpointSlice(EndpointSliceInfo),
    /// A Deployment or Rollout with an identity.
    Workload(WorkloadInfo),
    /// A Node.
    Node(NodeInfo),
    /// The east-west gateway Service.
    Gateway(GatewayInfo),
    /// A GlobalTrafficPolicy.
    Policy(PolicyInfo),
    /// The Istio system namespace.
    MeshNamespace(MeshNamespaceInfo),
    /// A user's Gateway claiming global hosts on the passthrough port.
    PassthroughClaim(PassthroughClaimInfo),
    /// A Dependency.
    Dependency(DependencyInfo),
    /// A GlobalTrafficPolicy or Dependency that is invalid.
    Rejected(RejectedInfo),
    /// The cluster's `id.k8s.io` ClusterProperty.
    ClusterId(super::ClusterIdInfo),
}

impl Object {
    /// The reference that deletes this object again.
    pub fn reference(&self) -> ObjectRef {
        match self {
            Self::Service(s) => ObjectRef::Service(s.key.clone()),
            Self::EndpointSlice(s) => ObjectRef::EndpointSlice(s.key.clone()),
            Self::Workload(w) => ObjectRef::Workload(w.kind, w.key.clone()),
            Self::Node(n) => ObjectRef::Node(n.name.clone()),
            Self::Gateway(g) => ObjectRef::Gateway(g.key.clone()),
            Self::Policy(p) => p.reference(),
            Self::MeshNamespace(n) => ObjectRef::MeshNamespace(n.name.clone()),
            Self::PassthroughClaim(g) => ObjectRef::PassthroughClaim(g.key.clone()),
            Self::Dependency(d) => match d.api {
                PolicySource::Federator => ObjectRef::Dependency(d.key.clone()),
                PolicySource::Admiral => ObjectRef::AdmiralDependency(d.key.clone()),
            },
            Self::Rejected(r) => r.reference.clone(),
            Self::ClusterId(_) => ObjectRef::ClusterId,
        }
    }
}

/// Identifies an object of a cluster for deletion.
#[derive(
    serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub enum ObjectRef {
    /// A Service.
    Service(ObjectKey),
    /// An EndpointSlice.
    EndpointSlice(ObjectKey),
    /// A Deployment or Rollout.
    Workload(WorkloadKind, ObjectKey),
    /// A Node, by name.
    Node(String),
    /// The east-west gateway Service.
    Gateway(ObjectKey),
    /// A GlobalTrafficPolicy.
    Policy(ObjectKey),
    /// The Istio system namespace, by name.
    MeshNamespace(String),
    /// A user's Gateway claiming global hosts.
    PassthroughClaim(ObjectKey),
    /// A Dependency.
    Dependency(ObjectKey),
    /// An Admiral GlobalTrafficPolicy.
    AdmiralPolicy(ObjectKey),
    /// An Admiral Dependency.
    AdmiralDependency(ObjectKey),
    /// The cluster's `id.k8s.io` ClusterProperty.
    ClusterId,
}

impl ObjectRef {
    /// For a policy or Dependency: where it comes from and its key.
    pub fn policy_id(&self) -> Option<(PolicySource, &ObjectKey)> {
        match self {
            Self::Policy(k) | Self::Dependency(k) => Some((PolicySource::Federator, k)),
            Self::AdmiralPolicy(k) | Self::AdmiralDependency(k) => Some((PolicySource::Admiral, k)),
            _ => None,
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Service(k) => write!(f, "Service {k}"),
            Self::EndpointSlice(k) => write!(f, "EndpointSlice {k}"),
            Self::Workload(kind, k) => write!(f, "{kind} {k}"),
            Self::Node(n) => write!(f, "Node {n}"),
            Self::Gateway(k) => write!(f, "gateway Service {k}"),
            Self::Policy(k) => write!(f, "GlobalTrafficPolicy {k}"),
            Self::MeshNamespace(n) => write!(f, "Namespace {n}"),
            Self::PassthroughClaim(k) => write!(f, "Gateway {k}"),
            Self::Dependency(k) => write!(f, "Dependency {k}"),
            Self::AdmiralPolicy(k) => write!(f, "Admiral GlobalTrafficPolicy {k}"),
            Self::AdmiralDependency(k) => write!(f, "Admiral Dependency {k}"),
            Self::ClusterId => f.write_str("ClusterProperty id.k8s.io"),
        }
    }
}
