//! The kinds the writer keeps outside the sync namespace: Sidecars (in their workloads'
//! namespaces) and ServiceImports (in their Services'). They are listed across the cluster;
//! a cluster whose credentials may not list a kind, or that does not serve it, keeps those
//! objects as they are (with a warning when refused) while everything else is written.

use kube::api::{Api, DynamicObject, ListParams};
use tracing::{debug, warn};

use super::objects::{Wanted, api_resource};
use super::plan::{Key, Kind};
use super::writer::Writer;
use crate::model::Host;
use crate::render::HOST_ANNOTATION;

impl Writer {
    /// Every object of `kind` across the cluster.
    pub(super) async fn list_outside(&self, kind: Kind) -> Result<Vec<DynamicObject>, kube::Error> {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &api_resource(kind));
        super::paged::list_all(&api, &ListParams::default()).await
    }

    /// What [`Writer::list_outside`] gave for `kind`; `None` when the cluster refused or
    /// failed to list them (or does not serve the kind): they are then left alone for this
    /// pass, with a warning the first time.
    pub(super) fn outside_listed(
        &mut self,
        kind: Kind,
        listed: Result<Vec<DynamicObject>, kube::Error>,
    ) -> Option<Vec<DynamicObject>> {
        match listed {
            Ok(listed) => {
                self.unlisted_kinds.remove(&kind);
                Some(listed)
            }
            Err(err) => {
                let error = crate::connect::describe::kube_error(&err);
                let not_served = matches!(&err, kube::Error::Api(s) if s.code == 404);
                if not_served {
                    debug!(
                        kind = kind.name(),
                        "not served by this cluster; none written"
                    );
                } else if !self.unlisted_kinds.contains(&kind) {
                    warn!(
                        kind = kind.name(),
                        error,
                        "cannot list them cluster-wide: those in this cluster are left as they \
                         are (federator needs get, list, create, patch and delete on them, as \
                         `federator cluster add` grants)"
                    );
                }
                self.unlisted_kinds.insert(kind);
                None
            }
        }
    }

    /// The objects of the kinds outside the sync namespace a pass over `host` covers: those
    /// wanted for it and those written for it.
    pub(super) fn outside_scope<'a>(
        &'a self,
        host: &'a Host,
        wanted: &'a Wanted,
    ) -> impl Iterator<Item = Key> + 'a {
        let written = self.existing.iter().filter(move |(key, existing)| {
            key.0.outside_sync_namespace()
                && existing
                    .annotations
                    .get(HOST_ANNOTATION)
                    .map(String::as_str)
                    == Some(host.as_str())
        });
        let wanted_for_host = wanted.bodies.iter().filter(move |(key, body)| {
            key.0.outside_sync_namespace() && body.host.as_ref() == Some(host)
        });
        written
            .map(|(key, _)| key.clone())
            .chain(wanted_for_host.map(|(key, _)| key.clone()))
    }
}
