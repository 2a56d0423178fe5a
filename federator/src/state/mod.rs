//! Durable state shared by replicas and kept across restarts: the VIP allocation table. One
//! small trait ([`StateStore`]), two implementations: [`embedded`] (an object in the config
//! cluster, nothing extra to install) and [`etcd`] (keys under a prefix, compare-and-swap per
//! allocation). The ServiceEntries federator wrote stay the recovery path when the state is
//! lost, and are checked against it at start-up.

pub mod embedded;
pub mod etcd;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::IpAddr;

pub use federator_core::planner::vip_sync::{VipWrites, apply_writes};

use crate::model::Host;

/// Why the store could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("state store {store}: {reason}")]
pub struct StoreError {
    /// Which store (the object, or the etcd endpoints and prefix).
    pub store: String,
    /// What went wrong, credential-free.
    pub reason: String,
}

/// The VIP table as read, with the entries that could not be read.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Host -> address.
    pub table: HashMap<Host, IpAddr>,
    /// Entries skipped: each names its key and why (a corrupt or foreign value).
    pub skipped: Vec<String>,
    /// The store's version of what was read: unchanged version, unchanged table.
    pub version: String,
}

/// Where the VIP table lives.
pub trait StateStore: Send + Sync + 'static {
    /// The version of the table now: cheap, so followers can poll it.
    fn version(&self) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// The whole table.
    fn load(&self) -> impl Future<Output = Result<Loaded, StoreError>> + Send;

    /// Records claims and removes releases (each only if the store still holds exactly that
    /// entry). Returns what the store holds for each claimed host, and for each claimed
    /// address another host holds: the entries to adopt where they differ from the claim.
    /// A claim never takes an address or a host another writer recorded first.
    fn write(
        &self,
        writes: &VipWrites,
    ) -> impl Future<Output = Result<BTreeMap<Host, IpAddr>, StoreError>> + Send;

    /// Where the store is, for logs.
    fn describe(&self) -> String;
}

/// The store chosen at start-up.
pub enum Store {
    /// An object in the config cluster.
    Embedded(Box<embedded::EmbeddedStore>),
    /// Keys in etcd.
    Etcd(etcd::EtcdStore),
}

impl StateStore for Store {
    async fn version(&self) -> Result<String, StoreError> {
        match self {
            Self::Embedded(s) => s.version().await,
            Self::Etcd(s) => s.version().await,
        }
    }

    async fn load(&self) -> Result<Loaded, StoreError> {
        match self {
            Self::Embedded(s) => s.load().await,
            Self::Etcd(s) => s.load().await,
        }
    }

    async fn write(&self, writes: &VipWrites) -> Result<BTreeMap<Host, IpAddr>, StoreError> {
        match self {
            Self::Embedded(s) => s.write(writes).await,
            Self::Etcd(s) => s.write(writes).await,
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Embedded(s) => s.describe(),
            Self::Etcd(s) => s.describe(),
        }
    }
}

/// Which store `federator run` keeps its state in.
#[derive(Clone, Debug)]
pub enum StoreOptions {
    /// A ConfigMap of this name in federator's namespace of the config cluster.
    Embedded {
        /// The ConfigMap's name.
        name: String,
    },
    /// Keys under a prefix in etcd.
    Etcd(etcd::EtcdOptions),
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self::Embedded {
            name: "federator-state".into(),
        }
    }
}

/// Opens the store `options` name; `config` talks to the config cluster. Nothing is dialled
/// yet: an unreachable store is an error of each request (retried), not of the start.
pub fn open(
    options: &StoreOptions,
    run: &crate::runtime::RunOptions,
    config: &kube::Client,
    traffic: &etcd::EtcdTraffic,
) -> Result<Store, StoreError> {
    let suffix = &run.settings.registry.host_suffix;
    Ok(match options {
        StoreOptions::Embedded { name } => Store::Embedded(Box::new(embedded::EmbeddedStore::new(
            config.clone(),
            &run.namespace,
            name,
            suffix,
        ))),
        StoreOptions::Etcd(etcd) => {
            let store = etcd::EtcdStore::new(etcd, suffix).map_err(|e| StoreError {
                store: format!("etcd {}", etcd.endpoints.join(",")),
                reason: e.to_string(),
            })?;
            Store::Etcd(store.counted(traffic.clone()))
        }
    })
}
