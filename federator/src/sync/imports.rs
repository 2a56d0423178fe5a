//! ServiceImports (MCS API): each clusterset service gets one in its Service's namespace in
//! every cluster. A ServiceImport someone else wrote (another MCS implementation) is a
//! conflict, reported and left alone; a cluster without the namespace gets none until the
//! namespace is made (namespace sameness is the clusterset's to keep, not federator's).

use kube::api::DynamicObject;

use super::objects::{Spec, Wanted, existing};
use super::plan::{Existing, Key, Kind, outside_key};
use super::writer::Writer;
use crate::registry::GlobalService;
use crate::render::render_service_import;

impl Writer {
    /// The ServiceImports `listed` across the cluster, by key.
    pub(super) fn read_service_imports(&self, listed: &[DynamicObject]) -> Vec<(Key, Existing)> {
        let us = &self.ctx.installation;
        listed
            .iter()
            .map(|object| {
                let namespace = object.metadata.namespace.as_deref().unwrap_or_default();
                let name = object.metadata.name.as_deref().unwrap_or_default();
                (
                    outside_key(Kind::ServiceImport, namespace, name),
                    existing(Kind::ServiceImport, object, us),
                )
            })
            .collect()
    }

    /// Adds `service`'s ServiceImport to `into`, when it is a clusterset service.
    pub(super) fn add_service_import(&self, into: &mut Wanted, service: &GlobalService) {
        if self.unlisted_kinds.contains(&Kind::ServiceImport) {
            return;
        }
        let Some(import) = render_service_import(service) else {
            return;
        };
        // It carries what the exporting clusters agree on: a write dropping one of them
        // waits while it is unlisted.
        let clusters: Vec<_> = service.backends.keys().collect();
        into.add(
            Kind::ServiceImport,
            import,
            Spec::ServiceImport,
            &self.ctx.installation.instance,
            &clusters,
            Some(service.host.clone()),
        );
    }
}
