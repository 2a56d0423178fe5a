use std::collections::BTreeMap;
use std::fmt;

use super::{ClusterName, MeshPort, ObjectKey, TrafficPolicy};

/// What federator knows of a dependent cluster beyond what it watches: its name and the
/// overrides given on its Secret (or the offline cluster file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterInfo {
    /// Registered name of the cluster.
    pub name: ClusterName,
    /// Istio network of the cluster; defaults to the cluster name.
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

    /// The Istio network endpoints of this cluster belong to.
    pub fn network(&self) -> &str {
        self.network.as_deref().unwrap_or(self.name.as_str())
    }
}

/// Region and zone of an endpoint, as Istio's `locality` (`region/zone`) expresses them.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Locality {
    /// Region, e.g. `us-east-1`.
    pub region: Option<String>,
    /// Zone within the region, e.g. `us-east-1a`.
    pub zone: Option<String>,
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceInfo {
    /// Namespace and name.
    pub key: ObjectKey,
    /// Pod selector; a Service without one never matches a workload.
    pub selector: BTreeMap<String, String>,
    /// Mesh ports (TCP ports only; UDP/SCTP ports are dropped by ingest with a warning).
    pub ports: Vec<MeshPort>,
    /// `clusterIP: None`: used only when no regular Service matches the workload.
    pub headless: bool,
    /// Creation time in seconds since the epoch; the oldest Service decides a host's ports.
    pub created: Option<i64>,
}

/// Where one ready endpoint runs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndpointLocation {
    /// Node the endpoint runs on, when the slice says.
    pub node: Option<String>,
    /// Zone the slice reports for the endpoint.
    pub zone: Option<String>,
}

/// An EndpointSlice reduced to the locations of its ready endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointSliceInfo {
    /// Namespace and name of the slice.
    pub key: ObjectKey,
    /// Name of the Service the slice belongs to (label `kubernetes.io/service-name`).
    pub service: String,
    /// One entry per ready endpoint address.
    pub ready: Vec<EndpointLocation>,
}

/// Kind of object that runs a workload's pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WorkloadKind {
    /// `apps/v1` Deployment.
    Deployment,
    /// Argo `Rollout`.
    Rollout,
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Deployment => "Deployment",
            Self::Rollout => "Rollout",
        })
    }
}

/// A Deployment or Rollout that carries an identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadInfo {
    /// Deployment or Rollout.
    pub kind: WorkloadKind,
    /// Namespace and name.
    pub key: ObjectKey,
    /// Identity (validated DNS label, lower-case).
    pub identity: String,
    /// Environment (validated DNS label, lower-case).
    pub env: String,
    /// Labels of the pod template: Services select on them.
    pub pod_labels: BTreeMap<String, String>,
}

/// A Node's locality and addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// Node name, as EndpointSlices refer to it.
    pub name: String,
    /// Region and zone from the node's topology labels.
    pub locality: Locality,
    /// External then internal addresses, for NodePort gateways.
    pub addresses: Vec<String>,
}

/// The east-west gateway Service of a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
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

/// A validated GlobalTrafficPolicy, keyed to the identity (and optionally env) it governs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyInfo {
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
}

/// An object of a cluster, as the registry consumes it.
#[derive(Clone, Debug, PartialEq)]
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
            Self::Policy(p) => ObjectRef::Policy(p.key.clone()),
        }
    }
}

/// Identifies an object of a cluster for deletion.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
        }
    }
}
