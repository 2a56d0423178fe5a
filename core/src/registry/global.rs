use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use super::ClusterBackends;
use crate::model::{
    ClusterName, Host, Locality, MeshPort, ObjectKey, PolicyInfo, SmolStr, TargetPorts,
    WorkloadKind,
};

/// One ready pod of a backend: where clients of its own cluster connect, and where it runs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct BackendEndpoint {
    /// The pod's address.
    pub address: SmolStr,
    /// Region and zone it runs in (one copy shared by every endpoint there).
    pub locality: Arc<Locality>,
    /// The port it listens on for each of its Service's ports, by Service port name: one
    /// list per EndpointSlice, shared by its endpoints.
    pub target_ports: TargetPorts,
    /// Its `hostname` in the EndpointSlice, when set (named in the MCS DNS).
    pub hostname: Option<SmolStr>,
}

/// A Service in one cluster that backs a global host, with its ready endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalBackend {
    /// The Service whose pods serve the host.
    pub service: ObjectKey,
    /// The Service's mesh ports (shared with the Service).
    pub ports: Arc<[MeshPort]>,
    /// Creation time of the Service, for deciding whose ports win.
    pub created: Option<i64>,
    /// Ready endpoints, sorted by address; empty when none are ready.
    pub endpoints: Arc<[BackendEndpoint]>,
    /// Whether the Service is headless: clusterset services of both kinds conflict.
    pub headless: bool,
    /// Its share of the host's traffic in its cluster, in percent, when the workload weights
    /// its Services (an Argo canary under Istio traffic routing); `None`: by endpoint count.
    pub weight: Option<u32>,
}

impl LocalBackend {
    /// Total ready endpoints.
    pub fn ready_count(&self) -> u32 {
        u32::try_from(self.endpoints.len()).unwrap_or(u32::MAX)
    }

    /// The port an endpoint listens on for the host port numbered `number`: its target port
    /// for the Service port of that number, else the number itself (a Service's target
    /// port defaults to its port).
    pub fn target_port(&self, endpoint: &BackendEndpoint, number: u16) -> u16 {
        self.ports
            .iter()
            .find(|p| p.number == number)
            .and_then(|p| {
                endpoint
                    .target_ports
                    .get(p.name.as_str())
                    .or_else(|| endpoint.target_ports.get(""))
            })
            .unwrap_or(number)
    }

    /// The ports as a comparable signature: numbers and protocols, names ignored.
    pub(crate) fn port_signature(&self) -> Vec<(u16, crate::model::Protocol)> {
        let mut sig: Vec<_> = self.ports.iter().map(|p| (p.number, p.protocol)).collect();
        sig.sort();
        sig
    }
}

/// A backend left out of a host because its ports disagree with the host's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedBackend {
    /// Cluster of the backend.
    pub cluster: ClusterName,
    /// The backend itself.
    pub backend: LocalBackend,
}

/// The policy in force for a host and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedPolicy {
    /// Cluster the GlobalTrafficPolicy object lives in.
    pub cluster: ClusterName,
    /// The policy.
    pub info: PolicyInfo,
}

/// One global host as every cluster should see it: the registry's unit of output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalService {
    /// `<env>.<identity>.<suffix>`.
    pub host: Host,
    /// Identity of the workloads behind it.
    pub identity: String,
    /// Env of the workloads behind it.
    pub env: String,
    /// Its virtual IP; `None` when the VIP range is exhausted.
    pub vip: Option<IpAddr>,
    /// Its ports, as set by the oldest backend Service.
    pub ports: Vec<MeshPort>,
    /// Backends whose ports agree, per cluster (clusters with none are absent).
    pub backends: ClusterBackends,
    /// Backends left out because their ports disagree.
    pub rejected: Vec<RejectedBackend>,
    /// The GlobalTrafficPolicy in force, if any (boxed: most hosts have none, and it is
    /// half a host's size).
    pub policy: Option<Box<AppliedPolicy>>,
    /// What Dependencies say of its identity: whom it calls, and where its callers run.
    pub dependencies: HostDependencies,
    /// For a clusterset host (of a ServiceExport), what the MCS API adds; `None` for global
    /// hosts.
    pub clusterset: Option<ClustersetInfo>,
}

/// What a clusterset service adds to a host: its type, and the id each exporting cluster
/// goes by in DNS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClustersetInfo {
    /// `Headless` rather than `ClusterSetIP`, as the oldest export's Service is.
    pub headless: bool,
    /// Each exporting cluster's id: its `id.k8s.io` ClusterProperty, else its registered
    /// name.
    pub cluster_ids: BTreeMap<ClusterName, String>,
}

/// What Dependencies declare about one host's identity. Empty for the common case of an
/// identity no Dependency names, which costs nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostDependencies {
    /// The identities this host's workloads call, sorted, when a Dependency names its
    /// identity as the source: its workloads then get a Sidecar limited to those. `None`
    /// leaves their sidecars as Istio's default (every host of the mesh).
    pub calls: Option<Vec<String>>,
    /// This host's workloads per cluster, kept only when `calls` is set: each gets a Sidecar.
    pub workloads: BTreeMap<ClusterName, Vec<CallerWorkload>>,
    /// Clusters where a workload whose identity calls this host's identity runs: with the
    /// `dependents` export scope, the host's objects go there (and where it runs) only.
    pub dependent_clusters: BTreeSet<ClusterName>,
    /// Clusters holding the Dependencies that name this host's identity (as source or
    /// destination): what it renders depends on their lists, so a write that drops one of
    /// them waits while it is not listed.
    pub declared_in: BTreeSet<ClusterName>,
}

/// A workload whose identity declares its calls: where its Sidecar goes and what it selects.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CallerWorkload {
    /// Deployment or Rollout.
    pub kind: WorkloadKind,
    /// Namespace and name: the Sidecar goes into that namespace.
    pub key: ObjectKey,
    /// Labels of its pod template: the Sidecar's workload selector.
    pub pod_labels: BTreeMap<String, String>,
}

impl GlobalService {
    /// Ready endpoints of `cluster` per locality, summed over its backend Services.
    pub fn ready_in(&self, cluster: &ClusterName) -> BTreeMap<Locality, u32> {
        let mut out = BTreeMap::new();
        for backend in self.backends.get(cluster).into_iter().flatten() {
            for endpoint in backend.endpoints.iter() {
                *out.entry(Locality::clone(&endpoint.locality)).or_insert(0) += 1;
            }
        }
        out
    }

    /// Whether any cluster has a ready endpoint: only such hosts are rendered and answered.
    pub fn is_serving(&self) -> bool {
        self.backends
            .values()
            .flatten()
            .any(|backend| backend.ready_count() > 0)
    }
}

/// Builds a host from every cluster's backends: the oldest backend Service (then the first
/// by cluster and name) sets the ports; backends whose ports disagree are left out and
/// reported rather than papered over, because a remote gateway can only route a port its own
/// cluster's ServiceEntry declares.
///
/// `candidates` are each cluster's backends (each cluster once), sorted by Service, as the
/// cluster's index holds them: a cluster whose backends all agree shares its list with the
/// view.
pub(crate) fn fold_backends(
    current: &GlobalService,
    candidates: Vec<(ClusterName, Arc<[LocalBackend]>)>,
    policy: Option<AppliedPolicy>,
    dependencies: HostDependencies,
    cluster_ids: Option<BTreeMap<ClusterName, String>>,
) -> GlobalService {
    let first = candidates
        .iter()
        .flat_map(|(cluster, list)| list.iter().map(move |b| (cluster, b)))
        .min_by(|(ca, a), (cb, b)| {
            (a.created.unwrap_or(i64::MAX), ca, &a.service).cmp(&(
                b.created.unwrap_or(i64::MAX),
                cb,
                &b.service,
            ))
        })
        .map(|(_, b)| b);
    let mut ports = first.map(|b| b.ports.to_vec()).unwrap_or_default();
    ports.sort();
    // Clusterset services also conflict over their type (MCS: ports and type must agree).
    let typed = cluster_ids.is_some();
    let signature_of = |b: &LocalBackend| (typed && b.headless, b.port_signature());
    let signature = first.map(signature_of);
    let clusterset = cluster_ids.map(|cluster_ids| ClustersetInfo {
        headless: first.is_some_and(|b| b.headless),
        cluster_ids,
    });
    let mut backends = Vec::new();
    let mut rejected = Vec::new();
    for (cluster, list) in candidates {
        debug_assert!(list.is_sorted_by(|a, b| a.service < b.service), "{cluster}");
        let agrees = |b: &LocalBackend| Some(signature_of(b)) == signature;
        if list.iter().all(agrees) {
            if !list.is_empty() {
                backends.push((cluster, list));
            }
            continue;
        }
        let (kept, left): (Vec<LocalBackend>, Vec<LocalBackend>) =
            list.iter().cloned().partition(|b| agrees(b));
        rejected.extend(left.into_iter().map(|backend| RejectedBackend {
            cluster: cluster.clone(),
            backend,
        }));
        if !kept.is_empty() {
            backends.push((cluster, kept.into()));
        }
    }
    let backends: ClusterBackends = backends.into_iter().collect();
    rejected
        .sort_by(|a, b| (&a.cluster, &a.backend.service).cmp(&(&b.cluster, &b.backend.service)));
    GlobalService {
        host: current.host.clone(),
        identity: current.identity.clone(),
        env: current.env.clone(),
        vip: current.vip,
        ports,
        backends,
        rejected,
        policy: policy.map(Box::new),
        dependencies,
        clusterset,
    }
}
