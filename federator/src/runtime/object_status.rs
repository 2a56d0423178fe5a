//! The status of GlobalTrafficPolicies, Dependencies and ServiceExports: the registry works out what each
//! should say ([`crate::registry::ObjectStatus`]); the leader writes it with server-side
//! apply on the status subresource, in the cluster the object lives in.
//!
//! A write happens only when the status differs from what the object holds (read first), so
//! a restart or a new leader rewrites nothing, and a condition keeps its
//! `lastTransitionTime` until its value changes. Writing runs in a task of its own: a slow
//! cluster holds up neither the manager nor the other clusters for long.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Client, Resource};
use serde_json::{Value, json};
use tokio::sync::watch;
use tracing::{debug, warn};

use super::manager::Manager;
use crate::crd::{Dependency, GlobalTrafficPolicy};
use crate::ingest::ServiceExport;
use crate::model::ClusterName;
use crate::registry::{ObjectStatus, StatusKind};

/// How often statuses are worked out at most (that reads every policy and Dependency).
const EVERY: Duration = Duration::from_secs(2);
/// How often statuses are handed over again while the registry does not change.
const RETRY: Duration = Duration::from_secs(30);
/// How long one status read and write may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Field manager of status writes.
const FIELD_MANAGER: &str = "federator";

/// What the writer task is given: every status, and the clients of connected clusters.
#[derive(Clone, Default)]
struct Batch {
    statuses: Vec<ObjectStatus>,
    clients: BTreeMap<ClusterName, Client>,
}

/// The manager's side: when statuses were last worked out, and the writer's inbox.
pub(super) struct StatusReporter {
    last: Option<(Instant, u64)>,
    batches: watch::Sender<Batch>,
}

impl StatusReporter {
    /// Starts the writer task; it ends with the manager.
    pub(super) fn start(fence: crate::leader::Fence) -> Self {
        let (batches, inbox) = watch::channel(Batch::default());
        tokio::spawn(write_statuses(inbox, fence));
        Self {
            last: None,
            batches,
        }
    }
}

impl Manager {
    /// Works out every status when the registry changed (at most every few seconds) and
    /// hands them to the writer, when this replica leads.
    pub(super) async fn report_object_statuses(&mut self) {
        let deltas = self.metrics.deltas.get();
        let leading = self.fence.may_write();
        let reporter = &mut self.object_status;
        if !leading {
            // A new leader looks at every object again.
            reporter.last = None;
            return;
        }
        // Unchanged registry: again after a while anyway, for writes that failed (the
        // writer only retries what it has not written).
        if reporter.last.is_some_and(|(at, seen)| {
            at.elapsed() < EVERY || (seen == deltas && at.elapsed() < RETRY)
        }) {
            return;
        }
        reporter.last = Some((Instant::now(), deltas));
        let (reply, statuses) = tokio::sync::oneshot::channel();
        let command = super::RegistryCommand::Statuses(reply);
        if self.commands.send(command).await.is_err() {
            return;
        }
        let Ok(statuses) = statuses.await else {
            return;
        };
        let clients = self
            .clusters
            .iter()
            // Sharded: each replica writes the statuses in the clusters it holds.
            .filter(|(name, _)| self.writes_to(name))
            .filter_map(|(name, handle)| {
                Some((name.clone(), handle.running.as_ref()?.client.clone()))
            })
            .collect();
        self.object_status
            .batches
            .send_replace(Batch { statuses, clients });
    }
}

/// Status writes in flight at once: a slow or unreachable cluster does not hold up the
/// others' for long.
const CONCURRENCY: usize = 8;

/// How one status write went.
enum Outcome {
    /// Written, or already as wanted.
    Done,
    /// The object is gone (the registry hears of it soon).
    Gone,
    /// The cluster's CRD has no status subresource (CRDs older than this federator).
    NoStatus,
    /// Refused: the credentials may not patch status.
    Forbidden,
    /// Another controller owns these conditions (a ServiceExport of another MCS
    /// implementation): left to it.
    Owned,
    /// Anything else: retried with the next batch.
    Failed(String),
}

/// The writer task: writes each status that changed since it last wrote it.
async fn write_statuses(mut inbox: watch::Receiver<Batch>, fence: crate::leader::Fence) {
    use futures::StreamExt;
    // What was last written (or found in place, or cannot be written), so an unchanged
    // status is not read again.
    let mut written: BTreeSet<ObjectStatus> = BTreeSet::new();
    // Clusters warned about, once each.
    let mut warned: BTreeSet<(ClusterName, &'static str)> = BTreeSet::new();
    while inbox.changed().await.is_ok() {
        let batch = inbox.borrow_and_update().clone();
        let current: BTreeSet<&ObjectStatus> = batch.statuses.iter().collect();
        written.retain(|s| current.contains(s));
        let due: Vec<(Client, ObjectStatus)> = batch
            .statuses
            .iter()
            .filter(|s| !written.contains(*s))
            .filter_map(|s| Some((batch.clients.get(&s.cluster)?.clone(), s.clone())))
            .collect();
        let outcomes: Vec<(ObjectStatus, Outcome)> = futures::stream::iter(due)
            .map(|(client, status)| {
                let fence = fence.clone();
                async move {
                    if !fence.may_write() {
                        return (status, Outcome::Failed("not leading".into()));
                    }
                    let write = write_one(client, &status);
                    let outcome = tokio::time::timeout(WRITE_TIMEOUT, write)
                        .await
                        .unwrap_or_else(|_| Outcome::Failed("timed out".into()));
                    (status, outcome)
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for (status, outcome) in outcomes {
            let cluster = &status.cluster;
            match outcome {
                Outcome::Done | Outcome::Gone => {
                    written.insert(status);
                }
                Outcome::NoStatus => {
                    written.insert(status.clone());
                    if warned.insert((cluster.clone(), "status")) {
                        warn!(cluster = %cluster, object = %status.key, "the cluster's CRD has no status subresource: apply the CRDs of this federator version (crds/) to see policy and Dependency status");
                    }
                }
                Outcome::Forbidden => {
                    written.insert(status.clone());
                    if warned.insert((cluster.clone(), "forbidden")) {
                        warn!(cluster = %cluster, object = %status.key, "cannot write the status of GlobalTrafficPolicies, Dependencies or ServiceExports: grant patch on their status subresource (federator cluster add does)");
                    }
                }
                Outcome::Owned => {
                    written.insert(status.clone());
                    if warned.insert((cluster.clone(), "owned")) {
                        warn!(cluster = %cluster, object = %status.key, "another controller writes the conditions of this cluster's ServiceExports: federator leaves them to it");
                    }
                }
                Outcome::Failed(error) => {
                    debug!(cluster = %cluster, object = %status.key, error, "status not written; will retry");
                }
            }
        }
    }
}

/// The API group, version and kind of the objects `kind` is about.
fn resource(kind: StatusKind) -> ApiResource {
    let (group, version, kind) = match kind {
        StatusKind::GlobalTrafficPolicy => (
            GlobalTrafficPolicy::group(&()),
            GlobalTrafficPolicy::version(&()),
            GlobalTrafficPolicy::kind(&()),
        ),
        StatusKind::Dependency => (
            Dependency::group(&()),
            Dependency::version(&()),
            Dependency::kind(&()),
        ),
        StatusKind::ServiceExport => (
            ServiceExport::group(&()),
            ServiceExport::version(&()),
            ServiceExport::kind(&()),
        ),
    };
    ApiResource::from_gvk(&GroupVersionKind::gvk(&group, &version, &kind))
}

/// Reads the object and, when its status differs from `status`, applies it.
async fn write_one(client: Client, status: &ObjectStatus) -> Outcome {
    let (namespace, name) = (&status.key.namespace, &status.key.name);
    let resource = resource(status.kind);
    let api: Api<DynamicObject> = Api::namespaced_with(client, namespace, &resource);
    let current = match api.get_opt(name).await {
        Ok(Some(object)) => object.data.get("status").cloned().unwrap_or(Value::Null),
        Ok(None) => return Outcome::Gone,
        Err(err) => return classify(&err),
    };
    let desired = status_json(status, &current);
    if desired == current {
        return Outcome::Done;
    }
    let body = json!({
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": {"name": name, "namespace": namespace},
        "status": desired,
    });
    // Federator's own kinds are federator's to report on; a ServiceExport's conditions may be
    // another MCS implementation's, never taken from it.
    let params = match status.kind {
        StatusKind::ServiceExport => PatchParams::apply(FIELD_MANAGER),
        _ => PatchParams::apply(FIELD_MANAGER).force(),
    };
    match api.patch_status(name, &params, &Patch::Apply(&body)).await {
        Ok(_) => Outcome::Done,
        // The object was just read: a 404 now means no status subresource.
        Err(kube::Error::Api(e)) if e.code == 404 => Outcome::NoStatus,
        Err(kube::Error::Api(e)) if e.code == 409 => Outcome::Owned,
        Err(err) => classify(&err),
    }
}

fn classify(err: &kube::Error) -> Outcome {
    match err {
        kube::Error::Api(e) if e.code == 403 => Outcome::Forbidden,
        other => Outcome::Failed(crate::connect::describe::kube_error(other)),
    }
}

/// The status object for `status`, keeping each condition's transition time from `current`
/// while its value is unchanged.
fn status_json(status: &ObjectStatus, current: &Value) -> Value {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let previous: Vec<Condition> = current
        .get("conditions")
        .and_then(|c| serde_json::from_value(c.clone()).ok())
        .unwrap_or_default();
    let conditions: Vec<Condition> = status
        .conditions
        .iter()
        .map(|c| {
            let value = if c.status { "True" } else { "False" };
            let since = previous
                .iter()
                .find(|p| p.type_ == c.type_ && p.status == value)
                .map_or_else(|| now.clone(), |p| p.last_transition_time.clone());
            Condition {
                type_: c.type_.to_owned(),
                status: value.to_owned(),
                reason: c.reason.to_owned(),
                message: c.message.clone(),
                observed_generation: status.generation,
                last_transition_time: since,
            }
        })
        .collect();
    let mut out = json!({ "conditions": conditions });
    // A ServiceExport's status (the MCS API's schema) has conditions only.
    if let Some(generation) = status
        .generation
        .filter(|_| status.kind != StatusKind::ServiceExport)
    {
        out["observedGeneration"] = generation.into();
    }
    match status.kind {
        StatusKind::GlobalTrafficPolicy if !status.hosts.is_empty() => {
            let hosts: Vec<&str> = status.hosts.iter().map(|h| h.as_str()).collect();
            out["hosts"] = json!(hosts);
        }
        StatusKind::Dependency if !status.unknown_identities.is_empty() => {
            out["unknownIdentities"] = json!(status.unknown_identities);
        }
        _ => {}
    }
    out
}
