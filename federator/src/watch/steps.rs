//! From one watch event to what it means for the registry: the object converted by
//! `ingest`, and the tracker's step (deltas to send, then commit).

use kube::Resource;
use kube::runtime::watcher::Event;
use tracing::warn;

use super::streams::Watched;
use super::tracker::{ApiKey, Step, Tracker};
use crate::ingest::{self, IngestConfig, IngestError, Ingested};
use crate::model::{ClusterName, Object, ObjectKey, ObjectRef, RejectedInfo};

/// What one event means to its tracker, and whether a full list finished; the tracker does
/// not change until the step is committed.
pub(super) fn handle(
    cluster: &ClusterName,
    config: &IngestConfig,
    tracker: &Tracker,
    event: Watched,
) -> (Step, bool) {
    macro_rules! dispatch {
        ($event:expr, $kind:literal, $convert:expr) => {
            match $event {
                Event::Init => (tracker.init(), false),
                Event::InitApply(obj) | Event::Apply(obj) => {
                    let key = api_key($kind, &obj);
                    let object = report(cluster, $convert(&obj));
                    (tracker.apply(key, object), false)
                }
                Event::Delete(obj) => (tracker.delete(api_key($kind, &obj)), false),
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
            dispatch!(*e, "GlobalTrafficPolicy", |p| {
                or_rejected(ingest::policy(p), p, ObjectRef::Policy)
            })
        }
        Watched::Dependency(e) => dispatch!(*e, "Dependency", |d| {
            or_rejected(ingest::dependency(d), d, ObjectRef::Dependency)
        }),
        Watched::AdmiralPolicy(e) => dispatch!(*e, "AdmiralGlobalTrafficPolicy", |p| {
            or_rejected(
                ingest::admiral_policy(p, config),
                p,
                ObjectRef::AdmiralPolicy,
            )
        }),
        Watched::AdmiralDependency(e) => dispatch!(*e, "AdmiralDependency", |d| {
            or_rejected(
                ingest::admiral_dependency(d),
                d,
                ObjectRef::AdmiralDependency,
            )
        }),
        Watched::MeshNamespace(e) => {
            dispatch!(*e, "Namespace", |n| ingest::mesh_namespace(n, config))
        }
        Watched::IstioGateway(e) => {
            dispatch!(*e, "Gateway", |g| ingest::passthrough_claim(g, config))
        }
        Watched::ServiceExport(e) => dispatch!(*e, "ServiceExport", ingest::service_export),
        Watched::ClusterProperty(e) => dispatch!(*e, "ClusterProperty", ingest::cluster_id),
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

/// A policy or Dependency that cannot be used still reaches the registry, as rejected, so
/// its status can say why (and a valid version before it stops applying); the reason is
/// logged like any ingest warning.
fn or_rejected<K: Resource>(
    result: Result<Ingested, IngestError>,
    object: &K,
    reference: fn(ObjectKey) -> ObjectRef,
) -> Result<Option<Ingested>, IngestError> {
    match result {
        Ok(ingested) => Ok(Some(ingested)),
        Err(err) => {
            let meta = object.meta();
            let Ok(key) = ingest::object_key(err.kind, meta) else {
                return Err(err);
            };
            Ok(Some(Ingested {
                object: Object::Rejected(RejectedInfo {
                    reference: reference(key),
                    generation: meta.generation,
                    reason: err.reason.clone(),
                }),
                warnings: vec![format!("ignored: {}", err.reason)],
            }))
        }
    }
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
