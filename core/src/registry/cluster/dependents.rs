//! Which hosts a change in a cluster touches: the hosts of the workloads a Service selects,
//! or that have endpoints on a node.

use std::collections::BTreeSet;

use super::{ClusterState, pair_hash, selects};
use crate::model::{Host, Labels, ObjectKey, WorkloadKind};

impl ClusterState {
    /// Hosts of the workloads in `namespace` that `selector` selects.
    pub(crate) fn hosts_selected_by(
        &self,
        namespace: &str,
        selector: &Labels,
        suffix: &str,
        out: &mut BTreeSet<Host>,
    ) {
        let Some(ns) = self.namespaces.get(namespace) else {
            return;
        };
        // Only workloads whose pods carry the selector's first pair can match it.
        let Some((key, value)) = selector.iter().next() else {
            return;
        };
        let candidates = ns.workloads_by_pair.get(&pair_hash(key, value));
        for id in candidates.into_iter().flatten() {
            if let Some(w) = self.workloads.by_id(*id)
                && selects(selector, &w.pod_labels)
                && let Ok(host) = w.host(suffix)
            {
                out.insert(host);
            }
        }
    }

    /// Hosts that depend on the Service `key` (through workloads it selects).
    pub(crate) fn hosts_of_service(&self, key: &ObjectKey, suffix: &str, out: &mut BTreeSet<Host>) {
        if let Some(service) = self.services.get(key) {
            self.hosts_selected_by(&key.namespace, &service.selector, suffix, out);
        }
        // A ServiceExport of it: the export names the Service whatever its selector. Every
        // Service and slice delta passes here, so the lookup (which copies the key) is made
        // only when the namespace holds an export.
        let has_exports = self
            .namespaces
            .get(&key.namespace)
            .is_some_and(|ns| ns.exports > 0);
        let export = has_exports
            .then(|| {
                self.workloads
                    .get(&(WorkloadKind::ServiceExport, key.clone()))
            })
            .flatten();
        if let Some(host) = export.and_then(|e| e.host(suffix).ok()) {
            out.insert(host);
        }
    }

    /// Hosts with endpoints on `node`.
    pub(crate) fn hosts_on_node(&self, node: &str, suffix: &str, out: &mut BTreeSet<Host>) {
        let Some(slices) = self.slices_by_node.get(node) else {
            return;
        };
        for id in slices {
            if let Some(slice) = self.slices.by_id(*id) {
                let service = ObjectKey::from_parts(&slice.key.namespace, &slice.service);
                self.hosts_of_service(&service, suffix, out);
            }
        }
    }
}
