//! The embedded store: the VIP table in one ConfigMap of the config cluster, one line per
//! allocation (`<host> <address>`). Written only by the leader, each write conditional on the
//! resourceVersion read (a concurrent write makes it read again and re-apply). Good for tens
//! of thousands of hosts (an object holds at most about 1 MiB); beyond, use etcd.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

use super::{Loaded, StateStore, StoreError, VipWrites, apply_writes};
use crate::model::Host;

/// The ConfigMap's data key holding the table.
pub const VIPS_KEY: &str = "vips";

/// Largest table written: the API server refuses objects above about 1.5 MiB, and etcd
/// warns well before.
const MAX_BYTES: usize = 1024 * 1024;

/// The ConfigMap store.
pub struct EmbeddedStore {
    api: Api<ConfigMap>,
    namespace: String,
    name: String,
    /// Host names end with this (what a line must hold).
    suffix: String,
}

/// One write attempt's failure: a conflict is retried.
enum Attempt {
    Conflict,
    Failed(StoreError),
}

impl EmbeddedStore {
    /// The ConfigMap `name` in `namespace` of the config cluster.
    pub fn new(client: kube::Client, namespace: &str, name: &str, suffix: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            suffix: suffix.to_owned(),
        }
    }

    fn error(&self, reason: String) -> StoreError {
        StoreError {
            store: self.describe(),
            reason,
        }
    }

    async fn read(&self) -> Result<Option<ConfigMap>, StoreError> {
        self.api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.error(crate::connect::describe::kube_error(&e)))
    }

    /// The table a ConfigMap holds; lines that are not `<host> <address>` of this
    /// installation, or repeat an address, are skipped and named.
    fn parse(&self, map: Option<&ConfigMap>) -> Loaded {
        let mut loaded = Loaded {
            version: version_of(map),
            ..Loaded::default()
        };
        let text = map
            .and_then(|m| m.data.as_ref())
            .and_then(|d| d.get(VIPS_KEY))
            .map(String::as_str)
            .unwrap_or_default();
        let mut holders: HashMap<IpAddr, Host> = HashMap::new();
        for (index, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let key = format!("{}/{} line {}", self.namespace, self.name, index + 1);
            let mut words = line.split_whitespace();
            let (Some(host), Some(address), None) = (words.next(), words.next(), words.next())
            else {
                loaded
                    .skipped
                    .push(format!("{key}: not \"<host> <address>\""));
                continue;
            };
            let Some(host) = Host::parse(host, &self.suffix) else {
                loaded.skipped.push(format!(
                    "{key}: {} is not a global host ending in .{}",
                    crate::api::shown(host),
                    self.suffix
                ));
                continue;
            };
            let Ok(address) = address.parse::<IpAddr>() else {
                loaded.skipped.push(format!(
                    "{key}: {} is not an IP address",
                    crate::api::shown(address)
                ));
                continue;
            };
            if let Some(first) = holders.get(&address) {
                loaded
                    .skipped
                    .push(format!("{key}: {address} is already held by {first}"));
                continue;
            }
            holders.insert(address, host.clone());
            loaded.table.insert(host, address);
        }
        loaded
    }

    async fn attempt(&self, writes: &VipWrites) -> Result<BTreeMap<Host, IpAddr>, Attempt> {
        let current = self.read().await.map_err(Attempt::Failed)?;
        let loaded = self.parse(current.as_ref());
        let mut table: BTreeMap<Host, IpAddr> = loaded.table.into_iter().collect();
        let before = table.clone();
        let answer = apply_writes(&mut table, writes);
        if table == before && loaded.skipped.is_empty() {
            return Ok(answer);
        }
        let mut text = String::with_capacity(table.len() * 48);
        for (host, address) in &table {
            text.push_str(host.as_str());
            text.push(' ');
            text.push_str(&address.to_string());
            text.push('\n');
        }
        if text.len() > MAX_BYTES {
            return Err(Attempt::Failed(self.error(format!(
                "{} allocations take {} bytes, more than the {MAX_BYTES} an object may hold; use --store etcd://...",
                table.len(),
                text.len()
            ))));
        }
        let data = BTreeMap::from([(VIPS_KEY.to_owned(), text)]);
        let params = PostParams {
            field_manager: Some(crate::sync::FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        };
        let result = match current {
            None => {
                let map = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        namespace: Some(self.namespace.clone()),
                        labels: Some(BTreeMap::from([(
                            crate::render::MANAGED_BY_LABEL.to_owned(),
                            crate::render::MANAGED_BY_VALUE.to_owned(),
                        )])),
                        ..ObjectMeta::default()
                    },
                    data: Some(data),
                    ..ConfigMap::default()
                };
                self.api.create(&params, &map).await
            }
            Some(mut map) => {
                // Carries the resourceVersion read: refused (409) if anyone wrote since.
                map.data = Some(data);
                self.api.replace(&self.name, &params, &map).await
            }
        };
        match result {
            Ok(_) => Ok(answer),
            Err(kube::Error::Api(status)) if status.code == 409 => Err(Attempt::Conflict),
            Err(err) => Err(Attempt::Failed(
                self.error(crate::connect::describe::kube_error(&err)),
            )),
        }
    }
}

fn version_of(map: Option<&ConfigMap>) -> String {
    map.and_then(|m| m.metadata.resource_version.clone())
        .unwrap_or_default()
}

impl StateStore for EmbeddedStore {
    async fn version(&self) -> Result<String, StoreError> {
        // The metadata only: a follower polls this every few seconds, and the table can be
        // a megabyte.
        let meta = self
            .api
            .get_metadata_opt(&self.name)
            .await
            .map_err(|e| self.error(crate::connect::describe::kube_error(&e)))?;
        Ok(meta
            .and_then(|m| m.metadata.resource_version)
            .unwrap_or_default())
    }

    async fn load(&self) -> Result<Loaded, StoreError> {
        Ok(self.parse(self.read().await?.as_ref()))
    }

    async fn write(&self, writes: &VipWrites) -> Result<BTreeMap<Host, IpAddr>, StoreError> {
        if writes.is_empty() {
            return Ok(BTreeMap::new());
        }
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(20))
            .with_max_delay(Duration::from_millis(500))
            .with_jitter()
            .with_max_times(8);
        let result = (|| self.attempt(writes))
            .retry(backoff)
            .when(|e| matches!(e, Attempt::Conflict))
            .await;
        result.map_err(|e| match e {
            Attempt::Failed(err) => err,
            Attempt::Conflict => self.error("written by someone else at every attempt".into()),
        })
    }

    fn describe(&self) -> String {
        format!("ConfigMap {}/{}", self.namespace, self.name)
    }
}
