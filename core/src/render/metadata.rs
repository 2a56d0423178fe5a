use std::collections::BTreeMap;

use super::RenderOptions;
use super::object::Metadata;
use crate::registry::GlobalService;

/// Label that marks an object as federator's: sync only ever changes or deletes objects
/// that carry it.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY_VALUE: &str = "federator";
/// Annotation naming the global host an object was rendered for.
pub const HOST_ANNOTATION: &str = "federator.io/host";

/// Labels every rendered object carries: ownership plus the identity and env it serves, so
/// `kubectl get se -l federator.io/identity=greeting` finds them (for a clusterset service,
/// the Service's name and namespace).
pub fn ownership_labels(service: &GlobalService) -> BTreeMap<String, String> {
    if let Some((name, namespace)) = service.host.clusterset_service() {
        // A clusterset service has no identity or env: it is a Service of a namespace.
        return BTreeMap::from([
            (MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned()),
            ("federator.io/service".to_owned(), name.to_owned()),
            (
                "federator.io/service-namespace".to_owned(),
                namespace.to_owned(),
            ),
        ]);
    }
    BTreeMap::from([
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned()),
        ("federator.io/identity".to_owned(), service.identity.clone()),
        ("federator.io/env".to_owned(), service.env.clone()),
    ])
}

/// Metadata of a rendered object: named after its host, in the sync namespace.
pub(super) fn object_meta(service: &GlobalService, options: &RenderOptions) -> Metadata {
    Metadata {
        name: service.host.as_str().to_owned(),
        namespace: options.namespace.clone(),
        labels: ownership_labels(service),
        annotations: BTreeMap::from([(
            HOST_ANNOTATION.to_owned(),
            service.host.as_str().to_owned(),
        )]),
    }
}
