//! What the writer tells people about objects it leaves alone: a conflict (a name taken by
//! someone else's object) or a refusal by the API server, each as a log line and an Event on
//! the object (or on the sync namespace when the object does not exist).

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{EventType, Recorder};
use tracing::warn;

use super::plan::{Conflict, INSTANCE_LABEL, Key, MANAGED_BY_LABEL, MANAGED_BY_VALUE, key_parts};
use crate::model::ClusterName;

/// Most characters of an API server's message repeated in a log line or an Event.
const MAX_MESSAGE: usize = 300;

/// Who reports, and where.
pub(super) struct Reporter<'a> {
    pub(super) cluster: &'a ClusterName,
    pub(super) recorder: &'a Recorder,
    pub(super) namespace: &'a str,
    pub(super) instance: &'a str,
}

impl Reporter<'_> {
    /// Reports that `key` is left alone because of `conflict`.
    pub(super) async fn conflict(&self, key: &Key, conflict: &Conflict, uid: Option<String>) {
        let (kind, name) = (key.0.name(), &key.1);
        let why = match conflict {
            Conflict::Foreign => format!(
                "it is not labelled {MANAGED_BY_LABEL}={MANAGED_BY_VALUE}; it is left untouched"
            ),
            Conflict::OtherInstallation(Some(other)) => format!(
                "it belongs to another federator installation ({INSTANCE_LABEL}={other}, this \
                 one is {}); it is left untouched",
                self.instance
            ),
            Conflict::OtherInstallation(None) => format!(
                "it was written by a federator without the {INSTANCE_LABEL} label (this \
                 installation is {}); it is left untouched: label it, or start federator with \
                 --adopt-unlabelled when this installation wrote it",
                self.instance
            ),
        };
        warn!(
            cluster = %self.cluster,
            kind,
            name,
            namespace = self.namespace,
            reason = "OwnershipConflict",
            "not writing: {why}"
        );
        let note = format!("federator wants to write {kind} {name} but {why}");
        self.publish(key, uid, EventType::Warning, "OwnershipConflict", &note)
            .await;
    }

    /// Reports that the API server refused a write of `key`; it is retried after `rest`.
    pub(super) async fn rejected(
        &self,
        key: &Key,
        uid: Option<String>,
        code: u16,
        reason: &str,
        message: &str,
        rest: std::time::Duration,
    ) {
        let (kind, name) = (key.0.name(), &key.1);
        // The API server's words (an admission policy's message) are what the user needs,
        // on one line and short: a multi-line message must not forge log lines.
        let message: String = message
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(MAX_MESSAGE)
            .collect();
        let message = message.as_str();
        warn!(
            cluster = %self.cluster,
            kind,
            name,
            namespace = self.namespace,
            code,
            reason,
            message,
            retry_in = ?rest,
            "the API server refused this object; the others are written"
        );
        let note = format!(
            "the API server refused federator's write of {kind} {name} ({code} {reason}): \
             {message}; retried in {}s",
            rest.as_secs()
        );
        self.publish(key, uid, EventType::Warning, "WriteRejected", &note)
            .await;
    }

    /// An Event on the object when it exists, else on the sync namespace.
    async fn publish(
        &self,
        key: &Key,
        uid: Option<String>,
        type_: EventType,
        reason: &str,
        note: &str,
    ) {
        let reference = match uid {
            Some(uid) => ObjectReference {
                api_version: Some(super::objects::api_resource(key.0).api_version),
                kind: Some(key.0.name().into()),
                name: Some(key_parts(key).1.to_owned()),
                namespace: Some(key_parts(key).0.unwrap_or(self.namespace).to_owned()),
                uid: Some(uid),
                ..Default::default()
            },
            None => ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Namespace".into()),
                name: Some(self.namespace.to_owned()),
                ..Default::default()
            },
        };
        crate::events::publish(self.recorder, &reference, type_, reason, "Sync", note).await;
    }
}
