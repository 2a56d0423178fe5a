//! Keeps the DNS server's snapshot current: built whole from the registry's published view
//! once the initial sync is done, then updated with the hosts each later view changed (from
//! the view's change log), or built whole again when that log no longer reaches back to the
//! last snapshot. Bursts coalesce into one update. Off the path of the writers, so DNS never
//! delays the Istio config.

use std::collections::BTreeSet;

use federator_dns::Snapshot;
use tokio::sync::watch;

use crate::dns::DnsSettings;
use crate::model::Host;
use crate::registry::{RegistryView, Since};

/// Runs until the registry loop stops publishing.
pub(super) async fn publish_dns(
    mut views: watch::Receiver<RegistryView>,
    mut ready: watch::Receiver<bool>,
    handle: federator_dns::SnapshotHandle,
    settings: DnsSettings,
) {
    if ready.wait_for(|r| *r).await.is_err() {
        return;
    }
    // The last snapshot published, and the hosts generation it was made from.
    let mut current: Option<(u64, Snapshot)> = None;
    loop {
        let view = views.borrow_and_update().clone();
        let generation = view.hosts_generation();
        let since = match &current {
            Some((built, _)) => view.changed_since(*built),
            None => Since::TooOld,
        };
        let next = match (since, current.as_ref()) {
            (Since::Nothing, _) => None,
            // On a blocking thread even when small: one host can be a headless service of
            // thousands of endpoints, and a panic there must not end this task.
            (Since::Hosts(hosts), Some((_, snapshot))) => {
                let snapshot = snapshot.clone();
                run_blocking(move || update(&snapshot, &view, &hosts)).await
            }
            (Since::TooOld | Since::Hosts(_), previous) => {
                let serial = previous.map_or(1, |(_, s)| s.serial().wrapping_add(1));
                let settings = settings.clone();
                run_blocking(move || crate::dns::snapshot(&view, &settings, serial)).await
            }
        };
        if let Some((snapshot, errors)) = next {
            for err in errors {
                tracing::warn!(error = %err, "not answered in DNS");
            }
            handle.store(snapshot.clone());
            current = Some((generation, snapshot));
        }
        if views.changed().await.is_err() {
            return;
        }
    }
}

/// `snapshot` with what `hosts` are now in `view`.
fn update(
    snapshot: &Snapshot,
    view: &RegistryView,
    hosts: &BTreeSet<Host>,
) -> (Snapshot, Vec<federator_dns::SnapshotError>) {
    snapshot.update(crate::dns::changes(view, hosts))
}

/// Runs `work` on a blocking thread, so the tasks that carry the same change to the writers
/// never queue behind it; `None` (said loudly) if it panicked, and the previous snapshot
/// stays, to be brought up to date on the next change.
async fn run_blocking(
    work: impl FnOnce() -> (Snapshot, Vec<federator_dns::SnapshotError>) + Send + 'static,
) -> Option<(Snapshot, Vec<federator_dns::SnapshotError>)> {
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => Some(done),
        // A bug, not bad input.
        Err(err) => {
            tracing::error!(error = %err, "the DNS snapshot could not be built; answering from the previous one");
            None
        }
    }
}
