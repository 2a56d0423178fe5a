//! The `Watch` stream: a snapshot, then the hosts each publication changed, computed only when
//! the client takes the next event. Nothing is queued per client: a client that reads slowly
//! gets fewer, larger events (the changes in between merged), and one that falls behind the
//! registry's change history is cut off with a clear status.

use std::collections::{BTreeSet, VecDeque};
use std::pin::Pin;

use futures::Stream;
use tokio::sync::watch;
use tonic::Status;

use super::convert;
use super::pb::WatchEvent;
use super::query::BadField;
use crate::model::Host;
use crate::registry::{RegistryView, Since};

/// Services per snapshot event: keeps each message far below gRPC's 4 MiB default limit.
const SNAPSHOT_CHUNK: usize = 256;

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
    /// Events of a snapshot not taken yet.
    pending: VecDeque<WatchEvent>,
    /// Whether this stream delivered an event yet (falling behind after that cuts it off).
    delivered: bool,
    done: bool,
}

/// The stream of events for a client starting at `start`.
pub(super) fn stream(
    views: watch::Receiver<RegistryView>,
    ready: watch::Receiver<bool>,
    epoch: u64,
    start: Start,
) -> WatchStream {
    let client = Client {
        views,
        ready,
        epoch,
        at: match start {
            Start::Snapshot => None,
            Start::After(generation) => Some(generation),
        },
        pending: VecDeque::new(),
        delivered: false,
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
        if let Some(event) = self.pending.pop_front() {
            return Some(Ok(event));
        }
        // Nothing before the initial sync: a partial registry would look like removals.
        self.ready.wait_for(|r| *r).await.ok()?;
        loop {
            let view = self.views.borrow_and_update().clone();
            let generation = view.hosts_generation();
            let since = self.at.map_or(Since::TooOld, |at| view.changed_since(at));
            match since {
                Since::Nothing => self.views.changed().await.ok()?,
                Since::Hosts(hosts) => {
                    self.at = Some(generation);
                    return Some(Ok(changes(&view, hosts, version(self.epoch, generation))));
                }
                Since::TooOld if self.delivered => {
                    return Some(Err(Status::resource_exhausted(
                        "this client fell behind the registry's change history; \
                         reconnect with the last version applied",
                    )));
                }
                Since::TooOld => {
                    self.at = Some(generation);
                    self.pending = snapshot(&view, version(self.epoch, generation));
                    return self.pending.pop_front().map(Ok);
                }
            }
        }
    }
}

/// The event for `hosts` changed: each one as the view has it, or gone.
fn changes(view: &RegistryView, hosts: BTreeSet<Host>, version: String) -> WatchEvent {
    let mut event = WatchEvent {
        version,
        ..WatchEvent::default()
    };
    for host in hosts {
        match view.get(&host) {
            Some(service) => event.upserted.push(convert::service(service)),
            None => event.removed.push(host.to_string()),
        }
    }
    event
}

/// Every service of `view` in events of [`SNAPSHOT_CHUNK`]: the first resets, the last
/// carries the version.
fn snapshot(view: &RegistryView, version: String) -> VecDeque<WatchEvent> {
    let services: Vec<_> = view.services().map(convert::service).collect();
    let mut events: VecDeque<WatchEvent> = services
        .chunks(SNAPSHOT_CHUNK)
        .map(|chunk| WatchEvent {
            upserted: chunk.to_vec(),
            ..WatchEvent::default()
        })
        .collect();
    if events.is_empty() {
        events.push_back(WatchEvent::default());
    }
    if let Some(first) = events.front_mut() {
        first.reset = true;
    }
    if let Some(last) = events.back_mut() {
        last.version = version;
    }
    events
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
