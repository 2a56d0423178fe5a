//! The simulated fleet's sinks: what each cluster's writer would write, planned with the
//! writers' own code and recorded as the writers cache what they wrote.

use std::collections::{BTreeMap, BTreeSet};

use federator::model::{ClusterName, Host};
use federator::registry::{GlobalService, RegistryView};
use federator::render::{RenderOptions, render_host};
use federator::sync::plan::{self, CompactId, Desired, Existing, Gates, Key, Kind, Owner, Write};
use federator::sync::{desired, host_clusters, shared_map};

/// The instance label value the writers stamp.
const INSTANCE: &str = "default";

/// One cluster's sink: the objects a writer wrote there, as it caches them.
#[derive(Default)]
pub struct Sink {
    /// What the writer remembers of each object it wrote.
    pub existing: BTreeMap<Key, Existing>,
    /// Writes carried out so far.
    pub writes: usize,
    next_version: u64,
}

impl Sink {
    /// Carries out `writes` as the API server would, keeping what the writer caches.
    fn record(&mut self, writes: Vec<Write>, desired: &BTreeMap<Key, Desired>) {
        for write in writes {
            self.writes += 1;
            self.next_version += 1;
            match write {
                Write::Create(key) | Write::Update { key, .. } => {
                    let want = &desired[&key];
                    let uid = match self.existing.get(&key) {
                        Some(e) => e.uid.clone(),
                        None => Some(CompactId::new(&format!(
                            "{:08x}-0000-4000-8000-{:012x}",
                            self.writes, self.next_version
                        ))),
                    };
                    let mut annotations = want.annotations.clone();
                    annotations.insert(plan::TERM_ANNOTATION.to_owned(), "1".to_owned());
                    self.existing.insert(
                        key,
                        Existing {
                            owner: Owner::Us,
                            spec: want.spec,
                            labels: shared_map(want.labels.clone()),
                            annotations: shared_map(annotations),
                            uid,
                            resource_version: Some(CompactId::Number(self.next_version)),
                        },
                    );
                }
                Write::Delete { key, .. } => {
                    self.existing.remove(&key);
                }
            }
        }
    }
}

/// The objects a writer wants for `hosts` in `cluster` (every host when `None`).
fn wanted(
    view: &RegistryView,
    cluster: &ClusterName,
    options: &RenderOptions,
    hosts: Option<&BTreeSet<Host>>,
) -> BTreeMap<Key, Desired> {
    let mut out = BTreeMap::new();
    let mut add = |service: &GlobalService| {
        let Some(rendered) = render_host(view, service, cluster, options) else {
            return;
        };
        let clusters = host_clusters(service, options.export_scope);
        let (k, d) = desired(
            Kind::ServiceEntry,
            &rendered.service_entry,
            INSTANCE,
            &clusters,
        );
        out.insert(k, d);
        let (k, d) = desired(
            Kind::DestinationRule,
            &rendered.destination_rule,
            INSTANCE,
            &clusters,
        );
        out.insert(k, d);
    };
    match hosts {
        None => view.services().for_each(&mut add),
        Some(hosts) => hosts.iter().filter_map(|h| view.get(h)).for_each(add),
    }
    out
}

/// A writer's pass over `hosts` (every host when `None`): plan against the sink, record.
pub fn writer_pass(
    view: &RegistryView,
    cluster: &ClusterName,
    options: &RenderOptions,
    sink: &mut Sink,
    hosts: Option<&BTreeSet<Host>>,
) {
    let gates = Gates {
        deletes: true,
        ..Gates::default()
    };
    let want = wanted(view, cluster, options, hosts);
    let planned = match hosts {
        None => plan::plan(&want, &sink.existing, &gates),
        Some(hosts) => {
            let have: BTreeMap<Key, Existing> = hosts
                .iter()
                .flat_map(|h| {
                    [Kind::ServiceEntry, Kind::DestinationRule].map(|k| (k, h.as_str().to_owned()))
                })
                .filter_map(|k| sink.existing.get(&k).map(|e| (k, e.clone())))
                .collect();
            plan::plan(&want, &have, &gates)
        }
    };
    assert!(planned.conflicts.is_empty() && planned.held.is_empty());
    sink.record(planned.writes, &want);
}
