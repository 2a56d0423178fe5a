//! The writer's objects as the API sees them: rendered objects turned into request bodies
//! that carry the installation's ownership, and listed objects read into what the plan
//! compares.

use std::collections::BTreeMap;

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::plan::{
    CLUSTERS_ANNOTATION, Desired, Existing, INSTANCE_LABEL, Installation, Key, Kind,
};
use crate::istio::{DestinationRuleSpec, GatewaySpec, ServiceEntrySpec};
use crate::model::{ClusterName, Host};
use crate::render::{Rendered, RenderedHost};

/// The API resource of a kind.
pub(super) fn api_resource(kind: Kind) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "networking.istio.io",
        "v1",
        kind.name(),
    ))
}

/// An object federator wants: what the plan compares, and the body to send.
pub(super) struct Wanted {
    /// What the plan compares.
    pub(super) desired: Desired,
    /// The request body (no resourceVersion: added per write).
    pub(super) body: DynamicObject,
    /// The host it serves (none for the gateway), for retrying just that host.
    pub(super) host: Option<Host>,
}

/// Turns a rendered object into a wanted one: the installation's instance label and the
/// clusters its backends come from are added to what render set.
pub(super) fn wanted<S: Serialize>(
    kind: Kind,
    rendered: &Rendered<S>,
    instance: &str,
    clusters: &[&ClusterName],
    host: Option<Host>,
) -> Wanted {
    let meta = &rendered.metadata;
    let mut labels = meta.labels.clone();
    labels.insert(INSTANCE_LABEL.to_owned(), instance.to_owned());
    let mut annotations = meta.annotations.clone();
    let names: Vec<&str> = clusters.iter().map(|c| c.as_str()).collect();
    annotations.insert(CLUSTERS_ANNOTATION.to_owned(), names.join(","));
    let resource = api_resource(kind);
    let mut body = DynamicObject::new(&meta.name, &resource);
    body.metadata.namespace = Some(meta.namespace.clone());
    body.metadata.labels = Some(labels.clone());
    body.metadata.annotations = Some(annotations.clone());
    body.data = serde_json::json!({ "spec": rendered.spec });
    Wanted {
        desired: Desired {
            spec: super::plan::fingerprint(&rendered.spec),
            labels,
            annotations,
        },
        body,
        host,
    }
}

/// The two objects of a rendered host, keyed.
pub(super) fn wanted_host(
    rendered: &RenderedHost,
    host: &Host,
    instance: &str,
    clusters: &[&ClusterName],
) -> [(Key, Wanted); 2] {
    let (se, dr) = (&rendered.service_entry, &rendered.destination_rule);
    let host = || Some(host.clone());
    [
        (
            (Kind::ServiceEntry, se.metadata.name.clone()),
            wanted(Kind::ServiceEntry, se, instance, clusters, host()),
        ),
        (
            (Kind::DestinationRule, dr.metadata.name.clone()),
            wanted(Kind::DestinationRule, dr, instance, clusters, host()),
        ),
    ]
}

/// Reads a listed (or just written) object. Its spec is fingerprinted as federator's types
/// read it, so fields federator does not model cause no rewrite; a spec those types cannot
/// read (a user's DestinationRule with `tls.mode: SIMPLE`) counts raw, and only conflicts on
/// its own name.
pub(super) fn existing(kind: Kind, object: &DynamicObject, us: &Installation) -> Existing {
    let raw = object.data.get("spec").cloned().unwrap_or_default();
    let spec = match kind {
        Kind::ServiceEntry => typed_fingerprint::<ServiceEntrySpec>(&raw),
        Kind::DestinationRule => typed_fingerprint::<DestinationRuleSpec>(&raw),
        Kind::Gateway => typed_fingerprint::<GatewaySpec>(&raw),
    };
    let labels = object.metadata.labels.clone().unwrap_or_default();
    Existing {
        owner: us.owner(&labels),
        spec,
        labels,
        annotations: object.metadata.annotations.clone().unwrap_or_default(),
        uid: object.metadata.uid.clone(),
        resource_version: object.metadata.resource_version.clone(),
    }
}

fn typed_fingerprint<S: Serialize + DeserializeOwned>(raw: &serde_json::Value) -> u64 {
    match serde_json::from_value::<S>(raw.clone()) {
        Ok(spec) => super::plan::fingerprint(&spec),
        Err(_) => super::plan::fingerprint(raw),
    }
}

/// The update of an object: a JSON patch that sets the wanted spec, labels and annotations
/// (over the existing ones: others may add their own) and nothing else, so what others keep
/// in the metadata (finalizers, owner references) stays. It carries the resourceVersion
/// ownership was confirmed at: the API server refuses it (409) if the object changed since.
pub(super) fn update_patch(
    wanted: &DynamicObject,
    existing: Option<&Existing>,
    resource_version: Option<&String>,
) -> Result<json_patch::Patch, serde_json::Error> {
    let merge = |theirs: Option<&BTreeMap<String, String>>,
                 ours: &Option<BTreeMap<String, String>>| {
        let mut out = theirs.cloned().unwrap_or_default();
        out.extend(ours.clone().unwrap_or_default());
        out
    };
    let labels = merge(existing.map(|e| &e.labels), &wanted.metadata.labels);
    let annotations = merge(
        existing.map(|e| &e.annotations),
        &wanted.metadata.annotations,
    );
    let spec = wanted.data.get("spec").cloned().unwrap_or_default();
    let mut ops = Vec::new();
    if let Some(version) = resource_version {
        ops.push(serde_json::json!({"op": "replace", "path": "/metadata/resourceVersion", "value": version}));
    }
    ops.push(serde_json::json!({"op": "add", "path": "/metadata/labels", "value": labels}));
    ops.push(
        serde_json::json!({"op": "add", "path": "/metadata/annotations", "value": annotations}),
    );
    ops.push(serde_json::json!({"op": "add", "path": "/spec", "value": spec}));
    serde_json::from_value(serde_json::Value::Array(ops))
}
