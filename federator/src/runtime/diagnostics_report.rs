//! Live registry diagnostics: the warnings `federator render` prints (port conflicts, VIP
//! range exhaustion, shadowed GlobalTrafficPolicies, clusters without a gateway address) are
//! reported by `federator run` too. Each new problem gets a
//! log line and an Event on the object to fix in its cluster (or on the cluster's Secret),
//! once; every problem is counted in `federator_registry_problems{reason}`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{EventType, Recorder, Reporter};
use tracing::{info, warn};

use super::manager::Manager;
use crate::metrics::ReasonLabels;
use crate::registry::{Diagnostic, Severity};

/// How often the diagnostics are recomputed at most (they read the whole registry).
const EVERY: Duration = Duration::from_secs(5);
/// Most Events published per round: a fleet-wide mistake is a count, not a flood.
const MOST_EVENTS: usize = 50;
/// How long one Event may take to publish.
const EVENT_TIMEOUT: Duration = Duration::from_secs(5);

/// What was reported, and when the registry was last looked at.
#[derive(Default)]
pub(super) struct DiagnosticsState {
    reported: BTreeSet<Diagnostic>,
    counted: BTreeSet<&'static str>,
    last: Option<(Instant, u64)>,
    /// Some new problems were left for a later round.
    pending: bool,
}

impl Manager {
    /// Recomputes the registry's diagnostics when it changed (at most every few seconds)
    /// and reports what is new.
    pub(super) async fn report_diagnostics(&mut self) {
        let deltas = self.metrics.deltas.get();
        if self.diagnostics.last.is_some_and(|(at, seen)| {
            (seen == deltas && !self.diagnostics.pending) || at.elapsed() < EVERY
        }) {
            return;
        }
        self.diagnostics.last = Some((Instant::now(), deltas));
        // The registry loop works them out between batches: they read more than a view holds.
        let (reply, warnings) = tokio::sync::oneshot::channel();
        if self
            .commands
            .send(super::RegistryCommand::Warnings(reply))
            .await
            .is_err()
        {
            return;
        }
        let Ok(warnings) = warnings.await else {
            return;
        };
        let current: BTreeSet<Diagnostic> = warnings.into_iter().collect();
        self.count(&current);
        if !self.fence.may_write() {
            // Events are the leader's to write; a follower counts (its metrics stay true)
            // and reports everything current once it leads.
            self.diagnostics.reported.clear();
            self.diagnostics.pending = true;
            return;
        }
        for resolved in self.diagnostics.reported.difference(&current) {
            if !resolved.reported_elsewhere {
                info!(reason = resolved.reason, cluster = ?resolved.cluster, object = resolved.object, "resolved: {}", resolved.message);
            }
        }
        self.diagnostics.reported.retain(|d| current.contains(d));
        let new: Vec<Diagnostic> = current
            .difference(&self.diagnostics.reported)
            .filter(|d| !d.reported_elsewhere)
            .cloned()
            .collect();
        let mut events = Vec::new();
        self.diagnostics.pending = false;
        for diagnostic in new {
            if events.len() >= MOST_EVENTS {
                // The rest waits for the next round: a fleet-wide mistake is not a flood.
                self.diagnostics.pending = true;
                break;
            }
            let Some(event) = self.event_for(&diagnostic) else {
                // Its cluster is not connected yet: reported once it is.
                self.diagnostics.pending = true;
                continue;
            };
            if diagnostic.severity == Severity::Warning {
                warn!(reason = diagnostic.reason, cluster = ?diagnostic.cluster, object = diagnostic.object, "{}", diagnostic.message);
            } else {
                info!(reason = diagnostic.reason, cluster = ?diagnostic.cluster, object = diagnostic.object, "{}", diagnostic.message);
            }
            events.extend(event);
            self.diagnostics.reported.insert(diagnostic);
        }
        // Off the manager's loop: a slow cluster must not hold up the others' lifecycle.
        tokio::spawn(async move {
            for (recorder, reference, type_, reason, note) in events {
                let publish =
                    crate::events::publish(&recorder, &reference, type_, reason, "Federate", &note);
                let _ = tokio::time::timeout(EVENT_TIMEOUT, publish).await;
            }
        });
    }

    fn count(&mut self, current: &BTreeSet<Diagnostic>) {
        let mut counts: BTreeMap<&'static str, i64> = BTreeMap::new();
        for diagnostic in current {
            *counts.entry(diagnostic.reason).or_default() += 1;
        }
        for reason in self.diagnostics.counted.iter().chain(counts.keys()) {
            let labels = ReasonLabels { reason };
            let value = counts.get(reason).copied().unwrap_or(0);
            self.metrics
                .registry_problems
                .get_or_create(&labels)
                .set(value);
        }
        self.diagnostics.counted.extend(counts.keys());
    }

    /// The Event for a diagnostic: on the object to fix in its cluster, or on the cluster's
    /// Secret when the problem is the cluster's as a whole. `None` when its cluster is not
    /// connected yet; `Some(None)` when there is nowhere to put one (only logged).
    fn event_for(&self, diagnostic: &Diagnostic) -> Option<Option<DiagnosticEvent>> {
        let Some(cluster) = &diagnostic.cluster else {
            return Some(None);
        };
        let Some(handle) = self.clusters.get(cluster) else {
            return Some(None);
        };
        let type_ = match diagnostic.severity {
            Severity::Warning => EventType::Warning,
            Severity::Info => EventType::Normal,
        };
        let Some(subject) = &diagnostic.subject else {
            let note = format!(
                "cluster {cluster}: {}: {}",
                diagnostic.object, diagnostic.message
            );
            let event = (
                self.recorder.clone(),
                handle.secret.clone(),
                type_,
                diagnostic.reason,
                note,
            );
            return Some(Some(event));
        };
        let running = handle.running.as_ref()?;
        let recorder = Recorder::new(
            running.client.clone(),
            Reporter {
                controller: "federator".into(),
                instance: None,
            },
        );
        let reference = ObjectReference {
            api_version: Some(subject.api_version.into()),
            kind: Some(subject.kind.into()),
            namespace: subject.namespace.clone(),
            name: Some(subject.name.clone()),
            ..Default::default()
        };
        let note = diagnostic.message.clone();
        Some(Some((recorder, reference, type_, diagnostic.reason, note)))
    }
}

/// One Event to publish: where, on what, and what it says.
type DiagnosticEvent = (Recorder, ObjectReference, EventType, &'static str, String);
