//! Publishing Kubernetes Events: the one place that builds them, so every Event federator
//! records is bounded in size and a failure to record one never stops the work it reports.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};
use tracing::debug;

/// Longest note an Event carries (the API server refuses notes over 1 KiB).
const MAX_NOTE_CHARS: usize = 1000;

/// Records an Event of `type_` with `reason` and `note` on `object`; logs at debug level
/// when it cannot (the caller has already logged what the Event says).
pub async fn publish(
    recorder: &Recorder,
    object: &ObjectReference,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note.chars().take(MAX_NOTE_CHARS).collect()),
        action: action.into(),
        secondary: None,
    };
    if let Err(err) = recorder.publish(&event, object).await {
        debug!(error = %err, reason, "could not record an event");
    }
}
