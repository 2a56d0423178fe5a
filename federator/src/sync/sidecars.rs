//! Sidecars, the one kind the writer keeps outside the sync namespace: each goes into the
//! namespace of the workload it limits. They are listed across the cluster by federator's
//! label (never a user's Sidecar), and a cluster whose credentials may not list them keeps
//! its sidecars as they are, with a warning, while everything else is written.

use kube::api::{Api, DynamicObject, ListParams};
use tracing::warn;

use super::objects::{Spec, Wanted, api_resource, existing};
use super::plan::{Existing, Key, Kind, MANAGED_BY_LABEL, MANAGED_BY_VALUE, sidecar_key};
use super::writer::Writer;
use crate::model::Host;
use crate::registry::{GlobalService, RegistryView};
use crate::render::{HOST_ANNOTATION, render_sidecars};

impl Writer {
    /// federator's Sidecars across the cluster, by key; `None` when the cluster refuses to
    /// list them (credentials granted before Sidecars were written), which is warned about
    /// once and leaves every Sidecar alone.
    pub(super) async fn list_sidecars(
        &mut self,
    ) -> Result<Option<Vec<(Key, Existing)>>, kube::Error> {
        let api: Api<DynamicObject> =
            Api::all_with(self.client.clone(), &api_resource(Kind::Sidecar));
        let params =
            ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"));
        let listed = match super::paged::list_all(&api, &params).await {
            Ok(listed) => listed,
            Err(kube::Error::Api(status)) if matches!(status.code, 403 | 404) => {
                if !self.sidecars_refused {
                    warn!(
                        code = status.code,
                        "cannot list networking.istio.io sidecars cluster-wide: the Sidecars of \
                         Dependencies are not written in this cluster (grant list, create, \
                         patch and delete on them, as `federator cluster add` does)"
                    );
                }
                self.sidecars_refused = true;
                return Ok(None);
            }
            Err(err) => return Err(err),
        };
        self.sidecars_refused = false;
        let us = &self.ctx.installation;
        Ok(Some(
            listed
                .iter()
                .map(|object| {
                    let namespace = object.metadata.namespace.as_deref().unwrap_or_default();
                    let name = object.metadata.name.as_deref().unwrap_or_default();
                    (
                        sidecar_key(namespace, name),
                        existing(Kind::Sidecar, object, us),
                    )
                })
                .collect(),
        ))
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
        for sidecar in render_sidecars(view, service, &self.cluster, &self.ctx.render) {
            into.add(
                Kind::Sidecar,
                sidecar,
                Spec::Sidecar,
                instance,
                &[&self.cluster],
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
