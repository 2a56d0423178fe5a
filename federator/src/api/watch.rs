//! The `Watch` stream: a snapshot, then the hosts each publication changed, computed only when
//! the client takes the next event. Nothing is queued per client: a stream holds the view it
//! is reading (shared with every other reader) and where it is in it, and builds each event
//! from there, at most [`EVENT_BYTES`] at a time. A client that reads slowly gets fewer,
//! larger batches (the changes in between merged), and one that falls behind the registry's
//! change history is cut off with a clear status.

use std::collections::{BTreeSet, VecDeque};
use std::pin::Pin;

use futures::Stream;
use prost::Message;
use tokio::sync::watch;
use tonic::Status;

use super::convert;
use super::pb::WatchEvent;
use super::query::BadField;
use crate::model::Host;
use crate::registry::{RegistryView, Since};

/// Most bytes of services per event (one larger service goes alone): far below the 4 MiB
/// that gRPC clients accept by default.
pub(super) const EVENT_BYTES: usize = 1 << 20;

/// The events of one `Watch` call.
pub(super) type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, Status>> + Send>>;

/// Where a client starts, from its `from_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    /// A snapshot first (no version, or one from another run of federator).
    Snapshot,
    /// The changes after this generation.
    After(u64),
}

/// Reads a `from_version`: `<epoch>.<generation>`, opaque to clients. `epoch` tells this
/// run of federator from earlier ones, whose generations mean nothing here.
pub(super) fn start(from_version: &str, epoch: u64) -> Result<Start, BadField> {
    if from_version.is_empty() {
        return Ok(Start::Snapshot);
    }
    let bad = || BadField {
        field: "from_version",
        reason: format!("{from_version:?} is not a version this API gave out"),
    };
    let (their_epoch, generation) = from_version.split_once('.').ok_or_else(bad)?;
    let their_epoch = u64::from_str_radix(their_epoch, 16).map_err(|_| bad())?;
    let generation: u64 = generation.parse().map_err(|_| bad())?;
    Ok(if their_epoch == epoch {
        Start::After(generation)
    } else {
        Start::Snapshot
    })
}

/// The version a client holds at `generation`.
fn version(epoch: u64, generation: u64) -> String {
    format!("{epoch:x}.{generation}")
}

/// One client's position.
struct Client {
    views: watch::Receiver<RegistryView>,
    ready: watch::Receiver<bool>,
    epoch: u64,
    /// The generation the client holds; `None` until its first snapshot.
    at: Option<u64>,
    /// What is left to send of the current snapshot or batch of changes.
    batch: Option<Batch>,
    /// Whether this stream delivered an event yet (falling behind after that cuts it off).
    delivered: bool,
    /// Most bytes of services per event.
    event_bytes: usize,
    done: bool,
}

/// The stream of events for a client starting at `start`.
pub(super) fn stream(
    views: watch::Receiver<RegistryView>,
    ready: watch::Receiver<bool>,
    epoch: u64,
    start: Start,
) -> WatchStream {
    stream_limited(views, ready, epoch, start, EVENT_BYTES)
}

/// As [`stream`], with at most `event_bytes` of services per event.
fn stream_limited(
    views: watch::Receiver<RegistryView>,
    ready: watch::Receiver<bool>,
    epoch: u64,
    start: Start,
    event_bytes: usize,
) -> WatchStream {
    let client = Client {
        views,
        ready,
        epoch,
        at: match start {
            Start::Snapshot => None,
            Start::After(generation) => Some(generation),
        },
        batch: None,
        delivered: false,
        event_bytes,
        done: false,
    };
    Box::pin(futures::stream::unfold(client, |mut client| async move {
        let event = client.next().await?;
        client.delivered = true;
        client.done = event.is_err();
        Some((event, client))
    }))
}

impl Client {
    async fn next(&mut self) -> Option<Result<WatchEvent, Status>> {
        if self.done {
            return None;
        }
        if let Some(event) = self.next_part() {
            return Some(Ok(event));
        }
        // Nothing before the initial sync: a partial registry would look like removals.
        if self.ready.wait_for(|r| *r).await.is_err() {
            return Some(Err(stopping()));
        }
        loop {
            let view = self.views.borrow_and_update().clone();
            let generation = view.hosts_generation();
            let since = self.at.map_or(Since::TooOld, |at| view.changed_since(at));
            match since {
                Since::Nothing => {
                    drop(view);
                    if self.views.changed().await.is_err() {
                        return Some(Err(stopping()));
                    }
                }
                Since::Hosts(hosts) => {
                    self.at = Some(generation);
                    let version = version(self.epoch, generation);
                    self.batch = Some(Batch::changes(view, hosts, version));
                    return self.next_part().map(Ok);
                }
                Since::TooOld if self.delivered => {
                    return Some(Err(Status::resource_exhausted(
                        "this client fell behind the registry's change history; \
                         reconnect with the last version applied",
                    )));
                }
                Since::TooOld => {
                    self.at = Some(generation);
                    let version = version(self.epoch, generation);
                    self.batch = Some(Batch::snapshot(view, version));
                    return self.next_part().map(Ok);
                }
            }
        }
    }

    /// The next event of the current batch, if one is under way.
    fn next_part(&mut self) -> Option<WatchEvent> {
        let batch = self.batch.as_mut()?;
        let event = batch.next_event(self.event_bytes);
        if !event.version.is_empty() {
            self.batch = None;
        }
        Some(event)
    }
}

/// The stream ends because federator stops.
fn stopping() -> Status {
    Status::unavailable("federator is stopping; reconnect with the last version applied")
}

/// A snapshot or a batch of changes being sent, built event by event from its view.
struct Batch {
    view: RegistryView,
    /// The hosts left to send, in order (every host of the view for a snapshot).
    hosts: VecDeque<Host>,
    /// Whether the next event starts a snapshot.
    reset: bool,
    version: String,
}

impl Batch {
    fn snapshot(view: RegistryView, version: String) -> Self {
        let hosts = view.services().map(|s| s.host.clone()).collect();
        Self {
            view,
            hosts,
            reset: true,
            version,
        }
    }

    fn changes(view: RegistryView, hosts: BTreeSet<Host>, version: String) -> Self {
        Self {
            view,
            hosts: hosts.into_iter().collect(),
            reset: false,
            version,
        }
    }

    /// The next event: hosts up to `limit` bytes of services (at least one), each as the
    /// view has it or gone; the last event carries the version.
    fn next_event(&mut self, limit: usize) -> WatchEvent {
        let mut event = WatchEvent {
            reset: std::mem::take(&mut self.reset),
            ..WatchEvent::default()
        };
        let mut bytes = 0;
        while let Some(host) = self.hosts.front() {
            let service = self.view.get(host).map(convert::service);
            let size = service
                .as_ref()
                .map_or(host.as_str().len(), Message::encoded_len);
            if bytes > 0 && bytes + size > limit {
                break;
            }
            bytes += size;
            match service {
                Some(service) => event.upserted.push(service),
                None => event.removed.push(host.to_string()),
            }
            self.hosts.pop_front();
        }
        if self.hosts.is_empty() {
            event.version = std::mem::take(&mut self.version);
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::fixtures::{app, cluster};
    use crate::registry::{Registry, RegistryConfig};

    /// A registry remembering `history` publications, its view channel, and a publisher of
    /// one new identity per call.
    fn fleet(history: usize) -> (Registry, watch::Sender<RegistryView>) {
        let mut registry = Registry::new(RegistryConfig {
            change_history: history,
            ..RegistryConfig::default()
        });
        registry.apply(cluster("east"));
        let views = watch::Sender::new(registry.publish());
        (registry, views)
    }

    fn add(registry: &mut Registry, views: &watch::Sender<RegistryView>, identity: &str) {
        for delta in app(
            "east",
            "ns",
            identity,
            identity,
            "prod",
            &[("http", 80)],
            &[("", "z")],
        ) {
            registry.apply(delta);
        }
        views.send_replace(registry.publish());
    }

    fn hosts(event: &WatchEvent) -> Vec<&str> {
        event.upserted.iter().map(|s| s.host.as_str()).collect()
    }

    #[tokio::test]
    async fn a_slow_reader_gets_the_changes_in_between_merged() {
        let (mut registry, views) = fleet(10);
        let ready = watch::Sender::new(true);
        let mut events = stream(views.subscribe(), ready.subscribe(), 1, Start::Snapshot);
        let snapshot = events.next().await.unwrap().unwrap();
        assert!(snapshot.reset && snapshot.upserted.is_empty());
        for identity in ["a", "b", "c"] {
            add(&mut registry, &views, identity);
        }
        let merged = events.next().await.unwrap().unwrap();
        assert_eq!(
            hosts(&merged),
            ["prod.a.global", "prod.b.global", "prod.c.global"]
        );
    }

    #[tokio::test]
    async fn large_snapshots_come_in_events_of_bounded_size() {
        let (mut registry, views) = fleet(10);
        for identity in ["a", "b", "c"] {
            add(&mut registry, &views, identity);
        }
        let ready = watch::Sender::new(true);
        // One byte per event: each event holds the one service that does not fit.
        let mut events =
            stream_limited(views.subscribe(), ready.subscribe(), 1, Start::Snapshot, 1);
        let mut got = Vec::new();
        loop {
            let event = events.next().await.unwrap().unwrap();
            got.push((event.reset, hosts(&event).len(), !event.version.is_empty()));
            if !event.version.is_empty() {
                break;
            }
        }
        assert_eq!(got, [(true, 1, false), (false, 1, false), (false, 1, true)]);
    }

    #[tokio::test]
    async fn a_reader_behind_the_history_is_cut_off_with_a_clear_status() {
        let (mut registry, views) = fleet(2);
        let ready = watch::Sender::new(true);
        let mut events = stream(views.subscribe(), ready.subscribe(), 1, Start::Snapshot);
        events.next().await.unwrap().unwrap();
        for identity in ["a", "b", "c"] {
            add(&mut registry, &views, identity);
        }
        let cut = events.next().await.unwrap().unwrap_err();
        assert_eq!(cut.code(), tonic::Code::ResourceExhausted);
        assert!(cut.message().contains("reconnect"), "{cut:?}");
        assert!(events.next().await.is_none(), "the stream ends");
    }

    #[test]
    fn versions_resume_only_within_one_run() {
        assert_eq!(start("", 7), Ok(Start::Snapshot));
        assert_eq!(start(&version(7, 42), 7), Ok(Start::After(42)));
        assert_eq!(start(&version(8, 42), 7), Ok(Start::Snapshot));
        for bad in ["42", "x.1", "7.", "7.-1"] {
            assert_eq!(start(bad, 7).unwrap_err().field, "from_version", "{bad}");
        }
    }
}
