//! Publishing Kubernetes Events: the one place that builds them, so every Event federator
//! records is bounded in size and a failure to record one never stops the work it reports.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};
use tracing::debug;

/// Longest note an Event carries (the API server refuses notes over 1 KiB).
const MAX_NOTE_BYTES: usize = 1000;

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
        note: Some(truncate(note, MAX_NOTE_BYTES).to_owned()),
        action: action.into(),
        secondary: None,
    };
    if let Err(err) = recorder.publish(&event, object).await {
        debug!(error = %err, reason, "could not record an event");
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary:
/// the API refuses notes over 1 KiB, and a byte cut inside a character would panic.
fn truncate(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn notes_are_cut_to_bytes_on_character_boundaries() {
        assert_eq!(truncate("abc", 10), "abc");
        assert_eq!(truncate("日本語", 4), "日");
        assert_eq!(truncate(&"é".repeat(600), 1000).len(), 1000);
    }
}
