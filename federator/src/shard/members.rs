//! The live replicas, as etcd lists them: the membership records under the members'
//! prefix, listed once and then followed with a watch (listed again when the watch breaks).

use std::collections::BTreeMap;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use federator_core::planner::membership;
use tokio::sync::watch;
use tracing::warn;

use crate::state::etcd::{Change, EtcdClient, EtcdError};

/// The live replicas, as last read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Members {
    /// Their names, sorted.
    pub replicas: Vec<String>,
    /// The etcd revision they were read at.
    pub revision: i64,
}

/// The members' records (key, value, create revision) and the revision they were read at.
pub(super) type Listed = Vec<(String, Vec<u8>, i64)>;

pub(super) async fn list(client: &EtcdClient, dir: &str) -> Result<(Listed, i64), EtcdError> {
    let (kvs, revision) = client.list_prefix(dir).await?;
    let listed = kvs
        .into_iter()
        .map(|kv| {
            let key = String::from_utf8_lossy(&kv.key).into_owned();
            (key, kv.value, kv.create_revision)
        })
        .collect();
    Ok((listed, revision))
}

/// Follows the members' records: lists them, then applies every change after the listing;
/// lists again after a broken watch.
pub(super) async fn follow(client: EtcdClient, dir: String, members: watch::Sender<Members>) {
    let mut backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .build();
    loop {
        match follow_once(&client, &dir, &members).await {
            Ok(()) => return,
            Err(err) => warn!(error = %err, "membership watch broke; listing again"),
        }
        tokio::time::sleep(backoff.next().unwrap_or(Duration::from_secs(5))).await;
    }
}

/// One listing and the watch after it; `Ok` only when no one listens any more.
async fn follow_once(
    client: &EtcdClient,
    dir: &str,
    members: &watch::Sender<Members>,
) -> Result<(), EtcdError> {
    let (listed, revision) = list(client, dir).await?;
    publish(&listed, revision, members);
    let mut records: BTreeMap<String, (Vec<u8>, i64)> = listed
        .into_iter()
        .map(|(key, value, created)| (key, (value, created)))
        .collect();
    let mut watch = client.watch_prefix(dir, revision + 1).await?;
    let mut last = revision;
    loop {
        for change in watch.next().await? {
            match change {
                Change::Put {
                    key,
                    value,
                    revision,
                } => {
                    let key = String::from_utf8_lossy(&key).into_owned();
                    // A new record's create revision is this one; an update keeps its own.
                    let created = records.get(&key).map_or(revision, |(_, c)| *c);
                    records.insert(key, (value, created));
                    last = revision;
                }
                Change::Delete { key, revision } => {
                    records.remove(String::from_utf8_lossy(&key).as_ref());
                    last = revision;
                }
            }
        }
        let listed: Listed = records
            .iter()
            .map(|(key, (value, created))| (key.clone(), value.clone(), *created))
            .collect();
        publish(&listed, last, members);
        if members.is_closed() {
            return Ok(());
        }
    }
}

/// Publishes the live replicas of `listed`, reporting records that are not a replica's.
pub(super) fn publish(listed: &Listed, revision: i64, members: &watch::Sender<Members>) {
    let entries: Vec<(String, Vec<u8>)> = listed
        .iter()
        .map(|(key, value, _)| (key.clone(), value.clone()))
        .collect();
    let (records, corrupt) = membership::live(&entries);
    for record in corrupt {
        warn!(key = %record.key, reason = %record.reason, "membership record ignored");
    }
    let replicas = records.into_iter().map(|r| r.replica).collect();
    members.send_replace(Members { replicas, revision });
}
