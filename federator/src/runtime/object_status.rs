//! The status of GlobalTrafficPolicies and Dependencies: the registry works out what each
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
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource};
use serde_json::{Value, json};
use tokio::sync::watch;
use tracing::{debug, warn};

use super::manager::Manager;
use crate::crd::{Dependency, GlobalTrafficPolicy};
use crate::model::ClusterName;
use crate::registry::{ObjectStatus, StatusKind};

/// How often statuses are worked out at most (that reads every policy and Dependency).
const EVERY: Duration = Duration::from_secs(2);
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
        if reporter
            .last
            .is_some_and(|(at, seen)| seen == deltas || at.elapsed() < EVERY)
        {
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
            .filter_map(|(name, handle)| {
                Some((name.clone(), handle.running.as_ref()?.client.clone()))
            })
            .collect();
        self.object_status
            .batches
            .send_replace(Batch { statuses, clients });
    }
}

/// The writer task: writes each status that changed since it last wrote it.
async fn write_statuses(mut inbox: watch::Receiver<Batch>, fence: crate::leader::Fence) {
    // What was last written (or found in place), so an unchanged status is not read again.
    let mut written: BTreeSet<ObjectStatus> = BTreeSet::new();
    // Clusters that refused a status write, warned about once.
    let mut refused: BTreeSet<ClusterName> = BTreeSet::new();
    while inbox.changed().await.is_ok() {
        let batch = inbox.borrow_and_update().clone();
        written.retain(|s| batch.statuses.contains(s));
        for status in &batch.statuses {
            if written.contains(status) || !fence.may_write() {
                continue;
            }
            let Some(client) = batch.clients.get(&status.cluster) else {
                continue;
            };
            let write = write_one(client.clone(), status);
            match tokio::time::timeout(WRITE_TIMEOUT, write).await {
                Ok(Ok(())) => {
                    refused.remove(&status.cluster);
                    written.insert(status.clone());
                }
                Ok(Err(kube::Error::Api(e))) if e.code == 404 => {
                    // Deleted meanwhile: the registry hears of it soon.
                }
                Ok(Err(kube::Error::Api(e))) if e.code == 403 => {
                    if refused.insert(status.cluster.clone()) {
                        warn!(cluster = %status.cluster, object = %status.key, "cannot write the status of GlobalTrafficPolicies and Dependencies: grant patch on their status subresource (federator cluster add does)");
                    }
                }
                Ok(Err(err)) => {
                    let error = crate::connect::describe::kube_error(&err);
                    debug!(cluster = %status.cluster, object = %status.key, error, "status not written; will retry");
                }
                Err(_) => {
                    debug!(cluster = %status.cluster, object = %status.key, "status write timed out; will retry")
                }
            }
        }
    }
}

/// Reads the object and, when its status differs from `status`, applies it.
async fn write_one(client: Client, status: &ObjectStatus) -> Result<(), kube::Error> {
    let (namespace, name) = (&status.key.namespace, &status.key.name);
    let (current, api_version, kind) = match status.kind {
        StatusKind::GlobalTrafficPolicy => {
            let api: Api<GlobalTrafficPolicy> = Api::namespaced(client.clone(), namespace);
            let object = api.get(name).await?;
            let current = serde_json::to_value(&object.status).unwrap_or(Value::Null);
            (
                current,
                GlobalTrafficPolicy::api_version(&()),
                GlobalTrafficPolicy::kind(&()),
            )
        }
        StatusKind::Dependency => {
            let api: Api<Dependency> = Api::namespaced(client.clone(), namespace);
            let object = api.get(name).await?;
            let current = serde_json::to_value(&object.status).unwrap_or(Value::Null);
            (current, Dependency::api_version(&()), Dependency::kind(&()))
        }
    };
    let desired = status_json(status, &current);
    if desired == current {
        return Ok(());
    }
    let body = json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "status": desired,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    match status.kind {
        StatusKind::GlobalTrafficPolicy => {
            let api: Api<GlobalTrafficPolicy> = Api::namespaced(client, namespace);
            api.patch_status(name, &params, &Patch::Apply(&body))
                .await?;
        }
        StatusKind::Dependency => {
            let api: Api<Dependency> = Api::namespaced(client, namespace);
            api.patch_status(name, &params, &Patch::Apply(&body))
                .await?;
        }
    }
    Ok(())
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
    if let Some(generation) = status.generation {
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
