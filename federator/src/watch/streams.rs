//! The watch streams of one cluster: which kinds it serves, one kube-runtime watcher per
//! kind, merged into one stream of events tagged with their kind.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::stream::{BoxStream, SelectAll};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource};
use tracing::{debug, info, warn};

use crate::crd::{Dependency, GlobalTrafficPolicy};
use crate::ingest::{
    AdmiralDependency, AdmiralGlobalTrafficPolicy, ClusterProperty, IngestConfig, Rollout,
    ServiceExport,
};
use crate::istio::Gateway;

/// The kinds watched in every cluster, plus the optional ones found installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    Service,
    EndpointSlice,
    Deployment,
    Node,
    Rollout,
    GlobalTrafficPolicy,
    Dependency,
    AdmiralPolicy,
    AdmiralDependency,
    MeshNamespace,
    IstioGateway,
    ServiceExport,
    ClusterProperty,
}

impl Kind {
    /// The API kind, as users read it in `/readyz`, Events and metric labels.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Service => "Service",
            Self::EndpointSlice => "EndpointSlice",
            Self::Deployment => "Deployment",
            Self::Node => "Node",
            Self::Rollout => "Rollout",
            Self::GlobalTrafficPolicy => "GlobalTrafficPolicy",
            Self::Dependency => "Dependency",
            Self::AdmiralPolicy => "GlobalTrafficPolicy (admiral.io)",
            Self::AdmiralDependency => "Dependency (admiral.io)",
            Self::MeshNamespace => "Namespace",
            Self::IstioGateway => "Gateway",
            Self::ServiceExport => "ServiceExport",
            Self::ClusterProperty => "ClusterProperty",
        }
    }

    /// The resource as an RBAC rule names it (group, then plural), for "grant ... on".
    pub(super) fn resource(self) -> &'static str {
        match self {
            Self::Service => "services",
            Self::EndpointSlice => "discovery.k8s.io endpointslices",
            Self::Deployment => "apps deployments",
            Self::Node => "nodes",
            Self::Rollout => "argoproj.io rollouts",
            Self::GlobalTrafficPolicy => "federator.io globaltrafficpolicies",
            Self::Dependency => "federator.io dependencies",
            Self::AdmiralPolicy => "admiral.io globaltrafficpolicies",
            Self::AdmiralDependency => "admiral.io dependencies",
            Self::MeshNamespace => "namespaces",
            Self::IstioGateway => "networking.istio.io gateways",
            Self::ServiceExport => "multicluster.x-k8s.io serviceexports",
            Self::ClusterProperty => "about.k8s.io clusterproperties",
        }
    }
}

/// One event of any watched kind. Boxed: the objects are large and events move through a
/// merged stream.
pub(super) enum Watched {
    Service(Box<Event<Service>>),
    EndpointSlice(Box<Event<EndpointSlice>>),
    Deployment(Box<Event<Deployment>>),
    Node(Box<Event<Node>>),
    Rollout(Box<Event<Rollout>>),
    GlobalTrafficPolicy(Box<Event<GlobalTrafficPolicy>>),
    Dependency(Box<Event<Dependency>>),
    AdmiralPolicy(Box<Event<AdmiralGlobalTrafficPolicy>>),
    AdmiralDependency(Box<Event<AdmiralDependency>>),
    MeshNamespace(Box<Event<Namespace>>),
    IstioGateway(Box<Event<Gateway>>),
    ServiceExport(Box<Event<ServiceExport>>),
    ClusterProperty(Box<Event<ClusterProperty>>),
}

impl Watched {
    /// Whether this announces a (re)list. kube-runtime sends it before listing, so it says
    /// nothing about whether the list works: a list that fails with a 403 repeats Init, error,
    /// Init, error, ... (the Init also resets the watcher's backoff, so about once a second).
    pub(super) fn is_init(&self) -> bool {
        fn init<K>(event: &Event<K>) -> bool {
            matches!(event, Event::Init)
        }
        match self {
            Self::Service(e) => init(e),
            Self::EndpointSlice(e) => init(e),
            Self::Deployment(e) => init(e),
            Self::Node(e) => init(e),
            Self::Rollout(e) => init(e),
            Self::GlobalTrafficPolicy(e) => init(e),
            Self::Dependency(e) => init(e),
            Self::AdmiralPolicy(e) => init(e),
            Self::AdmiralDependency(e) => init(e),
            Self::MeshNamespace(e) => init(e),
            Self::IstioGateway(e) => init(e),
            Self::ServiceExport(e) => init(e),
            Self::ClusterProperty(e) => init(e),
        }
    }
}

/// The events of every watched kind, merged.
pub(super) type Events = SelectAll<BoxStream<'static, (Kind, Result<Watched, watcher::Error>)>>;

/// The watches of one cluster and the kinds they cover.
#[derive(Default)]
pub(super) struct Opened {
    pub(super) events: Events,
    pub(super) kinds: BTreeSet<Kind>,
}

impl Opened {
    fn add<K: Watchable>(
        &mut self,
        client: &Client,
        kind: Kind,
        wrap: fn(Box<Event<K>>) -> Watched,
        config: watcher::Config,
    ) {
        self.kinds.insert(kind);
        self.events.push(stream(client, kind, wrap, config));
    }
}

/// Starts a watch on every kind federator reads that the cluster serves (waiting, as long as
/// it takes, for the cluster to say which optional kinds it serves).
pub(super) async fn open(client: &Client, config: &IngestConfig) -> Opened {
    let optional = discover_optional(client).await;
    let mut opened = Opened::default();
    let all = watcher::Config::default;
    opened.add(client, Kind::Service, Watched::Service, all());
    opened.add(client, Kind::EndpointSlice, Watched::EndpointSlice, all());
    opened.add(client, Kind::Deployment, Watched::Deployment, all());
    opened.add(client, Kind::Node, Watched::Node, all());
    // Only Istio's namespace: its network label.
    let mesh_namespace = all().fields(&format!("metadata.name={}", config.mesh_namespace));
    opened.add(
        client,
        Kind::MeshNamespace,
        Watched::MeshNamespace,
        mesh_namespace,
    );
    if optional.rollouts {
        opened.add(client, Kind::Rollout, Watched::Rollout, all());
    }
    if optional.policies {
        opened.add(
            client,
            Kind::GlobalTrafficPolicy,
            Watched::GlobalTrafficPolicy,
            all(),
        );
    }
    if optional.dependencies {
        opened.add(client, Kind::Dependency, Watched::Dependency, all());
    }
    if optional.admiral_policies {
        opened.add(client, Kind::AdmiralPolicy, Watched::AdmiralPolicy, all());
    }
    if optional.admiral_dependencies {
        opened.add(
            client,
            Kind::AdmiralDependency,
            Watched::AdmiralDependency,
            all(),
        );
    }
    if optional.gateways {
        opened.add(client, Kind::IstioGateway, Watched::IstioGateway, all());
    }
    if optional.service_exports {
        opened.add(client, Kind::ServiceExport, Watched::ServiceExport, all());
    } else if optional.old_service_exports {
        warn!(
            "the cluster serves ServiceExports only as multicluster.x-k8s.io/v1alpha1; federator reads v1beta1 (the CRDs of sigs.k8s.io/mcs-api v0.5 and later): its ServiceExports are not read until the CRDs are upgraded"
        );
    }
    if optional.cluster_properties {
        // Only the cluster's id.
        let id = all().fields(&format!(
            "metadata.name={}",
            crate::model::CLUSTER_ID_PROPERTY
        ));
        opened.add(client, Kind::ClusterProperty, Watched::ClusterProperty, id);
    }
    info!(
        rollouts = optional.rollouts,
        policies = optional.policies,
        dependencies = optional.dependencies,
        admiral = optional.admiral_policies || optional.admiral_dependencies,
        gateways = optional.gateways,
        service_exports = optional.service_exports,
        "watching"
    );
    opened
}

/// What a watched kind must be.
trait Watchable:
    Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static
{
}

impl<K> Watchable for K where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + 'static
{
}

fn stream<K: Watchable>(
    client: &Client,
    kind: Kind,
    wrap: fn(Box<Event<K>>) -> Watched,
    config: watcher::Config,
) -> BoxStream<'static, (Kind, Result<Watched, watcher::Error>)> {
    let api: Api<K> = Api::all(client.clone());
    watcher::watcher(api, config)
        .default_backoff()
        .map_ok(move |e| wrap(Box::new(e)))
        .map(move |r| (kind, r))
        .boxed()
}

/// Whether a watch failed because the credentials may not read that kind.
pub(super) fn is_forbidden(err: &watcher::Error) -> bool {
    match err {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.code == 403,
        watcher::Error::WatchError(status) => status.code == 403,
        _ => false,
    }
}

#[derive(Debug, Default)]
struct Optional {
    rollouts: bool,
    policies: bool,
    dependencies: bool,
    admiral_policies: bool,
    admiral_dependencies: bool,
    gateways: bool,
    service_exports: bool,
    /// The cluster serves ServiceExports only as `v1alpha1` (MCS CRDs before v0.5).
    old_service_exports: bool,
    cluster_properties: bool,
}

/// Which optional CRDs the cluster serves. Retries until the cluster answers: an
/// unreachable cluster must not be mistaken for one without Argo.
async fn discover_optional(client: &Client) -> Optional {
    use backon::{ExponentialBuilder, Retryable};
    let discover = || async {
        let rollouts = serves(client, "argoproj.io/v1alpha1", "rollouts").await?;
        let policies = serves(client, "federator.io/v1alpha1", "globaltrafficpolicies").await?;
        let dependencies = serves(client, "federator.io/v1alpha1", "dependencies").await?;
        let admiral = "admiral.io/v1alpha1";
        let admiral_policies = serves(client, admiral, "globaltrafficpolicies").await?;
        let admiral_dependencies = serves(client, admiral, "dependencies").await?;
        let gateways = serves(client, "networking.istio.io/v1", "gateways").await?;
        let mcs = format!(
            "{}/{}",
            crate::ingest::MCS_GROUP,
            crate::ingest::MCS_VERSION
        );
        let service_exports = serves(client, &mcs, "serviceexports").await?;
        let old_service_exports = !service_exports
            && serves(client, "multicluster.x-k8s.io/v1alpha1", "serviceexports").await?;
        let cluster_properties =
            serves(client, "about.k8s.io/v1alpha1", "clusterproperties").await?;
        Ok::<_, kube::Error>(Optional {
            admiral_policies,
            admiral_dependencies,
            rollouts,
            policies,
            dependencies,
            gateways,
            service_exports,
            old_service_exports,
            cluster_properties,
        })
    };
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(10))
        .with_jitter()
        .without_max_times();
    // The retry has no limit: an unreachable cluster must not be mistaken for one without
    // Argo, so this only returns once the cluster answered.
    discover
        .retry(backoff)
        .notify(|err, after| debug!(error = %crate::connect::describe::kube_error(err), retry_in = ?after, "discovery failed; retrying"))
        .await
        .unwrap_or_default()
}

async fn serves(client: &Client, group_version: &str, plural: &str) -> Result<bool, kube::Error> {
    match client.list_api_group_resources(group_version).await {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == plural)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_announcement_of_a_list_is_init() {
        let slice = |event| Watched::EndpointSlice(Box::new(event));
        assert!(slice(Event::Init).is_init());
        assert!(!slice(Event::InitDone).is_init());
        assert!(!slice(Event::Apply(EndpointSlice::default())).is_init());
    }
}
