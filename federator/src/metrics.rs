//! Prometheus metrics of the live controller, exposed on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels naming a cluster.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabels {
    /// The cluster.
    pub cluster: String,
}

/// Labels of a write to a cluster.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// The cluster written to.
    pub cluster: String,
    /// `create`, `update` or `delete`.
    pub operation: &'static str,
    /// `ServiceEntry`, `DestinationRule` or `Gateway`.
    pub kind: &'static str,
}

/// Labels of an object write the API server refused.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectionLabels {
    /// The cluster written to.
    pub cluster: String,
    /// The object's kind.
    pub kind: &'static str,
    /// The API's reason: `Forbidden`, `Invalid`, `BadRequest` or `Other`.
    pub reason: &'static str,
}

/// Labels naming a reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// The reason (`PortConflict`, `VipRangeExhausted`, ...).
    pub reason: &'static str,
}

/// Labels of a cluster's lifecycle state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterStateLabels {
    /// The cluster.
    pub cluster: String,
    /// `connecting`, `listing`, `synced`, `unreachable`, `withdrawn` or `removing`.
    pub state: &'static str,
}

/// Labels of a kind federator watches in a cluster.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// The cluster.
    pub cluster: String,
    /// The API kind (`EndpointSlice`).
    pub kind: &'static str,
}

/// Every metric federator exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Registered clusters whose API server answers.
    pub clusters_connected: Gauge,
    /// Registered clusters.
    pub clusters_registered: Gauge,
    /// Global hosts in the registry.
    pub registry_hosts: Gauge,
    /// Deltas folded into the registry.
    pub deltas: Counter,
    /// Objects written, per cluster, operation and kind.
    pub writes: Family<WriteLabels, Counter>,
    /// Completed full reconciles per cluster (read everything, converge, collect garbage).
    pub full_reconciles: Family<ClusterLabels, Counter>,
    /// Failed reconciles per cluster.
    pub write_errors: Family<ClusterLabels, Counter>,
    /// Objects federator would write but that belong to someone else, per cluster.
    pub conflicts: Family<ClusterLabels, Gauge>,
    /// Hosts a cluster is held back from exporting by `--max-hosts-per-cluster`.
    pub hosts_over_quota: Family<ClusterLabels, Gauge>,
    /// 1 while a cluster's list or watch of a kind keeps failing (its objects of that kind
    /// are frozen), else 0: a cluster can answer its probe and still not be read.
    pub watch_degraded: Family<KindLabels, Gauge>,
    /// Seconds from a watch event to the last write it caused in a cluster.
    pub propagation_seconds: Histogram,
    /// Object writes the API server refused, per cluster, kind and reason.
    pub write_rejections: Family<RejectionLabels, Counter>,
    /// Writes waiting for a cluster's lists, the delete gate or a rejected object's backoff.
    pub writes_held: Family<ClusterLabels, Gauge>,
    /// Each cluster's lifecycle state: 1 for the state it is in.
    pub cluster_state: Family<ClusterStateLabels, Gauge>,
    /// Problems the registry sees in the combined state of all clusters, by reason.
    pub registry_problems: Family<ReasonLabels, Gauge>,
    /// VIPs read back from ServiceEntries at start-up that disagree with the VIP store.
    pub vip_disagreements: Gauge,
    /// 1 while this replica holds the leader lease (and writes), else 0.
    pub leader: Gauge,
    /// The term this replica last led (the lease's transition count).
    pub leader_term: Gauge,
    /// Clusters this replica owns (watches) when clusters are sharded across replicas.
    pub clusters_owned: Gauge,
    /// Clusters this replica holds the claim of (and writes) when sharded.
    pub clusters_claimed: Gauge,
    /// Requests and bytes to and from etcd.
    pub etcd: crate::state::etcd::EtcdTraffic,
    /// DNS queries and answer latency.
    pub dns: federator_dns::DnsMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("federator");
        let m = Self {
            clusters_connected: Gauge::default(),
            clusters_registered: Gauge::default(),
            registry_hosts: Gauge::default(),
            deltas: Counter::default(),
            writes: Family::default(),
            full_reconciles: Family::default(),
            write_errors: Family::default(),
            conflicts: Family::default(),
            hosts_over_quota: Family::default(),
            write_rejections: Family::default(),
            writes_held: Family::default(),
            cluster_state: Family::default(),
            registry_problems: Family::default(),
            watch_degraded: Family::default(),
            propagation_seconds: Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            leader: Gauge::default(),
            clusters_owned: Gauge::default(),
            clusters_claimed: Gauge::default(),
            etcd: Default::default(),
            vip_disagreements: Gauge::default(),
            leader_term: Gauge::default(),
            dns: federator_dns::DnsMetrics::default(),
            registry: Registry::default(),
        };
        m.dns.register(&mut registry);
        m.etcd.register(&mut registry);
        registry.register(
            "clusters_owned",
            "Clusters this replica owns and watches, when clusters are sharded across replicas",
            m.clusters_owned.clone(),
        );
        registry.register(
            "clusters_claimed",
            "Clusters this replica holds the claim of and writes (sharded across replicas)",
            m.clusters_claimed.clone(),
        );
        registry.register(
            "clusters_connected",
            "Registered clusters whose API server answers",
            m.clusters_connected.clone(),
        );
        registry.register(
            "clusters_registered",
            "Clusters registered through Secrets",
            m.clusters_registered.clone(),
        );
        registry.register(
            "registry_hosts",
            "Global hosts in the registry",
            m.registry_hosts.clone(),
        );
        registry.register(
            "registry_deltas",
            "Deltas folded into the registry",
            m.deltas.clone(),
        );
        registry.register("writes", "Objects written to clusters", m.writes.clone());
        registry.register(
            "full_reconciles",
            "Completed full reconciles of a cluster",
            m.full_reconciles.clone(),
        );
        registry.register(
            "write_errors",
            "Failed reconciles of a cluster",
            m.write_errors.clone(),
        );
        registry.register(
            "conflicts",
            "Objects in the way that federator does not own",
            m.conflicts.clone(),
        );
        registry.register(
            "cluster_hosts_over_quota",
            "Hosts of a cluster not exported because it is past --max-hosts-per-cluster",
            m.hosts_over_quota.clone(),
        );
        registry.register(
            "cluster_watch_degraded",
            "1 while a cluster's list or watch of a kind keeps failing (its objects of that kind are frozen), else 0",
            m.watch_degraded.clone(),
        );
        registry.register(
            "propagation_seconds",
            "Seconds from a watch event to the last write it caused in a cluster",
            m.propagation_seconds.clone(),
        );
        registry.register(
            "write_rejections",
            "Object writes the API server refused (admission, validation, authorization)",
            m.write_rejections.clone(),
        );
        registry.register(
            "writes_held",
            "Writes waiting for a cluster's lists, the delete gate or a refused object's backoff",
            m.writes_held.clone(),
        );
        registry.register(
            "cluster_state",
            "Lifecycle state of each registered cluster (1 for its current state)",
            m.cluster_state.clone(),
        );
        registry.register(
            "registry_problems",
            "Problems the registry sees across clusters (port conflicts, VIP exhaustion, ...)",
            m.registry_problems.clone(),
        );
        registry.register(
            "vip_store_disagreements",
            "VIPs read back from ServiceEntries at start-up that disagree with the VIP store (the store wins)",
            m.vip_disagreements.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader lease and writes, else 0",
            m.leader.clone(),
        );
        registry.register(
            "leader_term",
            "The leader term this replica last held (the lease's transition count)",
            m.leader_term.clone(),
        );
        Self { registry, ..m }
    }
}

impl Metrics {
    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts a write.
    pub fn wrote(&self, cluster: &str, operation: &'static str, kind: &'static str) {
        self.writes
            .get_or_create(&WriteLabels {
                cluster: cluster.to_owned(),
                operation,
                kind,
            })
            .inc();
    }
}
