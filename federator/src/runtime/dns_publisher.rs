//! Keeps the DNS server's snapshot current: rebuilt from the registry's published views once
//! the initial sync is done and then whenever a view changed some host; bursts coalesce into
//! one rebuild. Off the path of the writers (and off the async workers), so DNS never delays
//! the Istio config.

use tokio::sync::watch;

use crate::dns::DnsSettings;
use crate::registry::RegistryView;

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
    let mut built: Option<u64> = None;
    let mut serial: u32 = 0;
    loop {
        let view = views.borrow_and_update().clone();
        let generation = view.hosts_generation();
        if built != Some(generation) {
            serial = serial.wrapping_add(1);
            // Milliseconds of CPU for thousands of hosts: on a blocking thread, so the tasks
            // that carry the same change to the writers never queue behind it.
            let settings = settings.clone();
            let build = move || crate::dns::snapshot(&view, &settings, serial);
            match tokio::task::spawn_blocking(build).await {
                Ok((snapshot, errors)) => {
                    for err in errors {
                        tracing::warn!(error = %err, "not answered in DNS");
                    }
                    handle.store(snapshot);
                    built = Some(generation);
                }
                // A bug, not bad input: said loudly, and tried again on the next change.
                Err(err) => {
                    tracing::error!(error = %err, "the DNS snapshot could not be built; answering from the previous one")
                }
            }
        } else {
            // Not kept while waiting: an old view holds on to what changed since.
            drop(view);
        }
        if views.changed().await.is_err() {
            return;
        }
    }
}
