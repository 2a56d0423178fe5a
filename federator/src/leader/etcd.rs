//! The lease in etcd, used with the etcd store: the key `<prefix>leader` holds the leader's
//! name and is attached to an etcd lease of the lease duration, so it vanishes when the
//! leader stops keeping it alive. Taking it is a transaction that succeeds only if the key
//! does not exist; the term is the key's create revision (it grows with every new leader).

use super::{LeaseError, LeaseRecord, LeaseStore};
use crate::state::etcd::pb;
use crate::state::etcd::{EtcdClient, EtcdOptions};

/// The leader key, and the etcd lease this replica holds it with.
pub struct EtcdLease {
    client: EtcdClient,
    key: Vec<u8>,
    /// The etcd lease of this replica's claim, while it holds one.
    held: Option<i64>,
    /// The lease duration (the etcd lease's TTL).
    duration: std::time::Duration,
    /// The key as last read.
    last: Option<pb::KeyValue>,
}

impl EtcdLease {
    /// The leader key under `options.prefix`, held for `duration` after each renewal.
    pub fn new(options: &EtcdOptions, duration: std::time::Duration) -> Result<Self, LeaseError> {
        let client = EtcdClient::new(options).map_err(|e| LeaseError {
            lease: format!("{}leader", options.prefix),
            reason: e.to_string(),
        })?;
        Ok(Self {
            client,
            key: format!("{}leader", options.prefix).into_bytes(),
            held: None,
            duration,
            last: None,
        })
    }

    fn error(&self, err: impl std::fmt::Display) -> LeaseError {
        LeaseError {
            lease: self.describe(),
            reason: err.to_string(),
        }
    }

    fn record(kv: &pb::KeyValue, duration: std::time::Duration) -> LeaseRecord {
        LeaseRecord {
            holder: String::from_utf8(kv.value.clone())
                .ok()
                .filter(|h| !h.is_empty()),
            duration,
            renewed: format!("{}/{}", kv.mod_revision, kv.lease),
            term: u64::try_from(kv.create_revision).unwrap_or(0),
        }
    }
}

impl LeaseStore for EtcdLease {
    async fn read(&mut self) -> Result<Option<LeaseRecord>, LeaseError> {
        let answer = self
            .client
            .range(pb::RangeRequest {
                key: self.key.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| self.error(e))?;
        self.last = answer.kvs.into_iter().next();
        // The key lives only as long as its holder keeps it alive: a claim succeeds only once
        // etcd has removed it (the holder's lease expired, at least a TTL after its last
        // renewal, after the holder's own deadline), and a follower reads it gone at once.
        Ok(self.last.as_ref().map(|kv| Self::record(kv, self.duration)))
    }

    async fn claim(&mut self, record: &LeaseRecord) -> Result<Option<LeaseRecord>, LeaseError> {
        let ttl = i64::try_from(record.duration.as_secs().max(1)).unwrap_or(i64::MAX);
        let ours = self.last.as_ref().filter(|kv| Some(kv.lease) == self.held);
        if let (Some(kv), Some(id)) = (ours.cloned(), self.held) {
            // Renewal: keep the etcd lease alive.
            let left = self
                .client
                .keep_alive(id)
                .await
                .map_err(|e| self.error(e))?;
            if left <= 0 {
                self.held = None;
                return Ok(None);
            }
            return Ok(Some(Self::record(&kv, record.duration)));
        }
        if self.last.is_some() {
            // The key exists: it is created again only after etcd removed it (its holder's
            // lease expired); a transaction now would only fail.
            return Ok(None);
        }
        let id = self.client.grant(ttl).await.map_err(|e| self.error(e))?;
        let holder = record.holder.clone().unwrap_or_default();
        let key = String::from_utf8_lossy(&self.key).into_owned();
        let created = self
            .client
            .create_leased(&key, holder.clone().into_bytes(), id)
            .await;
        let revision = match created {
            Ok(Some(revision)) => revision,
            Ok(None) => {
                let _ = self.client.revoke(id).await;
                return Ok(None);
            }
            Err(err) => {
                let _ = self.client.revoke(id).await;
                return Err(self.error(err));
            }
        };
        let kv = pb::KeyValue {
            key: self.key.clone(),
            create_revision: revision,
            mod_revision: revision,
            version: 1,
            value: holder.into_bytes(),
            lease: id,
        };
        self.held = Some(id);
        self.last = Some(kv.clone());
        Ok(Some(Self::record(&kv, record.duration)))
    }

    async fn release(&mut self) -> Result<(), LeaseError> {
        match self.held.take() {
            Some(id) => self.client.revoke(id).await.map_err(|e| self.error(e)),
            None => Ok(()),
        }
    }

    fn describe(&self) -> String {
        format!(
            "etcd {} key {}",
            self.client.endpoints,
            String::from_utf8_lossy(&self.key)
        )
    }
}
