//! Sidecars, the one kind the writer keeps outside the sync namespace: each goes into the
//! namespace of the workload it limits. They are listed across the cluster by federator's
//! label (never a user's Sidecar), and a cluster whose credentials may not list them keeps
//! its sidecars as they are, with a warning, while everything else is written.

use kube::api::{Api, DynamicObject, ListParams};
use std::collections::BTreeMap;

use tracing::{debug, warn};

use super::objects::{Spec, Wanted, api_resource, existing};
use super::plan::{Existing, Key, Kind, sidecar_key};
use super::writer::Writer;
use crate::model::Host;
use crate::registry::{GlobalService, RegistryView};
use crate::render::{HOST_ANNOTATION, render_sidecars};

impl Writer {
    /// federator's Sidecars across the cluster, by key, noting the others' selectors (a
    /// user's Sidecar selecting a workload's pods keeps federator's off them: Istio does not
    /// say which of two applies). `None` when the cluster refuses or fails to list them:
    /// every Sidecar is then left alone for this pass, and the rest is written.
    pub(super) async fn list_sidecars(&mut self) -> Option<Vec<(Key, Existing)>> {
        let api: Api<DynamicObject> =
            Api::all_with(self.client.clone(), &api_resource(Kind::Sidecar));
        let listed = match super::paged::list_all(&api, &ListParams::default()).await {
            Ok(listed) => listed,
            Err(err) => {
                let error = crate::connect::describe::kube_error(&err);
                if !self.sidecars_refused {
                    warn!(
                        error,
                        "cannot list networking.istio.io sidecars cluster-wide: the Sidecars of \
                         Dependencies are left as they are in this cluster (federator needs get, \
                         list, create, patch and delete on them, as `federator cluster add` grants)"
                    );
                }
                self.sidecars_refused = true;
                return None;
            }
        };
        self.sidecars_refused = false;
        let us = &self.ctx.installation;
        let mut ours = Vec::new();
        self.foreign_sidecars.clear();
        for object in &listed {
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
        Some(ours)
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
        if self.sidecars_refused {
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

    /// The Sidecars a pass over `host` covers: those wanted for it and those written for it.
    pub(super) fn sidecar_scope<'a>(
        &'a self,
        host: &'a Host,
        wanted: &'a Wanted,
    ) -> impl Iterator<Item = Key> + 'a {
        let written = self.existing.iter().filter(move |(key, existing)| {
            key.0 == Kind::Sidecar
                && existing
                    .annotations
                    .get(HOST_ANNOTATION)
                    .map(String::as_str)
                    == Some(host.as_str())
        });
        let wanted_for_host = wanted
            .bodies
            .iter()
            .filter(move |(key, body)| key.0 == Kind::Sidecar && body.host.as_ref() == Some(host));
        written
            .map(|(key, _)| key.clone())
            .chain(wanted_for_host.map(|(key, _)| key.clone()))
    }
}
