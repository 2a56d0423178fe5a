//! Reports a cluster's setup problems (network label disagreeing with the Secret, a
//! gateway without address, a user's Gateway claiming the global hosts): a warning log line
//! and an Event on the object to fix, once per problem, and a note when one is resolved.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{EventType, Recorder};
use tracing::{info, warn};

use crate::model::ClusterName;
use crate::registry::ClusterFinding;

/// Remembers what was reported for one cluster, so each problem is reported once.
pub(super) struct FindingReporter {
    cluster: ClusterName,
    recorder: Recorder,
    reported: BTreeSet<ClusterFinding>,
}

impl FindingReporter {
    /// A reporter for `cluster`, publishing Events with `recorder` (in that cluster).
    pub(super) fn new(cluster: ClusterName, recorder: Recorder) -> Self {
        Self {
            cluster,
            recorder,
            reported: BTreeSet::new(),
        }
    }

    /// Reports the problems in `current` not reported yet; forgets resolved ones (so they
    /// are reported again if they come back).
    pub(super) async fn report(&mut self, current: Vec<ClusterFinding>) {
        let current: BTreeSet<ClusterFinding> = current.into_iter().collect();
        for resolved in self.reported.difference(&current) {
            info!(cluster = %self.cluster, reason = resolved.reason(), "resolved: {resolved}");
        }
        for finding in current.difference(&self.reported) {
            let object = finding.object();
            warn!(
                cluster = %self.cluster,
                reason = finding.reason(),
                kind = object.kind,
                namespace = object.namespace.as_deref().unwrap_or(""),
                name = object.name,
                "{finding}"
            );
            let reference = ObjectReference {
                api_version: Some(object.api_version.into()),
                kind: Some(object.kind.into()),
                namespace: object.namespace.clone(),
                name: Some(object.name.clone()),
                ..Default::default()
            };
            let (warning, reason, note) =
                (EventType::Warning, finding.reason(), finding.to_string());
            crate::events::publish(
                &self.recorder,
                &reference,
                warning,
                reason,
                "Federate",
                &note,
            )
            .await;
        }
        self.reported = current;
    }
}
