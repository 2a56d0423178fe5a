//! Start-up: the VIPs federator gave out before, read back from the ServiceEntries it owns in
//! every reachable cluster, so a restart keeps every address and rewrites nothing.
//!
//! The read-back runs beside the clusters' first lists, not before them: the registry loop
//! applies no cluster's delta until the table it sends has arrived (see
//! `registry_loop`), so no address is given out before the old ones are known.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use futures::future::join_all;
use kube::api::ListParams;
use kube::{Api, Client};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::RegistryCommand;
use super::manager::Manager;
use crate::istio::ServiceEntry;
use crate::model::{ClusterName, Host};
use crate::render::{HOST_ANNOTATION, MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use crate::sync::plan::{Installation, Owner};

/// What the read-back needs, owned: it runs as a task of its own.
struct ReadBack {
    namespace: String,
    timeout: Duration,
    suffix: String,
    us: Installation,
    commands: mpsc::Sender<RegistryCommand>,
}

impl Manager {
    /// Starts reading the VIPs federator gave out before (the ServiceEntries it owns in every
    /// reachable cluster); the table goes to the registry loop when every cluster answered
    /// or timed out, and `vips_restored` says when.
    pub(super) fn spawn_vip_restore(&self, entries: Vec<(ClusterName, Client)>) {
        let commands = self.commands.clone();
        let read_back = ReadBack {
            namespace: self.options.settings.render.namespace.clone(),
            timeout: self.options.initial_sync_timeout,
            suffix: self.options.settings.registry.host_suffix.clone(),
            us: self.options.installation(),
            commands: commands.clone(),
        };
        let restored = self.vips_restored.clone();
        tokio::spawn(async move {
            if tokio::spawn(read_back.run(entries)).await.is_err() {
                // Every delta waits for a table: the store's alone, rather than none ever.
                warn!(
                    "reading the VIPs back from the ServiceEntries failed; the VIP store's alone are kept"
                );
                let _ = commands
                    .send(RegistryCommand::RestoreVips(BTreeMap::new()))
                    .await;
            }
            restored.send_replace(Some(Instant::now()));
        });
    }
}

impl ReadBack {
    async fn run(self, entries: Vec<(ClusterName, Client)>) {
        let reads = entries
            .iter()
            .map(|(name, client)| self.list(name, client.clone()));
        let mut table: BTreeMap<Host, IpAddr> = BTreeMap::new();
        for (host, address) in join_all(reads).await.into_iter().flatten() {
            table.entry(host).or_insert(address);
        }
        // The loop holds every cluster's deltas back until this arrives.
        let _ = self
            .commands
            .send(RegistryCommand::RestoreVips(table))
            .await;
    }

    /// The VIPs of this installation's ServiceEntries in `cluster` (read a page at a time);
    /// none when it fails or times out.
    async fn list(&self, cluster: &ClusterName, client: Client) -> Vec<(Host, IpAddr)> {
        let api: Api<ServiceEntry> = Api::namespaced(client, &self.namespace);
        let selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}");
        let params = ListParams::default().labels(&selector);
        let vips = |vips: &mut Vec<(Host, IpAddr)>, page: Vec<ServiceEntry>| {
            vips.extend(page.iter().filter_map(|se| self.vip_of(se)));
        };
        let page = crate::sync::paged::PAGE_SIZE;
        let read = crate::sync::paged::fold_pages(&api, &params, page, Vec::new, vips);
        match tokio::time::timeout(self.timeout, read).await {
            Ok(Ok(vips)) => vips,
            Ok(Err(err)) => {
                let error = crate::connect::describe::kube_error(&err);
                debug!(cluster = %cluster, error, "no VIPs read");
                Vec::new()
            }
            Err(_) => {
                debug!(cluster = %cluster, timeout = ?self.timeout, "no VIPs read: timed out");
                Vec::new()
            }
        }
    }

    /// The host and VIP `se` holds, when it is this installation's (another one's VIPs are
    /// its own business).
    fn vip_of(&self, se: &ServiceEntry) -> Option<(Host, IpAddr)> {
        let labels = se.metadata.labels.clone().unwrap_or_default();
        if self.us.owner(&labels) != Owner::Us {
            return None;
        }
        let host = se
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(HOST_ANNOTATION).cloned())
            .or_else(|| se.spec.hosts.first().cloned())?;
        let address = se
            .spec
            .addresses
            .first()
            .and_then(|a| a.parse::<IpAddr>().ok())?;
        Some((Host::parse(&host, &self.suffix)?, address))
    }
}
