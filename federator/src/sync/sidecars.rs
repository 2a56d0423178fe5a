//! Sidecars: each goes into the namespace of the workload it limits. Listed across the
//! cluster (`outside.rs`); only federator's are changed, and none goes where a user's Sidecar
//! selects the same pods.

use std::collections::BTreeMap;

use kube::api::DynamicObject;
use tracing::debug;

use super::objects::{Spec, Wanted, existing};
use super::plan::{Existing, Key, Kind, sidecar_key};
use super::writer::Writer;
use crate::registry::{GlobalService, RegistryView};
use crate::render::render_sidecars;

impl Writer {
    /// federator's Sidecars among those `listed` across the cluster, by key, noting the
    /// others' selectors (a user's Sidecar selecting a workload's pods keeps federator's off
    /// them: Istio does not say which of two applies).
    pub(super) fn read_sidecars(&mut self, listed: &[DynamicObject]) -> Vec<(Key, Existing)> {
        let us = &self.ctx.installation;
        let mut ours = Vec::new();
        self.foreign_sidecars.clear();
        for object in listed {
            let namespace = object.metadata.namespace.as_deref().unwrap_or_default();
            let name = object.metadata.name.as_deref().unwrap_or_default();
            let read = existing(Kind::Sidecar, object, us);
            if read.owner == super::plan::Owner::Foreign {
                let selector = object
                    .data
                    .pointer("/spec/workloadSelector/labels")
                    .and_then(|l| {
                        serde_json::from_value::<BTreeMap<String, String>>(l.clone()).ok()
                    })
                    .filter(|l| !l.is_empty());
                if let Some(selector) = selector {
                    self.foreign_sidecars
                        .push((namespace.to_owned(), name.to_owned(), selector));
                }
                continue;
            }
            ours.push((sidecar_key(namespace, name), read));
        }
        ours
    }

    /// A user's Sidecar in `namespace` that selects pods labelled `labels`, if any.
    fn foreign_sidecar_over(
        &self,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> Option<&str> {
        self.foreign_sidecars
            .iter()
            .find(|(ns, _, selector)| {
                ns == namespace && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .map(|(_, name, _)| name.as_str())
    }

    /// Adds the Sidecars of `service`'s workloads in this cluster to `into`.
    pub(super) fn add_sidecars(
        &self,
        into: &mut Wanted,
        view: &RegistryView,
        service: &GlobalService,
    ) {
        if self.unlisted_kinds.contains(&Kind::Sidecar) {
            return;
        }
        let instance = &self.ctx.installation.instance;
        // What a Sidecar holds depends on this cluster's workloads and on the clusters
        // holding its Dependencies: a write dropping one of them waits while it is unlisted.
        let mut clusters = vec![&self.cluster];
        clusters.extend(service.dependencies.declared_in.iter());
        for sidecar in render_sidecars(view, service, &self.cluster, &self.ctx.render) {
            let (namespace, labels) = (
                &sidecar.metadata.namespace,
                &sidecar.spec.workload_selector.labels,
            );
            if let Some(theirs) = self.foreign_sidecar_over(namespace, labels) {
                debug!(
                    namespace,
                    sidecar = sidecar.metadata.name,
                    theirs,
                    "not written: a Sidecar federator does not own selects the same pods"
                );
                continue;
            }
            into.add(
                Kind::Sidecar,
                sidecar,
                Spec::Sidecar,
                instance,
                &clusters,
                Some(service.host.clone()),
            );
        }
    }
}
