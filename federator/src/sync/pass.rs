//! One writer pass: render, read (everything, or the cache for some hosts), plan, carry out,
//! and re-plan the objects found changed since they were read.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use kube::api::{Api, DynamicObject};
use tracing::{debug, info};

use super::objects::{Spec, Wanted, api_resource, existing, host_clusters};
use super::plan::{Gates, Key, Kind, Plan, key_parts, plan};
use super::report::Reporter;
use super::writer::Writer;
use crate::model::Host;
use crate::registry::RegistryView;
use crate::render::{RenderedHost, eastwest_gateway, render_host};

/// Rounds of re-reading objects found changed, per pass; what is still changing after that
/// waits for the next pass.
const STALE_ROUNDS: usize = 3;

impl Writer {
    /// The registry as last published. Cloning it is cheap (its maps are shared), and no lock
    /// is held while rendering from it: the registry loop goes on meanwhile.
    fn view(&self) -> RegistryView {
        self.ctx.views.borrow().clone()
    }

    /// Reads the sync namespace, renders every host and converges; removes this
    /// installation's objects that are no longer rendered.
    pub(super) async fn reconcile_all(&mut self) -> Result<usize, kube::Error> {
        self.ensure_namespace().await?;
        self.existing = match self.take_read_ahead() {
            Some(read) => read,
            None => self.read_all().await?,
        };
        // Read before the registry: a cluster leaves `unlisted` only once the registry holds
        // its lists, so what is rendered next is never newer than these gates.
        let gates = self.gates();
        let view = self.view();
        let wanted = self.render_all(&view);
        let findings = view.cluster_findings(&self.cluster).to_vec();
        drop(view);
        self.findings.report(findings).await;
        let objects = wanted.len();
        // Names neither wanted nor present any more: nothing left to hold, report or retry.
        let known = |k: &Key| wanted.desired.contains_key(k) || self.existing.contains_key(k);
        self.held.retain(|k, _| known(k));
        self.conflicts.retain(|k, _| known(k));
        self.rejections.retain(known);
        let writes = self.converge(wanted, None, &gates).await?;
        super::objects::prune_shared_maps();
        // A full pass is a burst (every object read, rendered and compared): what it freed
        // goes back to the system.
        tokio::task::spawn_blocking(crate::memory::release_freed);
        self.ctx
            .metrics
            .full_reconciles
            .get_or_create(&self.labels())
            .inc();
        info!(
            objects,
            writes,
            held = self.held.len(),
            "full reconcile done"
        );
        Ok(writes)
    }

    /// Re-renders `hosts` and converges just their objects.
    pub(super) async fn reconcile_hosts(
        &mut self,
        hosts: &BTreeSet<Host>,
    ) -> Result<usize, kube::Error> {
        let gates = self.gates();
        let view = self.view();
        let mut wanted = Wanted::default();
        for host in hosts {
            self.render_one(&view, host, &mut wanted);
        }
        drop(view);
        let mut scope: BTreeSet<Key> = BTreeSet::new();
        for host in hosts {
            scope.extend(
                [Kind::ServiceEntry, Kind::DestinationRule].map(|k| (k, host.as_str().to_owned())),
            );
            scope.extend(self.outside_scope(host, &wanted));
        }
        let writes = self.converge(wanted, Some(scope), &gates).await?;
        debug!(hosts = hosts.len(), writes, "hosts reconciled");
        Ok(writes)
    }

    fn render_all(&self, view: &RegistryView) -> Wanted {
        let options = &self.ctx.render;
        let mut out = Wanted::default();
        for service in view.services() {
            if let Some(rendered) = render_host(view, service, &self.cluster, options) {
                self.add_host(&mut out, view, &service.host, rendered);
            }
            self.add_sidecars(&mut out, view, service);
            self.add_service_import(&mut out, service);
        }
        if let Some(gateway) = eastwest_gateway(view, &self.cluster, options) {
            let instance = &self.ctx.installation.instance;
            out.add(
                Kind::Gateway,
                gateway,
                Spec::Gateway,
                instance,
                &[&self.cluster],
                None,
            );
        }
        out
    }

    fn render_one(&self, view: &RegistryView, host: &Host, into: &mut Wanted) {
        let Some(service) = view.get(host) else {
            return;
        };
        if let Some(rendered) = render_host(view, service, &self.cluster, &self.ctx.render) {
            self.add_host(into, view, host, rendered);
        }
        self.add_sidecars(into, view, service);
        self.add_service_import(into, service);
    }

    fn add_host(
        &self,
        into: &mut Wanted,
        view: &RegistryView,
        host: &Host,
        rendered: RenderedHost,
    ) {
        let clusters = view
            .get(host)
            .map(|s| host_clusters(s, self.ctx.render.export_scope))
            .unwrap_or_default();
        into.add_host(rendered, host, &self.ctx.installation.instance, &clusters);
    }

    /// Plans and carries out the writes for `scope` (`None`: everything wanted or present);
    /// objects found changed since they were read are read again and planned again, a few
    /// rounds at most.
    async fn converge(
        &mut self,
        wanted: Wanted,
        scope: Option<BTreeSet<Key>>,
        gates: &Gates,
    ) -> Result<usize, kube::Error> {
        let mut writes = 0;
        let mut scope = scope;
        for _ in 0..STALE_ROUNDS {
            let planned = match &scope {
                // A full pass plans from the maps as they are: no copies of thousands of
                // entries.
                None => plan(&wanted.desired, &self.existing, gates),
                Some(keys) => {
                    let want = subset(&wanted.desired, keys);
                    let have = subset(&self.existing, keys);
                    plan(&want, &have, gates)
                }
            };
            self.note(&planned, scope.as_ref()).await;
            let (done, stale) = self.execute(planned.writes, &wanted).await?;
            writes += done;
            if stale.is_empty() {
                break;
            }
            for key in &stale {
                self.refresh(key).await?;
            }
            scope = Some(stale);
        }
        Ok(writes)
    }

    fn gates(&self) -> Gates {
        Gates {
            deletes: *self.ctx.gates.deletes.borrow(),
            unlisted: self
                .ctx
                .gates
                .unlisted
                .borrow()
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            resting: self.rejections.resting(Instant::now()),
        }
    }

    /// Records what the plan left out: new conflicts are reported, held writes remembered.
    async fn note(&mut self, planned: &Plan, scope: Option<&BTreeSet<Key>>) {
        let in_scope = |k: &Key| scope.is_none_or(|s| s.contains(k));
        self.held.retain(|k, _| !in_scope(k));
        self.held.extend(planned.held.iter().cloned());
        for key in &planned.settled {
            self.rejections.cleared(key);
        }
        let now: BTreeMap<&Key, _> = planned.conflicts.iter().map(|(k, c)| (k, c)).collect();
        self.conflicts
            .retain(|k, _| !in_scope(k) || now.contains_key(k));
        for (key, conflict) in now {
            if self.conflicts.get(key) == Some(conflict) {
                continue;
            }
            let uid = self
                .existing
                .get(key)
                .and_then(|e| e.uid.as_ref().map(ToString::to_string));
            self.reporter().conflict(key, conflict, uid).await;
            self.conflicts.insert(key.clone(), conflict.clone());
        }
    }

    /// Reads one object again (after a write found it changed).
    async fn refresh(&mut self, key: &Key) -> Result<(), kube::Error> {
        match self.api(key).get_opt(key_parts(key).1).await? {
            Some(object) => {
                let read = existing(key.0, &object, &self.ctx.installation);
                self.existing.insert(key.clone(), read);
            }
            None => {
                self.existing.remove(key);
            }
        }
        Ok(())
    }

    /// The API of the object `key` names: in the sync namespace, or a Sidecar's own.
    pub(super) fn api(&self, key: &Key) -> Api<DynamicObject> {
        let namespace = key_parts(key).0.unwrap_or(&self.ctx.render.namespace);
        Api::namespaced_with(self.client.clone(), namespace, &api_resource(key.0))
    }

    pub(super) fn reporter(&self) -> Reporter<'_> {
        Reporter {
            cluster: &self.cluster,
            recorder: &self.recorder,
            namespace: &self.ctx.render.namespace,
            instance: &self.ctx.installation.instance,
        }
    }
}

/// The entries of `map` under `keys`.
fn subset<V: Clone>(map: &BTreeMap<Key, V>, keys: &BTreeSet<Key>) -> BTreeMap<Key, V> {
    keys.iter()
        .filter_map(|k| map.get(k).map(|v| (k.clone(), v.clone())))
        .collect()
}
