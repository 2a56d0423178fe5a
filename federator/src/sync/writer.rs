//! One writer per destination cluster: renders what changed and applies only differences.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use futures::{StreamExt, stream};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{Namespace, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::core::object::HasSpec;
use kube::runtime::events::{EventType, Recorder, Reporter};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info, info_span, warn};

use super::findings::FindingReporter;
use super::queue::{Work, WorkQueue};
use super::{Action, Desired, Existing, decide};
use crate::istio::{DestinationRule, Gateway, ServiceEntry};
use crate::metrics::{ClusterLabels, Metrics};
use crate::model::{ClusterName, Host};
use crate::registry::Registry;
use crate::render::{RenderOptions, RenderedHost, eastwest_gateway, render_cluster, render_host};

/// Field manager of every write.
pub const FIELD_MANAGER: &str = "federator";

/// Writes in flight at once per cluster: enough to hide round trips, few enough not to
/// swamp an API server.
const WRITE_CONCURRENCY: usize = 16;

/// When a writer may act.
#[derive(Clone, Debug)]
pub struct Gates {
    /// True once the initial sync is done: nothing is written before.
    pub ready: watch::Receiver<bool>,
    /// True once deleting is safe: every cluster has been seen once (or waited for long
    /// enough), so an absent host really is gone rather than not yet known.
    pub deletes: watch::Receiver<bool>,
}

/// What a writer needs.
#[derive(Clone)]
pub struct WriterContext {
    /// The shared registry.
    pub registry: Arc<RwLock<Registry>>,
    /// How to render.
    pub render: RenderOptions,
    /// Metrics to update.
    pub metrics: Arc<Metrics>,
    /// When to act.
    pub gates: Gates,
    /// How often to re-read the cluster and repair drift even without changes.
    pub resync_period: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    ServiceEntry,
    DestinationRule,
    Gateway,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::ServiceEntry => "ServiceEntry",
            Self::DestinationRule => "DestinationRule",
            Self::Gateway => "Gateway",
        }
    }
}

type Key = (Kind, String);

/// A rendered object of either kind, with what is compared of it.
enum Rendered {
    ServiceEntry(Box<ServiceEntry>, Desired),
    DestinationRule(Box<DestinationRule>, Desired),
    Gateway(Box<Gateway>, Desired),
}

impl Rendered {
    fn desired(&self) -> &Desired {
        match self {
            Self::ServiceEntry(_, d) | Self::DestinationRule(_, d) | Self::Gateway(_, d) => d,
        }
    }
}

/// A write to carry out.
enum Op {
    Apply(Key, Rendered),
    Delete(Key),
}

/// An object in the way, and whether it has been reported.
struct Conflict {
    uid: Option<String>,
    reported: bool,
}

/// Starts the writer of `cluster`; it works through `queue` until aborted.
pub fn spawn_writer(
    cluster: ClusterName,
    client: Client,
    queue: Arc<WorkQueue>,
    ctx: WriterContext,
) -> JoinHandle<()> {
    let span = info_span!("sync", cluster = %cluster);
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "federator".into(),
            instance: None,
        },
    );
    let writer = Writer {
        findings: FindingReporter::new(cluster.clone(), recorder.clone()),
        cluster,
        client,
        ctx,
        recorder,
        existing: HashMap::new(),
        conflicts: BTreeMap::new(),
        deferred_deletes: false,
    };
    tokio::spawn(writer.run(queue).instrument(span))
}

struct Writer {
    cluster: ClusterName,
    client: Client,
    ctx: WriterContext,
    recorder: Recorder,
    /// What the sync namespace holds, as last read or written.
    existing: HashMap<Key, Existing>,
    conflicts: BTreeMap<Key, Conflict>,
    deferred_deletes: bool,
    /// Reports the cluster's setup problems once each.
    findings: FindingReporter,
}

impl Writer {
    async fn run(mut self, queue: Arc<WorkQueue>) {
        let mut ready = self.ctx.gates.ready.clone();
        if ready.wait_for(|r| *r).await.is_err() {
            return;
        }
        queue.push(Work {
            full: true,
            ..Work::default()
        });
        let mut deletes = self.ctx.gates.deletes.clone();
        let retry = || {
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(30))
                .with_jitter()
                .without_max_times()
                .build()
        };
        let mut backoff = retry();
        // Created once: a sleep made anew on each loop turn never fires under steady traffic.
        let period = self.ctx.resync_period;
        let mut resync = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let work = tokio::select! {
                work = queue.next() => work,
                _ = resync.tick() => Work { full: true, ..Work::default() },
                Ok(()) = deletes.changed(), if self.deferred_deletes => {
                    if !*deletes.borrow() {
                        continue;
                    }
                    self.deferred_deletes = false;
                    Work { full: true, ..Work::default() }
                }
            };
            let result = if work.full {
                // Any full pass counts as the resync.
                resync.reset();
                self.reconcile_all().await
            } else {
                self.reconcile_hosts(&work.hosts).await
            };
            match result {
                Ok(writes) => {
                    backoff = retry();
                    if writes > 0
                        && let Some(since) = work.since
                    {
                        self.ctx
                            .metrics
                            .propagation_seconds
                            .observe(since.elapsed().as_secs_f64());
                    }
                }
                Err(err) => {
                    let wait = backoff.next().unwrap_or(Duration::from_secs(30));
                    warn!(error = %err, retry_in = ?wait, "sync failed; will retry");
                    self.ctx
                        .metrics
                        .write_errors
                        .get_or_create(&self.labels())
                        .inc();
                    queue.push(work);
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    fn labels(&self) -> ClusterLabels {
        ClusterLabels {
            cluster: self.cluster.to_string(),
        }
    }

    /// Reads the sync namespace, renders every host and converges; removes federator's
    /// objects that are no longer rendered.
    async fn reconcile_all(&mut self) -> Result<usize, kube::Error> {
        self.ensure_namespace().await?;
        self.existing.clear();
        self.read_existing::<ServiceEntry>(Kind::ServiceEntry)
            .await?;
        self.read_existing::<DestinationRule>(Kind::DestinationRule)
            .await?;
        self.read_existing::<Gateway>(Kind::Gateway).await?;
        let (rendered, gateway, findings) = {
            let registry = read(&self.ctx.registry);
            (
                render_cluster(&registry, &self.cluster, &self.ctx.render),
                eastwest_gateway(&registry, &self.cluster, &self.ctx.render),
                registry.cluster_findings(&self.cluster),
            )
        };
        let mut desired: HashMap<Key, Rendered> = HashMap::new();
        for host in rendered {
            insert_rendered(&mut desired, host);
        }
        if let Some(gateway) = gateway {
            let wanted = Desired::new(&gateway.metadata, &gateway.spec);
            let key = (Kind::Gateway, gateway.metadata.name.clone());
            desired.insert(key, Rendered::Gateway(Box::new(gateway.into()), wanted));
        }
        self.findings.report(findings).await;
        let objects = desired.len();
        let mut keys: BTreeSet<Key> = desired.keys().cloned().collect();
        keys.extend(self.existing.keys().cloned());
        let ops: Vec<Op> = keys
            .into_iter()
            .filter_map(|key| {
                let wanted = desired.remove(&key);
                self.plan(key, wanted)
            })
            .collect();
        let writes = self.execute(ops).await?;
        self.report_conflicts().await;
        self.ctx
            .metrics
            .full_reconciles
            .get_or_create(&self.labels())
            .inc();
        info!(objects, writes, "full reconcile done");
        Ok(writes)
    }

    /// Re-renders `hosts` and converges just those objects.
    async fn reconcile_hosts(&mut self, hosts: &BTreeSet<Host>) -> Result<usize, kube::Error> {
        let rendered: Vec<(Host, Option<RenderedHost>)> = {
            let registry = read(&self.ctx.registry);
            hosts
                .iter()
                .map(|h| {
                    let r = registry
                        .get(h)
                        .and_then(|s| render_host(&registry, s, &self.cluster, &self.ctx.render));
                    (h.clone(), r)
                })
                .collect()
        };
        let mut ops = Vec::new();
        for (host, rendered) in rendered {
            let mut desired = HashMap::new();
            if let Some(r) = rendered {
                insert_rendered(&mut desired, r);
            }
            for kind in [Kind::ServiceEntry, Kind::DestinationRule] {
                let key = (kind, host.as_str().to_owned());
                let wanted = desired.remove(&key);
                ops.extend(self.plan(key, wanted));
            }
        }
        let writes = self.execute(ops).await?;
        self.report_conflicts().await;
        debug!(hosts = hosts.len(), writes, "hosts reconciled");
        Ok(writes)
    }

    /// What one object name needs, if anything. Conflicts are noted for reporting; deletes
    /// wait while the deletes gate is closed.
    fn plan(&mut self, key: Key, desired: Option<Rendered>) -> Option<Op> {
        match decide(
            desired.as_ref().map(Rendered::desired),
            self.existing.get(&key),
        ) {
            Action::Keep => {
                self.conflicts.remove(&key);
                None
            }
            Action::Apply => desired.map(|d| Op::Apply(key, d)),
            Action::Delete => {
                if *self.ctx.gates.deletes.borrow() {
                    Some(Op::Delete(key))
                } else {
                    debug!(
                        kind = key.0.name(),
                        name = key.1,
                        "delete deferred until every cluster is synced"
                    );
                    self.deferred_deletes = true;
                    None
                }
            }
            Action::Conflict => {
                let uid = self.existing.get(&key).and_then(|e| e.uid.clone());
                self.conflicts.entry(key).or_insert(Conflict {
                    uid,
                    reported: false,
                });
                None
            }
        }
    }

    /// Carries out `ops`, several at a time. Successful writes update the cache even when
    /// others fail; the first failure is returned so the work is retried.
    async fn execute(&mut self, ops: Vec<Op>) -> Result<usize, kube::Error> {
        let client = self.client.clone();
        let namespace = self.ctx.render.namespace.clone();
        let results: Vec<(Op, Result<Option<Existing>, kube::Error>)> = stream::iter(ops)
            .map(|op| {
                let (client, namespace) = (client.clone(), namespace.clone());
                async move {
                    let result = match &op {
                        Op::Apply(_, Rendered::ServiceEntry(se, _)) => {
                            apply(&client, &namespace, se.as_ref()).await.map(Some)
                        }
                        Op::Apply(_, Rendered::DestinationRule(dr, _)) => {
                            apply(&client, &namespace, dr.as_ref()).await.map(Some)
                        }
                        Op::Apply(_, Rendered::Gateway(gw, _)) => {
                            apply(&client, &namespace, gw.as_ref()).await.map(Some)
                        }
                        Op::Delete((Kind::ServiceEntry, name)) => {
                            delete::<ServiceEntry>(&client, &namespace, name)
                                .await
                                .map(|()| None)
                        }
                        Op::Delete((Kind::DestinationRule, name)) => {
                            delete::<DestinationRule>(&client, &namespace, name)
                                .await
                                .map(|()| None)
                        }
                        Op::Delete((Kind::Gateway, name)) => {
                            delete::<Gateway>(&client, &namespace, name)
                                .await
                                .map(|()| None)
                        }
                    };
                    (op, result)
                }
            })
            .buffer_unordered(WRITE_CONCURRENCY)
            .collect()
            .await;
        let mut writes = 0;
        let mut first_error = None;
        for (op, result) in results {
            match (op, result) {
                (Op::Apply(key, _), Ok(stored)) => {
                    info!(kind = key.0.name(), name = key.1, "applied");
                    self.ctx
                        .metrics
                        .wrote(self.cluster.as_str(), "apply", key.0.name());
                    if let Some(stored) = stored {
                        self.existing.insert(key, stored);
                    }
                    writes += 1;
                }
                (Op::Delete(key), Ok(_)) => {
                    info!(kind = key.0.name(), name = key.1, "deleted");
                    self.ctx
                        .metrics
                        .wrote(self.cluster.as_str(), "delete", key.0.name());
                    self.existing.remove(&key);
                    writes += 1;
                }
                (Op::Apply(key, _) | Op::Delete(key), Err(err)) => {
                    warn!(kind = key.0.name(), name = key.1, error = %err, "write failed");
                    first_error.get_or_insert(err);
                }
            }
        }
        match first_error {
            Some(err) => Err(err),
            None => Ok(writes),
        }
    }

    /// Reads what the sync namespace holds of `K`, as dynamic objects: one object
    /// federator's types cannot read (a user's DestinationRule with `tls.mode: SIMPLE`) must
    /// not fail the list, and so the whole cluster. Such an object counts with its raw spec:
    /// a conflict if it is not federator's, rewritten if it is.
    async fn read_existing<K>(&mut self, kind: Kind) -> Result<(), kube::Error>
    where
        K: Resource<DynamicType = ()> + HasSpec,
        K::Spec: Serialize + DeserializeOwned,
    {
        let resource = ApiResource::erase::<K>(&());
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &self.ctx.render.namespace, &resource);
        for object in super::paged::list_all(&api, &ListParams::default()).await? {
            let name = object.metadata.name.clone().unwrap_or_default();
            let raw = object.data.get("spec").cloned().unwrap_or_default();
            let existing = match serde_json::from_value::<K::Spec>(raw.clone()) {
                Ok(spec) => existing(&object.metadata, &spec),
                Err(_) => {
                    debug!(
                        kind = kind.name(),
                        name, "a spec federator's types do not read"
                    );
                    existing(&object.metadata, &raw)
                }
            };
            self.existing.insert((kind, name), existing);
        }
        Ok(())
    }

    /// Creates the sync namespace when it is missing (a read first, so an unchanged cluster
    /// sees no write).
    async fn ensure_namespace(&self) -> Result<(), kube::Error> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let name = &self.ctx.render.namespace;
        if api.get_opt(name).await?.is_some() {
            return Ok(());
        }
        let mut ns = Namespace::default();
        ns.metadata.name = Some(name.clone());
        match api.create(&PostParams::default(), &ns).await {
            Ok(_) => {
                info!(namespace = name, "created the sync namespace");
                Ok(())
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Reports each new conflict once (log line and an Event on the object) and updates the
    /// gauge.
    async fn report_conflicts(&mut self) {
        let new: Vec<(Key, Option<String>)> = self
            .conflicts
            .iter_mut()
            .filter(|(_, c)| !c.reported)
            .map(|(k, c)| {
                c.reported = true;
                (k.clone(), c.uid.clone())
            })
            .collect();
        for (key, uid) in new {
            self.report_conflict(&key, uid).await;
        }
        let count = i64::try_from(self.conflicts.len()).unwrap_or(i64::MAX);
        self.ctx
            .metrics
            .conflicts
            .get_or_create(&self.labels())
            .set(count);
    }

    async fn report_conflict(&self, key: &Key, uid: Option<String>) {
        let (kind, name) = (key.0.name(), &key.1);
        let namespace = &self.ctx.render.namespace;
        warn!(
            kind,
            name,
            namespace,
            "not writing: an object of that name exists and is not federator's (no app.kubernetes.io/managed-by=federator label)"
        );
        let reference = ObjectReference {
            api_version: Some("networking.istio.io/v1".into()),
            kind: Some(kind.into()),
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            uid,
            ..Default::default()
        };
        let note = format!(
            "federator wants to write {kind} {name} but this object is not labelled \
             app.kubernetes.io/managed-by=federator; it is left untouched"
        );
        let warning = EventType::Warning;
        crate::events::publish(
            &self.recorder,
            &reference,
            warning,
            "OwnershipConflict",
            "Sync",
            &note,
        )
        .await;
    }
}

async fn apply<K>(client: &Client, namespace: &str, object: &K) -> Result<Existing, kube::Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + HasSpec
        + Clone
        + std::fmt::Debug
        + Serialize
        + DeserializeOwned,
    K::Spec: Serialize,
{
    let name = object.meta().name.clone().unwrap_or_default();
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let stored = api.patch(&name, &params, &Patch::Apply(object)).await?;
    Ok(existing_of(&stored))
}

async fn delete<K>(client: &Client, namespace: &str, name: &str) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(err) => Err(err),
    }
}

fn insert_rendered(into: &mut HashMap<Key, Rendered>, host: RenderedHost) {
    let se = host.service_entry;
    let dr = host.destination_rule;
    let se_desired = Desired::new(&se.metadata, &se.spec);
    let dr_desired = Desired::new(&dr.metadata, &dr.spec);
    let se_key = (Kind::ServiceEntry, se.metadata.name.clone());
    let dr_key = (Kind::DestinationRule, dr.metadata.name.clone());
    into.insert(
        se_key,
        Rendered::ServiceEntry(Box::new(se.into()), se_desired),
    );
    into.insert(
        dr_key,
        Rendered::DestinationRule(Box::new(dr.into()), dr_desired),
    );
}

fn existing_of<K: Resource + HasSpec>(object: &K) -> Existing
where
    K::Spec: Serialize,
{
    existing(object.meta(), object.spec())
}

/// What the planner compares of an object read from (or written to) a cluster.
fn existing(meta: &ObjectMeta, spec: &impl Serialize) -> Existing {
    Existing::new(
        meta.labels.clone().unwrap_or_default(),
        meta.annotations.clone().unwrap_or_default(),
        meta.uid.clone(),
        spec,
    )
}

fn read(registry: &RwLock<Registry>) -> std::sync::RwLockReadGuard<'_, Registry> {
    registry
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
