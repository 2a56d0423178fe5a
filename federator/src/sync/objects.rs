//! The writer's objects as the API sees them: rendered objects turned into request bodies
//! that carry the installation's ownership, and listed objects read into what the plan
//! compares.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{LazyLock, Mutex, PoisonError};

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::plan::{
    CLUSTERS_ANNOTATION, CompactId, Desired, Existing, INSTANCE_LABEL, Installation, Key, Kind,
    SharedMap, SharedMaps, TERM_ANNOTATION,
};
use crate::istio::{DestinationRuleSpec, GatewaySpec, ServiceEntrySpec, SidecarSpec};
use crate::model::{ClusterName, Host};
use crate::registry::GlobalService;
use crate::render::{ExportScope, Rendered, RenderedHost};
use federator_core::mcs::ServiceImportSpec;

/// The API resource of a kind.
pub(super) fn api_resource(kind: Kind) -> ApiResource {
    let (group, version) = match kind {
        Kind::ServiceImport => (crate::ingest::MCS_GROUP, crate::ingest::MCS_VERSION),
        _ => ("networking.istio.io", "v1"),
    };
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind.name()))
}

/// The spec of a wanted object, typed: it becomes JSON only when it is written, so a pass
/// that writes nothing (a restart against unchanged clusters) builds no request bodies.
#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum Spec {
    /// A ServiceEntry's.
    ServiceEntry(ServiceEntrySpec),
    /// A DestinationRule's.
    DestinationRule(DestinationRuleSpec),
    /// The east-west Gateway's.
    Gateway(GatewaySpec),
    /// A caller's Sidecar.
    Sidecar(SidecarSpec),
    /// A clusterset service's ServiceImport.
    ServiceImport(ServiceImportSpec),
}

/// What a write of a wanted object needs besides what the plan compares.
pub(super) struct Body {
    /// Name and namespace.
    name: String,
    namespace: String,
    /// The spec.
    spec: Spec,
    /// The host it serves (none for the gateway), for retrying just that host.
    pub(super) host: Option<Host>,
}

/// What a pass wants in the sync namespace: what the plan compares, and what to send.
#[derive(Default)]
pub(super) struct Wanted {
    /// What the plan compares.
    pub(super) desired: BTreeMap<Key, Desired>,
    /// What a write sends.
    pub(super) bodies: BTreeMap<Key, Body>,
}

impl Wanted {
    /// Adds a rendered object: the installation's instance label and the clusters its
    /// backends come from are added to what render set.
    pub(super) fn add<S: Serialize>(
        &mut self,
        kind: Kind,
        rendered: Rendered<S>,
        wrap: fn(S) -> Spec,
        instance: &str,
        clusters: &[&ClusterName],
        host: Option<Host>,
    ) {
        let (key, desired) = desired(kind, &rendered, instance, clusters);
        let Rendered { metadata, spec } = rendered;
        self.desired.insert(key.clone(), desired);
        let body = Body {
            name: metadata.name,
            namespace: metadata.namespace,
            spec: wrap(spec),
            host,
        };
        self.bodies.insert(key, body);
    }

    /// Adds the two objects of a rendered host.
    pub(super) fn add_host(
        &mut self,
        rendered: RenderedHost,
        host: &Host,
        instance: &str,
        clusters: &[&ClusterName],
    ) {
        let RenderedHost {
            service_entry,
            destination_rule,
        } = rendered;
        let h = || Some(host.clone());
        let (se, dr) = (Kind::ServiceEntry, Kind::DestinationRule);
        self.add(
            se,
            service_entry,
            Spec::ServiceEntry,
            instance,
            clusters,
            h(),
        );
        self.add(
            dr,
            destination_rule,
            Spec::DestinationRule,
            instance,
            clusters,
            h(),
        );
    }

    /// How many objects are wanted.
    pub(super) fn len(&self) -> usize {
        self.desired.len()
    }

    /// The request body of a create of `key` by the leader of `term`.
    pub(super) fn object(&self, key: &Key, term: u64) -> Option<DynamicObject> {
        let (desired, body) = (self.desired.get(key)?, self.bodies.get(key)?);
        let mut object = DynamicObject::new(&body.name, &api_resource(key.0));
        object.metadata.namespace = Some(body.namespace.clone());
        object.metadata.labels = Some(desired.labels.clone());
        object.metadata.annotations = Some(with_term(desired.annotations.clone(), term));
        object.data = serde_json::json!({ "spec": body.spec });
        Some(object)
    }

    /// The update of `key`: a JSON patch that sets the wanted spec, labels and annotations
    /// (over the existing ones: others may add their own) and nothing else, so what others
    /// keep in the metadata (finalizers, owner references) stays. It carries the
    /// resourceVersion ownership was confirmed at: the API server refuses it (409) if the
    /// object changed since.
    pub(super) fn update_patch(
        &self,
        key: &Key,
        existing: Option<&Existing>,
        resource_version: Option<&String>,
        term: u64,
    ) -> Option<json_patch::Patch> {
        let (desired, body) = (self.desired.get(key)?, self.bodies.get(key)?);
        let merge = |theirs: Option<&BTreeMap<String, String>>, ours: &BTreeMap<String, String>| {
            let mut out = theirs.cloned().unwrap_or_default();
            out.extend(ours.clone());
            out
        };
        let labels = merge(existing.map(|e| &*e.labels), &desired.labels);
        let annotations = with_term(
            merge(existing.map(|e| &*e.annotations), &desired.annotations),
            term,
        );
        let mut ops = Vec::new();
        if let Some(version) = resource_version {
            ops.push(serde_json::json!({"op": "replace", "path": "/metadata/resourceVersion", "value": version}));
        }
        ops.push(serde_json::json!({"op": "add", "path": "/metadata/labels", "value": labels}));
        ops.push(
            serde_json::json!({"op": "add", "path": "/metadata/annotations", "value": annotations}),
        );
        ops.push(serde_json::json!({"op": "add", "path": "/spec", "value": body.spec}));
        serde_json::from_value(serde_json::Value::Array(ops)).ok()
    }
}

/// What the plan compares for a rendered object, and its key: render's labels and
/// annotations plus the installation's instance label and the clusters its backends come
/// from. Public so the simulated-fleet benchmark plans exactly as the writers do.
pub fn desired<S: Serialize>(
    kind: Kind,
    rendered: &Rendered<S>,
    instance: &str,
    clusters: &[&ClusterName],
) -> (Key, Desired) {
    let Rendered { metadata, spec } = rendered;
    let mut labels = metadata.labels.clone();
    labels.insert(INSTANCE_LABEL.to_owned(), instance.to_owned());
    let mut annotations = metadata.annotations.clone();
    let names: Vec<&str> = clusters.iter().map(|c| c.as_str()).collect();
    annotations.insert(CLUSTERS_ANNOTATION.to_owned(), names.join(","));
    let desired = Desired {
        spec: super::plan::fingerprint(spec),
        labels,
        annotations,
    };
    let key = if kind.outside_sync_namespace() {
        super::plan::outside_key(kind, &metadata.namespace, &metadata.name)
    } else {
        (kind, metadata.name.clone())
    };
    (key, desired)
}

/// The clusters a host's objects depend on, for their clusters annotation: where its
/// backends run and, when only dependents get it, where its callers run and the clusters
/// holding their Dependencies (dropping one waits while it is unlisted).
pub fn host_clusters(service: &GlobalService, scope: ExportScope) -> Vec<&ClusterName> {
    let mut clusters: BTreeSet<&ClusterName> = service.backends.keys().collect();
    if scope == ExportScope::Dependents {
        clusters.extend(&service.dependencies.dependent_clusters);
        clusters.extend(&service.dependencies.declared_in);
    }
    clusters.into_iter().collect()
}

/// `annotations` with the term that writes them.
fn with_term(mut annotations: BTreeMap<String, String>, term: u64) -> BTreeMap<String, String> {
    annotations.insert(TERM_ANNOTATION.to_owned(), term.to_string());
    annotations
}

/// Reads a listed (or just written) object. Its spec is fingerprinted as federator's types
/// read it, so fields federator does not model cause no rewrite; a spec those types cannot
/// read (a user's DestinationRule with `tls.mode: SIMPLE`) counts raw, and only conflicts on
/// its own name.
pub(super) fn existing(kind: Kind, object: &DynamicObject, us: &Installation) -> Existing {
    let none = serde_json::Value::Null;
    let raw = object.data.get("spec").unwrap_or(&none);
    let spec = match kind {
        Kind::ServiceEntry => typed_fingerprint::<ServiceEntrySpec>(raw),
        Kind::DestinationRule => typed_fingerprint::<DestinationRuleSpec>(raw),
        Kind::Gateway => typed_fingerprint::<GatewaySpec>(raw),
        Kind::Sidecar => typed_fingerprint::<SidecarSpec>(raw),
        Kind::ServiceImport => typed_fingerprint::<ServiceImportSpec>(raw),
    };
    let labels = object.metadata.labels.clone().unwrap_or_default();
    Existing {
        owner: us.owner(&labels),
        spec,
        labels: shared_map(labels),
        annotations: shared_map(object.metadata.annotations.clone().unwrap_or_default()),
        uid: object.metadata.uid.as_deref().map(CompactId::new),
        resource_version: object
            .metadata
            .resource_version
            .as_deref()
            .map(CompactId::new),
    }
}

/// Every writer's labels and annotations, each distinct map stored once: a host's maps are
/// the same in every cluster, so the writers of a fleet share them (see [`SharedMaps`]).
static SHARED_MAPS: LazyLock<Mutex<SharedMaps>> = LazyLock::new(Mutex::default);

/// The shared copy of `map`, as the writers keep labels and annotations: public so the
/// simulated-fleet benchmark keeps them as the writers do.
pub fn shared_map(map: BTreeMap<String, String>) -> SharedMap {
    // A panic while interning leaves at worst a map stored twice: the lock is still good.
    SHARED_MAPS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .intern(map)
}

/// Drops the shared maps no object holds any more: after a full pass, which replaces a
/// writer's whole cache (the interner prunes itself only as it grows).
pub(super) fn prune_shared_maps() {
    SHARED_MAPS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .prune();
}

/// Read straight from the listed JSON, without copying it.
fn typed_fingerprint<S: Serialize + DeserializeOwned>(raw: &serde_json::Value) -> u64 {
    match S::deserialize(raw) {
        Ok(spec) => super::plan::fingerprint(&spec),
        Err(_) => super::plan::fingerprint(raw),
    }
}
