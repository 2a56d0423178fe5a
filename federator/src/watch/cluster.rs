use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::{BoxStream, SelectAll};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info, info_span, warn};

use super::tracker::{ApiKey, Tracker};
use crate::crd::GlobalTrafficPolicy;
use crate::ingest::{self, IngestConfig, IngestError, Ingested, Rollout};
use crate::istio::Gateway;
use crate::model::ClusterName;
use crate::registry::Delta;

/// A delta and when its watch event arrived (for propagation latency).
#[derive(Debug, Clone)]
pub struct Update {
    /// The change.
    pub delta: Delta,
    /// When the watch event that caused it was received.
    pub received: Instant,
}

/// What a cluster's watchers have reported so far. It outlives a reconnect (rotated
/// credentials), so the new connection's first list removes exactly what vanished in
/// between instead of withdrawing the cluster.
#[derive(Debug)]
pub struct WatchState {
    cluster: ClusterName,
    trackers: std::collections::BTreeMap<Kind, Tracker>,
}

impl WatchState {
    /// Nothing reported yet.
    pub fn new(cluster: ClusterName) -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self {
            cluster,
            trackers: std::collections::BTreeMap::new(),
        }))
    }

    fn tracker(&mut self, kind: Kind) -> &mut Tracker {
        let cluster = self.cluster.clone();
        self.trackers
            .entry(kind)
            .or_insert_with(|| Tracker::new(cluster))
    }
}

/// What the watchers send to the registry loop, in order.
// Deltas are the common case and the marker is rare: boxing every delta to shrink the marker
// would cost an allocation per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum WatchMessage {
    /// A change to fold into the registry.
    Delta(Update),
    /// Every kind of the cluster has been listed completely: once the registry loop has
    /// applied everything sent before this, it marks the cluster synced (so nothing is
    /// written from a registry that has not yet absorbed the cluster's lists).
    Listed(watch::Sender<bool>),
}

/// A running set of watchers for one cluster; stops when dropped.
#[derive(Debug)]
pub struct ClusterWatch {
    /// Turns true once every kind has been listed completely at least once and the registry
    /// has applied those lists.
    pub synced: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl Drop for ClusterWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The kinds watched in every cluster, plus the optional ones found installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Service,
    EndpointSlice,
    Deployment,
    Node,
    Rollout,
    GlobalTrafficPolicy,
    MeshNamespace,
    IstioGateway,
}

/// One event of any watched kind. Boxed: the objects are large and events move through a
/// merged stream.
enum Watched {
    Service(Box<Event<Service>>),
    EndpointSlice(Box<Event<EndpointSlice>>),
    Deployment(Box<Event<Deployment>>),
    Node(Box<Event<Node>>),
    Rollout(Box<Event<Rollout>>),
    GlobalTrafficPolicy(Box<Event<GlobalTrafficPolicy>>),
    MeshNamespace(Box<Event<Namespace>>),
    IstioGateway(Box<Event<Gateway>>),
}

/// Starts watching `cluster`, sending deltas to `tx`.
pub fn watch_cluster(
    state: Arc<Mutex<WatchState>>,
    client: Client,
    config: IngestConfig,
    tx: mpsc::Sender<WatchMessage>,
) -> ClusterWatch {
    let (synced_tx, synced) = watch::channel(false);
    let cluster = lock(&state).cluster.clone();
    let span = info_span!("watch", cluster = %cluster);
    let task = tokio::spawn(run(cluster, state, client, config, tx, synced_tx).instrument(span));
    ClusterWatch { synced, task }
}

fn lock(state: &Mutex<WatchState>) -> std::sync::MutexGuard<'_, WatchState> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn run(
    cluster: ClusterName,
    state: Arc<Mutex<WatchState>>,
    client: Client,
    config: IngestConfig,
    tx: mpsc::Sender<WatchMessage>,
    synced: watch::Sender<bool>,
) {
    let optional = discover_optional(&client).await;
    let mut streams: SelectAll<BoxStream<'static, (Kind, Result<Watched, watcher::Error>)>> =
        SelectAll::new();
    let all = watcher::Config::default;
    streams.push(stream(&client, Kind::Service, Watched::Service, all()));
    streams.push(stream(
        &client,
        Kind::EndpointSlice,
        Watched::EndpointSlice,
        all(),
    ));
    streams.push(stream(
        &client,
        Kind::Deployment,
        Watched::Deployment,
        all(),
    ));
    streams.push(stream(&client, Kind::Node, Watched::Node, all()));
    // Only Istio's namespace: its network label.
    let mesh_namespace = all().fields(&format!("metadata.name={}", config.mesh_namespace));
    streams.push(stream(
        &client,
        Kind::MeshNamespace,
        Watched::MeshNamespace,
        mesh_namespace,
    ));
    let mut pending: BTreeSet<Kind> = [
        Kind::Service,
        Kind::EndpointSlice,
        Kind::Deployment,
        Kind::Node,
        Kind::MeshNamespace,
    ]
    .into();
    if optional.rollouts {
        streams.push(stream(&client, Kind::Rollout, Watched::Rollout, all()));
        pending.insert(Kind::Rollout);
    }
    if optional.policies {
        streams.push(stream(
            &client,
            Kind::GlobalTrafficPolicy,
            Watched::GlobalTrafficPolicy,
            all(),
        ));
        pending.insert(Kind::GlobalTrafficPolicy);
    }
    if optional.gateways {
        streams.push(stream(
            &client,
            Kind::IstioGateway,
            Watched::IstioGateway,
            all(),
        ));
        pending.insert(Kind::IstioGateway);
    }
    info!(
        rollouts = optional.rollouts,
        policies = optional.policies,
        gateways = optional.gateways,
        "watching"
    );
    while let Some((kind, event)) = streams.next().await {
        let received = Instant::now();
        let event = match event {
            Ok(event) => event,
            Err(err) => {
                warn!(kind = ?kind, error = %err, "watch failed; retrying with backoff");
                // Istio's namespace and Gateways refine what federator writes; without read
                // access to them (an older RBAC) the cluster still federates, with the
                // network from its Secret or its name.
                if matches!(kind, Kind::MeshNamespace | Kind::IstioGateway)
                    && is_forbidden(&err)
                    && pending.remove(&kind)
                {
                    warn!(kind = ?kind, "no read access: not waiting for this kind; grant list and watch on it");
                    if pending.is_empty()
                        && tx.send(WatchMessage::Listed(synced.clone())).await.is_err()
                    {
                        return;
                    }
                }
                continue;
            }
        };
        let (deltas, done) = {
            let mut state = lock(&state);
            handle(&cluster, &config, state.tracker(kind), event)
        };
        for delta in deltas {
            if tx
                .send(WatchMessage::Delta(Update { delta, received }))
                .await
                .is_err()
            {
                return;
            }
        }
        if done && pending.remove(&kind) && pending.is_empty() {
            info!("initial list complete");
            if tx.send(WatchMessage::Listed(synced.clone())).await.is_err() {
                return;
            }
        }
    }
}

fn stream<K>(
    client: &Client,
    kind: Kind,
    wrap: fn(Box<Event<K>>) -> Watched,
    config: watcher::Config,
) -> BoxStream<'static, (Kind, Result<Watched, watcher::Error>)>
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + 'static,
{
    let api: Api<K> = Api::all(client.clone());
    watcher::watcher(api, config)
        .default_backoff()
        .map_ok(move |e| wrap(Box::new(e)))
        .map(move |r| (kind, r))
        .boxed()
}

/// Applies one event to its tracker; returns the deltas and whether a full list finished.
fn handle(
    cluster: &ClusterName,
    config: &IngestConfig,
    tracker: &mut Tracker,
    event: Watched,
) -> (Vec<Delta>, bool) {
    macro_rules! dispatch {
        ($event:expr, $kind:literal, $convert:expr) => {
            match $event {
                Event::Init => {
                    tracker.init();
                    (Vec::new(), false)
                }
                Event::InitApply(obj) | Event::Apply(obj) => {
                    let key = api_key($kind, &obj);
                    let object = report(cluster, $convert(&obj));
                    (tracker.apply(key, object), false)
                }
                Event::Delete(obj) => (tracker.delete(&api_key($kind, &obj)), false),
                Event::InitDone => (tracker.init_done(), true),
            }
        };
    }
    match event {
        Watched::Service(e) => dispatch!(*e, "Service", |s| ingest::service(s, config).map(Some)),
        Watched::EndpointSlice(e) => {
            dispatch!(*e, "EndpointSlice", |s| ingest::endpoint_slice(s).map(Some))
        }
        Watched::Deployment(e) => dispatch!(*e, "Deployment", |d| ingest::deployment(d, config)),
        Watched::Node(e) => dispatch!(*e, "Node", |n| ingest::node(n).map(Some)),
        Watched::Rollout(e) => dispatch!(*e, "Rollout", |r| ingest::rollout(r, config)),
        Watched::GlobalTrafficPolicy(e) => {
            dispatch!(*e, "GlobalTrafficPolicy", |p| ingest::policy(p).map(Some))
        }
        Watched::MeshNamespace(e) => {
            dispatch!(*e, "Namespace", |n| ingest::mesh_namespace(n, config))
        }
        Watched::IstioGateway(e) => {
            dispatch!(*e, "Gateway", |g| ingest::passthrough_claim(g, config))
        }
    }
}

/// Whether a watch failed because the credentials may not read that kind.
fn is_forbidden(err: &watcher::Error) -> bool {
    match err {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.code == 403,
        watcher::Error::WatchError(status) => status.code == 403,
        _ => false,
    }
}

fn api_key<K: Resource>(kind: &'static str, obj: &K) -> ApiKey {
    let meta = obj.meta();
    (
        kind,
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// Logs what ingest left out or rejected, naming the cluster and object.
fn report(
    cluster: &ClusterName,
    result: Result<Option<Ingested>, IngestError>,
) -> Option<crate::model::Object> {
    match result {
        Ok(Some(ingested)) => {
            for warning in &ingested.warnings {
                warn!(cluster = %cluster, object = %ingested.object.reference(), "{warning}");
            }
            Some(ingested.object)
        }
        Ok(None) => None,
        Err(err) => {
            warn!(cluster = %cluster, kind = err.kind, object = err.key, reason = err.reason, "object ignored");
            None
        }
    }
}

#[derive(Debug, Default)]
struct Optional {
    rollouts: bool,
    policies: bool,
    gateways: bool,
}

/// Which optional CRDs the cluster serves. Retries until the cluster answers: an
/// unreachable cluster must not be mistaken for one without Argo.
async fn discover_optional(client: &Client) -> Optional {
    use backon::{ExponentialBuilder, Retryable};
    let discover = || async {
        let rollouts = serves(client, "argoproj.io/v1alpha1", "rollouts").await?;
        let policies = serves(client, "federator.io/v1alpha1", "globaltrafficpolicies").await?;
        let gateways = serves(client, "networking.istio.io/v1", "gateways").await?;
        Ok::<_, kube::Error>(Optional {
            rollouts,
            policies,
            gateways,
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
