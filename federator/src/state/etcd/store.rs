//! The VIP table in etcd. Keys, under the installation's prefix:
//! `vips/host/<host>` = address, and `vips/addr/<address>` = host; `vips/version` is written
//! with every change, so a follower's poll reads one key. A claim is one
//! transaction: "if neither key exists, create both; else read both", so of two writers
//! claiming one host or one address, exactly one wins and the other learns the winner's
//! entry. A release deletes both keys only if they still hold exactly that entry.

use std::collections::BTreeMap;
use std::net::IpAddr;

use futures::{StreamExt, stream};

use super::client::{EtcdClient, EtcdError, EtcdOptions, prefix_end};
use super::pb::{self, compare, request_op, response_op};
use crate::model::Host;
use crate::state::{Loaded, StateStore, StoreError, VipWrites};

/// Claims in flight at once.
const CONCURRENCY: usize = 32;
/// Keys per page when reading the table.
const PAGE: i64 = 5000;

/// The etcd store.
pub struct EtcdStore {
    client: EtcdClient,
    prefix: String,
    suffix: String,
}

impl EtcdStore {
    /// The store under `options.prefix`; host names end with `suffix`.
    pub fn new(options: &EtcdOptions, suffix: &str) -> Result<Self, EtcdError> {
        Ok(Self {
            client: EtcdClient::new(options)?,
            prefix: options.prefix.clone(),
            suffix: suffix.to_owned(),
        })
    }

    /// The same store, counting its requests and bytes into `traffic`.
    pub fn counted(mut self, traffic: super::EtcdTraffic) -> Self {
        self.client = self.client.counted(traffic);
        self
    }

    fn host_key(&self, host: &Host) -> Vec<u8> {
        format!("{}vips/host/{host}", self.prefix).into_bytes()
    }

    fn address_key(&self, address: IpAddr) -> Vec<u8> {
        format!("{}vips/addr/{address}", self.prefix).into_bytes()
    }

    /// A key every change of the table also writes: its mod revision is the table's
    /// version, one key to read for a follower's poll however large the table.
    fn version_key(&self) -> Vec<u8> {
        format!("{}vips/version", self.prefix).into_bytes()
    }

    fn bump_version(&self) -> pb::RequestOp {
        pb::RequestOp {
            request: Some(request_op::Request::RequestPut(pb::PutRequest {
                key: self.version_key(),
                ..Default::default()
            })),
        }
    }

    fn error(&self, err: EtcdError) -> StoreError {
        StoreError {
            store: self.describe(),
            reason: err.to_string(),
        }
    }

    /// One claim: the entries to report back (the claim itself when it won).
    async fn claim(&self, host: &Host, address: IpAddr) -> Result<Vec<(Host, IpAddr)>, StoreError> {
        let (host_key, address_key) = (self.host_key(host), self.address_key(address));
        let absent = |key: &Vec<u8>| pb::Compare {
            result: compare::CompareResult::Equal as i32,
            target: compare::CompareTarget::Create as i32,
            key: key.clone(),
            target_union: Some(compare::TargetUnion::CreateRevision(0)),
            range_end: Vec::new(),
        };
        let put = |key: &Vec<u8>, value: String| pb::RequestOp {
            request: Some(request_op::Request::RequestPut(pb::PutRequest {
                key: key.clone(),
                value: value.into_bytes(),
                ..Default::default()
            })),
        };
        let get = |key: &Vec<u8>| pb::RequestOp {
            request: Some(request_op::Request::RequestRange(pb::RangeRequest {
                key: key.clone(),
                ..Default::default()
            })),
        };
        let answer = self
            .client
            .txn(pb::TxnRequest {
                compare: vec![absent(&host_key), absent(&address_key)],
                success: vec![
                    put(&host_key, address.to_string()),
                    put(&address_key, host.to_string()),
                    self.bump_version(),
                ],
                failure: vec![get(&host_key), get(&address_key)],
            })
            .await
            .map_err(|e| self.error(e))?;
        if answer.succeeded {
            return Ok(vec![(host.clone(), address)]);
        }
        let mut found = answer.responses.into_iter().map(|r| match r.response {
            Some(response_op::Response::ResponseRange(range)) => range.kvs.into_iter().next(),
            _ => None,
        });
        let (by_host, by_address) = (found.next().flatten(), found.next().flatten());
        let mut entries = Vec::new();
        if let Some(kv) = by_host {
            match String::from_utf8(kv.value)
                .ok()
                .and_then(|v| v.parse::<IpAddr>().ok())
            {
                Some(stored) => entries.push((host.clone(), stored)),
                None => {
                    tracing::warn!(key = %String::from_utf8_lossy(&host_key), "VIP store value is not an address; ignored")
                }
            }
        }
        if let Some(kv) = by_address {
            let holder = String::from_utf8(kv.value)
                .ok()
                .and_then(|v| Host::parse(&v, &self.suffix));
            match holder {
                Some(holder) => entries.push((holder, address)),
                None => {
                    tracing::warn!(key = %String::from_utf8_lossy(&address_key), "VIP store value is not a host; ignored")
                }
            }
        }
        Ok(entries)
    }

    /// One release: both keys deleted if they still hold exactly this entry.
    async fn release(&self, host: &Host, address: IpAddr) -> Result<(), StoreError> {
        let (host_key, address_key) = (self.host_key(host), self.address_key(address));
        let holds = |key: &Vec<u8>, value: String| pb::Compare {
            result: compare::CompareResult::Equal as i32,
            target: compare::CompareTarget::Value as i32,
            key: key.clone(),
            target_union: Some(compare::TargetUnion::Value(value.into_bytes())),
            range_end: Vec::new(),
        };
        let delete = |key: &Vec<u8>| pb::RequestOp {
            request: Some(request_op::Request::RequestDeleteRange(
                pb::DeleteRangeRequest {
                    key: key.clone(),
                    ..Default::default()
                },
            )),
        };
        self.client
            .txn(pb::TxnRequest {
                compare: vec![
                    holds(&host_key, address.to_string()),
                    holds(&address_key, host.to_string()),
                ],
                success: vec![delete(&host_key), delete(&address_key), self.bump_version()],
                failure: Vec::new(),
            })
            .await
            .map(|_| ())
            .map_err(|e| self.error(e))
    }
}

impl StateStore for EtcdStore {
    async fn version(&self) -> Result<String, StoreError> {
        let answer = self
            .client
            .range(pb::RangeRequest {
                key: self.version_key(),
                keys_only: true,
                ..Default::default()
            })
            .await
            .map_err(|e| self.error(e))?;
        Ok(answer
            .kvs
            .first()
            .map_or(0, |kv| kv.mod_revision)
            .to_string())
    }

    async fn load(&self) -> Result<Loaded, StoreError> {
        let version = self.version().await?;
        let prefix = format!("{}vips/host/", self.prefix);
        let end = prefix_end(prefix.as_bytes());
        let mut loaded = Loaded {
            version,
            ..Loaded::default()
        };
        let mut from = prefix.clone().into_bytes();
        // Every page at the first page's revision: one consistent table, whatever is
        // written meanwhile.
        let mut revision = 0;
        let mut holders: std::collections::HashMap<IpAddr, Host> = Default::default();
        loop {
            let page = self
                .client
                .range(pb::RangeRequest {
                    key: from.clone(),
                    range_end: end.clone(),
                    limit: PAGE,
                    revision,
                    ..Default::default()
                })
                .await
                .map_err(|e| self.error(e))?;
            if revision == 0 {
                revision = page.header.as_ref().map_or(0, |h| h.revision);
            }
            for kv in &page.kvs {
                let key = String::from_utf8_lossy(&kv.key);
                let name = key.strip_prefix(&prefix).unwrap_or_default();
                let host = Host::parse(name, &self.suffix);
                let address = std::str::from_utf8(&kv.value)
                    .ok()
                    .and_then(|v| v.parse::<IpAddr>().ok());
                match (host, address) {
                    (Some(host), Some(address)) => {
                        if let Some(first) = holders.get(&address) {
                            loaded.skipped.push(format!(
                                "key {}: {address} is already held by {first}",
                                crate::api::shown(&key)
                            ));
                            continue;
                        }
                        holders.insert(address, host.clone());
                        loaded.table.insert(host, address);
                    }
                    (None, _) => loaded.skipped.push(format!(
                        "key {}: not a global host ending in .{}",
                        crate::api::shown(&key),
                        self.suffix
                    )),
                    (_, None) => loaded.skipped.push(format!(
                        "key {}: the value is not an IP address",
                        crate::api::shown(&key)
                    )),
                }
            }
            match (page.more, page.kvs.last()) {
                (true, Some(last)) => {
                    from = last.key.clone();
                    from.push(0);
                }
                _ => break,
            }
        }
        Ok(loaded)
    }

    async fn write(&self, writes: &VipWrites) -> Result<BTreeMap<Host, IpAddr>, StoreError> {
        // Owned pairs: the futures must not borrow from the iterator (they are Send across
        // awaits).
        let owned = |map: &BTreeMap<Host, IpAddr>| -> Vec<(Host, IpAddr)> {
            map.iter().map(|(h, a)| (h.clone(), *a)).collect()
        };
        let releases: Vec<Result<(), StoreError>> = stream::iter(owned(&writes.releases))
            .map(|(host, address)| async move { self.release(&host, address).await })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        releases.into_iter().collect::<Result<(), _>>()?;
        let claims: Vec<Result<Vec<(Host, IpAddr)>, StoreError>> =
            stream::iter(owned(&writes.claims))
                .map(|(host, address)| async move { self.claim(&host, address).await })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
        let mut answer = BTreeMap::new();
        for entries in claims {
            answer.extend(entries?);
        }
        Ok(answer)
    }

    fn describe(&self) -> String {
        format!("etcd {} prefix {}", self.client.endpoints, self.prefix)
    }
}
