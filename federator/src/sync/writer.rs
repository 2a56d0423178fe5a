//! One writer per destination cluster: renders what changed and applies only differences.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{Namespace, ObjectReference};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::object::HasSpec;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info, info_span, warn};

use super::diff::{Action, Desired, Existing, decide};
use super::queue::{Work, WorkQueue};
use crate::istio::{DestinationRule, ServiceEntry};
use crate::metrics::{ClusterLabels, Metrics};
use crate::model::{ClusterName, Host};
use crate::registry::Registry;
use crate::render::{RenderOptions, RenderedHost, render_cluster, render_host};

/// Field manager of every write.
pub const FIELD_MANAGER: &str = "federator";

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
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::ServiceEntry => "ServiceEntry",
            Self::DestinationRule => "DestinationRule",
        }
    }
}

type Key = (Kind, String);

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
        cluster,
        client,
        ctx,
        recorder,
        existing: HashMap::new(),
        reported_conflicts: BTreeSet::new(),
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
    reported_conflicts: BTreeSet<Key>,
    deferred_deletes: bool,
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
        let mut backoff = Duration::from_millis(200);
        loop {
            let work = tokio::select! {
                work = queue.next() => work,
                _ = tokio::time::sleep(self.ctx.resync_period) => Work { full: true, ..Work::default() },
                Ok(()) = deletes.changed(), if self.deferred_deletes => {
                    if !*deletes.borrow() {
                        continue;
                    }
                    self.deferred_deletes = false;
                    Work { full: true, ..Work::default() }
                }
            };
            let result = if work.full {
                self.reconcile_all().await
            } else {
                self.reconcile_hosts(&work.hosts).await
            };
            match result {
                Ok(writes) => {
                    backoff = Duration::from_millis(200);
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
                    warn!(error = %err, retry_in = ?backoff, "sync failed; will retry");
                    self.ctx
                        .metrics
                        .write_errors
                        .get_or_create(&ClusterLabels {
                            cluster: self.cluster.to_string(),
                        })
                        .inc();
                    queue.push(work);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
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
        let rendered = {
            let registry = read(&self.ctx.registry);
            render_cluster(&registry, &self.cluster, &self.ctx.render)
        };
        let mut desired: HashMap<Key, Rendered> = HashMap::new();
        for host in rendered {
            insert_rendered(&mut desired, host);
        }
        let mut keys: BTreeSet<Key> = desired.keys().cloned().collect();
        keys.extend(self.existing.keys().cloned());
        let mut writes = 0;
        for key in keys {
            writes += self.converge(&key, desired.get(&key)).await?;
        }
        self.update_conflict_gauge();
        self.ctx
            .metrics
            .full_reconciles
            .get_or_create(&ClusterLabels {
                cluster: self.cluster.to_string(),
            })
            .inc();
        info!(objects = desired.len(), writes, "full reconcile done");
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
        let mut writes = 0;
        for (host, rendered) in rendered {
            let mut desired = HashMap::new();
            if let Some(r) = rendered {
                insert_rendered(&mut desired, r);
            }
            for kind in [Kind::ServiceEntry, Kind::DestinationRule] {
                let key = (kind, host.as_str().to_owned());
                writes += self.converge(&key, desired.get(&key)).await?;
            }
        }
        debug!(hosts = hosts.len(), writes, "hosts reconciled");
        Ok(writes)
    }

    /// Brings one object name to its desired state; returns the number of writes.
    async fn converge(
        &mut self,
        key: &Key,
        desired: Option<&Rendered>,
    ) -> Result<usize, kube::Error> {
        let existing = self.existing.get(key);
        match decide(desired.map(Rendered::desired), existing) {
            Action::Keep => {
                self.reported_conflicts.remove(key);
                Ok(0)
            }
            Action::Apply => {
                let stored = match desired {
                    Some(Rendered::ServiceEntry(se, _)) => self.apply(se.as_ref()).await?,
                    Some(Rendered::DestinationRule(dr, _)) => self.apply(dr.as_ref()).await?,
                    None => return Ok(0),
                };
                info!(kind = key.0.name(), name = key.1, "applied");
                self.ctx
                    .metrics
                    .wrote(self.cluster.as_str(), "apply", key.0.name());
                self.existing.insert(key.clone(), stored);
                Ok(1)
            }
            Action::Delete => {
                if !*self.ctx.gates.deletes.borrow() {
                    debug!(
                        kind = key.0.name(),
                        name = key.1,
                        "delete deferred until every cluster is synced"
                    );
                    self.deferred_deletes = true;
                    return Ok(0);
                }
                match key.0 {
                    Kind::ServiceEntry => self.delete::<ServiceEntry>(&key.1).await?,
                    Kind::DestinationRule => self.delete::<DestinationRule>(&key.1).await?,
                }
                info!(kind = key.0.name(), name = key.1, "deleted");
                self.ctx
                    .metrics
                    .wrote(self.cluster.as_str(), "delete", key.0.name());
                self.existing.remove(key);
                Ok(1)
            }
            Action::Conflict => {
                if self.reported_conflicts.insert(key.clone()) {
                    let uid = existing.and_then(|e| e.uid.clone());
                    self.report_conflict(key, uid).await;
                }
                Ok(0)
            }
        }
    }

    async fn apply<K>(&self, object: &K) -> Result<Existing, kube::Error>
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
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.ctx.render.namespace);
        let stored = api
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(object),
            )
            .await?;
        Ok(existing_of(&stored))
    }

    async fn delete<K>(&self, name: &str) -> Result<(), kube::Error>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + DeserializeOwned,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.ctx.render.namespace);
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(err) => Err(err),
        }
    }

    async fn read_existing<K>(&mut self, kind: Kind) -> Result<(), kube::Error>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + HasSpec
            + Clone
            + std::fmt::Debug
            + DeserializeOwned,
        K::Spec: Serialize,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.ctx.render.namespace);
        for object in api.list(&ListParams::default()).await?.items {
            let name = object.meta().name.clone().unwrap_or_default();
            self.existing.insert((kind, name), existing_of(&object));
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

    async fn report_conflict(&self, key: &Key, uid: Option<String>) {
        let (kind, name) = (key.0.name(), &key.1);
        warn!(
            kind,
            name,
            namespace = self.ctx.render.namespace,
            "not writing: an object of that name exists and is not federator's (no app.kubernetes.io/managed-by=federator label)"
        );
        let reference = ObjectReference {
            api_version: Some("networking.istio.io/v1".into()),
            kind: Some(kind.into()),
            name: Some(name.clone()),
            namespace: Some(self.ctx.render.namespace.clone()),
            uid,
            ..Default::default()
        };
        let event = Event {
            type_: EventType::Warning,
            reason: "OwnershipConflict".into(),
            note: Some(format!(
                "federator wants to write {kind} {name} but this object is not labelled app.kubernetes.io/managed-by=federator; it is left untouched"
            )),
            action: "Sync".into(),
            secondary: None,
        };
        if let Err(err) = self.recorder.publish(&event, &reference).await {
            debug!(error = %err, "could not record the conflict event");
        }
    }

    fn update_conflict_gauge(&self) {
        self.ctx
            .metrics
            .conflicts
            .get_or_create(&ClusterLabels {
                cluster: self.cluster.to_string(),
            })
            .set(i64::try_from(self.reported_conflicts.len()).unwrap_or(i64::MAX));
    }
}

/// A rendered object of either kind.
enum Rendered {
    ServiceEntry(Box<ServiceEntry>, Desired),
    DestinationRule(Box<DestinationRule>, Desired),
}

impl Rendered {
    fn desired(&self) -> &Desired {
        match self {
            Self::ServiceEntry(_, d) | Self::DestinationRule(_, d) => d,
        }
    }
}

fn insert_rendered(into: &mut HashMap<Key, Rendered>, host: RenderedHost) {
    let se = host.service_entry;
    let dr = host.destination_rule;
    let se_name = se.metadata.name.clone().unwrap_or_default();
    let dr_name = dr.metadata.name.clone().unwrap_or_default();
    let se_desired = desired_of(&se);
    let dr_desired = desired_of(&dr);
    into.insert(
        (Kind::ServiceEntry, se_name),
        Rendered::ServiceEntry(Box::new(se), se_desired),
    );
    into.insert(
        (Kind::DestinationRule, dr_name),
        Rendered::DestinationRule(Box::new(dr), dr_desired),
    );
}

fn desired_of<K: Resource + HasSpec>(object: &K) -> Desired
where
    K::Spec: Serialize,
{
    Desired {
        spec: serde_json::to_value(object.spec()).unwrap_or_default(),
        labels: object.meta().labels.clone().unwrap_or_default(),
        annotations: object.meta().annotations.clone().unwrap_or_default(),
    }
}

fn existing_of<K: Resource + HasSpec>(object: &K) -> Existing
where
    K::Spec: Serialize,
{
    Existing::from_parts(
        object.meta(),
        serde_json::to_value(object.spec()).unwrap_or_default(),
    )
}

fn read(registry: &RwLock<Registry>) -> std::sync::RwLockReadGuard<'_, Registry> {
    registry
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
