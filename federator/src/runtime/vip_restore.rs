//! Start-up: the VIPs federator gave out before, read back from the ServiceEntries it owns in
//! every reachable cluster, so a restart keeps every address and rewrites nothing.

use std::collections::BTreeMap;
use std::net::IpAddr;

use futures::future::join_all;
use kube::api::ListParams;
use kube::{Api, Client};
use tracing::debug;

use super::manager::Manager;
use crate::istio::ServiceEntry;
use crate::model::{ClusterName, Host};
use crate::render::{HOST_ANNOTATION, MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use crate::sync::plan::Owner;

impl Manager {
    /// Reads the VIPs federator gave out before (the ServiceEntries it owns in every
    /// reachable cluster), so a restart keeps every address and rewrites nothing.
    pub(super) async fn restore_vips(&self, entries: &[(ClusterName, Client)]) {
        let namespace = self.options.settings.render.namespace.clone();
        let timeout = self.options.initial_sync_timeout;
        let reads = entries.iter().map(|(name, client)| {
            let api: Api<ServiceEntry> = Api::namespaced(client.clone(), &namespace);
            let selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}");
            let name = name.clone();
            async move {
                let params = ListParams::default().labels(&selector);
                let listed =
                    tokio::time::timeout(timeout, crate::sync::paged::list_all(&api, &params))
                        .await;
                match listed {
                    Ok(Ok(items)) => items,
                    Ok(Err(err)) => {
                        let error = crate::connect::describe::kube_error(&err);
                        debug!(cluster = %name, error, "no VIPs read");
                        Vec::new()
                    }
                    Err(_) => Vec::new(),
                }
            }
        });
        let mut table: BTreeMap<Host, IpAddr> = BTreeMap::new();
        let suffix = self.options.settings.registry.host_suffix.clone();
        // This installation's only: another one's VIPs are its own business.
        let us = self.options.installation();
        for items in join_all(reads).await {
            for se in items {
                let labels = se.metadata.labels.clone().unwrap_or_default();
                if us.owner(&labels) != Owner::Us {
                    continue;
                }
                let host = se
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(HOST_ANNOTATION).cloned())
                    .or_else(|| se.spec.hosts.first().cloned());
                let address = se
                    .spec
                    .addresses
                    .first()
                    .and_then(|a| a.parse::<IpAddr>().ok());
                let (Some(host), Some(address)) = (host, address) else {
                    continue;
                };
                if let Some(host) = Host::parse(&host, &suffix) {
                    table.entry(host).or_insert(address);
                }
            }
        }
        // Through the registry loop, ahead of any delta of the clusters started after.
        let _ = self
            .commands
            .send(super::RegistryCommand::RestoreVips(table))
            .await;
    }
}
