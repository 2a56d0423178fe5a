//! Watching a range of etcd keys: every change, in revision order and none skipped, as
//! etcd's Watch stream reports it. Replicas sharing clusters learn of each other's
//! membership, claims and published contributions this way.

use futures::StreamExt;

use super::client::{EtcdClient, EtcdError, failed, prefix_end};
use super::pb;

/// One change to a watched key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The key was written.
    Put {
        /// The key.
        key: Vec<u8>,
        /// Its new value.
        value: Vec<u8>,
        /// The revision of the write.
        revision: i64,
    },
    /// The key was deleted (or its lease expired).
    Delete {
        /// The key.
        key: Vec<u8>,
        /// The revision of the deletion.
        revision: i64,
    },
}

/// A watch on a range of keys.
pub struct KeyWatch {
    answers: tonic::Streaming<pb::WatchResponse>,
    /// The range, for messages.
    range: String,
    /// Where its messages are counted.
    traffic: super::EtcdTraffic,
}

impl EtcdClient {
    /// Watches every key under `prefix` from `start_revision` on (see [`EtcdClient::watch`]).
    pub async fn watch_prefix(
        &self,
        prefix: &str,
        start_revision: i64,
    ) -> Result<KeyWatch, EtcdError> {
        let key = prefix.as_bytes().to_vec();
        let end = prefix_end(&key);
        self.watch(key, end, start_revision).await
    }

    /// Watches the keys in `[key, range_end)` from `start_revision` on (inclusive; 0: from
    /// now). Fails when etcd refuses the watch, naming the range. A `start_revision` etcd
    /// has compacted away is refused by the first [`KeyWatch::next`], which says the
    /// earliest revision left.
    pub async fn watch(
        &self,
        key: Vec<u8>,
        range_end: Vec<u8>,
        start_revision: i64,
    ) -> Result<KeyWatch, EtcdError> {
        let range = format!(
            "[{}, {})",
            String::from_utf8_lossy(&key),
            String::from_utf8_lossy(&range_end)
        );
        let create = pb::WatchRequest {
            request_union: Some(pb::watch_request::RequestUnion::CreateRequest(
                pb::WatchCreateRequest {
                    key,
                    range_end,
                    start_revision,
                    ..Default::default()
                },
            )),
        };
        // The request side stays open: etcd keeps a watch while its stream lives.
        self.traffic()
            .request("Watch", prost::Message::encoded_len(&create));
        let requests = futures::stream::iter([create]).chain(futures::stream::pending());
        let answers = pb::watch_client::WatchClient::new(self.channel())
            .watch(requests)
            .await
            .map_err(failed("Watch"))?
            .into_inner();
        let mut watch = KeyWatch {
            answers,
            range,
            traffic: self.traffic().clone(),
        };
        match watch.answers.message().await.map_err(failed("Watch"))? {
            Some(answer) if answer.created && !answer.canceled => Ok(watch),
            Some(answer) => Err(watch.cancelled(&answer)),
            None => Err(watch.ended()),
        }
    }
}

impl KeyWatch {
    /// The next changes (all of one revision, or more), in revision order. An error when
    /// the stream breaks or etcd cancels the watch: watch again from the revision after the
    /// last change seen.
    pub async fn next(&mut self) -> Result<Vec<Change>, EtcdError> {
        loop {
            let answer = self
                .answers
                .message()
                .await
                .map_err(failed("Watch"))?
                .ok_or_else(|| self.ended())?;
            self.traffic
                .answer("Watch", prost::Message::encoded_len(&answer));
            if answer.canceled {
                return Err(self.cancelled(&answer));
            }
            if answer.events.is_empty() {
                // A progress notification.
                continue;
            }
            return Ok(answer.events.into_iter().filter_map(change).collect());
        }
    }

    fn cancelled(&self, answer: &pb::WatchResponse) -> EtcdError {
        let reason = if answer.compact_revision > 0 {
            format!(
                "the revision asked for was compacted; the earliest left is {}",
                answer.compact_revision
            )
        } else if answer.cancel_reason.is_empty() {
            "cancelled by etcd".to_owned()
        } else {
            answer.cancel_reason.clone()
        };
        EtcdError::Watch {
            range: self.range.clone(),
            reason,
        }
    }

    fn ended(&self) -> EtcdError {
        EtcdError::Watch {
            range: self.range.clone(),
            reason: "etcd ended the stream".into(),
        }
    }
}

fn change(event: pb::Event) -> Option<Change> {
    let kv = event.kv?;
    Some(
        match pb::event::EventType::try_from(event.r#type).unwrap_or(pb::event::EventType::Put) {
            pb::event::EventType::Put => Change::Put {
                key: kv.key,
                value: kv.value,
                revision: kv.mod_revision,
            },
            pb::event::EventType::Delete => Change::Delete {
                key: kv.key,
                revision: kv.mod_revision,
            },
        },
    )
}
