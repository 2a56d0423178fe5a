//! What an API server saw: every watch event on federator's sync namespace, recorded in the
//! background, so tests assert on writes (a wrong DELETE fails a test even when federator
//! believes it was right).

use futures::StreamExt;
use kube::Api;
use kube::api::{ListParams, WatchEvent, WatchParams};
use testenv::TestCluster;

use federator::istio::ServiceEntry;

/// Writes seen by a watch: `(type, name)` of each event.
pub type Writes = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// The resourceVersion of a cluster's sync namespace's ServiceEntries now.
pub async fn sync_version(cluster: &TestCluster) -> String {
    let api: Api<ServiceEntry> = Api::namespaced(cluster.client(), "federator-sync");
    api.list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap()
}

/// Every watch event on the ServiceEntries of a cluster's sync namespace from now on,
/// collected in the background.
pub async fn record_writes(cluster: &TestCluster) -> Writes {
    let version = sync_version(cluster).await;
    record_writes_since(cluster, &version).await
}

/// The ServiceEntry writes each of `clusters` sees from now on (see [`record_writes`]).
pub async fn record_writes_in(clusters: &[&TestCluster]) -> Vec<Writes> {
    let mut seen = Vec::new();
    for cluster in clusters {
        seen.push(record_writes(cluster).await);
    }
    seen
}

/// Fails unless every recording of `seen` is still empty: no API server saw a ServiceEntry
/// created, changed or deleted.
pub fn assert_nothing_written(seen: &[Writes]) {
    for writes in seen {
        assert_eq!(
            *writes.lock().unwrap(),
            [],
            "the API servers saw no ServiceEntry written"
        );
    }
}

/// Every watch event on the ServiceEntries of a cluster's sync namespace after `version`
/// (replayed from the API server's history), collected in the background.
pub async fn record_writes_since(cluster: &TestCluster, version: &str) -> Writes {
    record(cluster, version, |kind, o| {
        (kind.to_owned(), o.metadata.name.unwrap_or_default())
    })
    .await
}

/// Every watch event on the ServiceEntries of a cluster's sync namespace from now on, with
/// the object as stored, collected in the background.
pub type Events = std::sync::Arc<std::sync::Mutex<Vec<(String, ServiceEntry)>>>;

/// Records whole objects (see [`Events`]).
pub async fn record_objects(cluster: &TestCluster) -> Events {
    let version = sync_version(cluster).await;
    record(cluster, &version, |kind, o| (kind.to_owned(), o)).await
}

/// Watches the sync namespace's ServiceEntries after `version`, keeping `entry(type,
/// object)` of each event.
async fn record<T: Send + 'static>(
    cluster: &TestCluster,
    version: &str,
    entry: fn(&str, ServiceEntry) -> T,
) -> std::sync::Arc<std::sync::Mutex<Vec<T>>> {
    let api: Api<ServiceEntry> = Api::namespaced(cluster.client(), "federator-sync");
    watch_from(api, version, entry).await
}

/// Every watch event of `api` from now on, as `(type, namespace/name)`, collected in the
/// background: for kinds outside the sync namespace (Sidecars).
pub async fn record_names<K>(api: Api<K>) -> Writes
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    let version = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    watch_from(api, &version, |kind, o: K| {
        let meta = o.meta();
        let namespace = meta.namespace.clone().unwrap_or_default();
        let name = meta.name.clone().unwrap_or_default();
        (kind.to_owned(), format!("{namespace}/{name}"))
    })
    .await
}

/// Watches `api` after `version`, keeping `entry(type, object)` of each event.
async fn watch_from<K, T>(
    api: Api<K>,
    version: &str,
    entry: fn(&str, K) -> T,
) -> std::sync::Arc<std::sync::Mutex<Vec<T>>>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    T: Send + 'static,
{
    let mut stream = api
        .watch(&WatchParams::default(), version)
        .await
        .unwrap()
        .boxed();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    tokio::spawn(async move {
        while let Some(Ok(event)) = stream.next().await {
            let (kind, object) = match event {
                WatchEvent::Added(o) => ("ADDED", o),
                WatchEvent::Modified(o) => ("MODIFIED", o),
                WatchEvent::Deleted(o) => ("DELETED", o),
                WatchEvent::Bookmark(_) | WatchEvent::Error(_) => continue,
            };
            sink.lock().unwrap().push(entry(kind, object));
        }
    });
    seen
}

/// The value of label `key` on an object.
pub fn label(object: &ServiceEntry, key: &str) -> Option<String> {
    object.metadata.labels.as_ref()?.get(key).cloned()
}

/// The term (leader term, or claim revision when clusters are sharded) a recorded write
/// carries in `federator.io/leader-term`.
pub fn term(event: &(String, ServiceEntry)) -> u64 {
    event
        .1
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("federator.io/leader-term"))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}
