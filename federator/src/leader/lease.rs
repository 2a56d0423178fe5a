//! The lease as a `coordination.k8s.io/v1` Lease in the config cluster: written with the
//! resourceVersion last read, so of two replicas claiming at once exactly one succeeds.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

use super::{LeaseError, LeaseRecord, LeaseStore};

/// A Lease object, and what this replica last read of it.
pub struct KubeLease {
    api: Api<Lease>,
    namespace: String,
    name: String,
    /// The Lease as last read or written (`None`: there was none).
    last: Option<Lease>,
}

impl KubeLease {
    /// The Lease `name` in `namespace` of the cluster `client` talks to.
    pub fn new(client: kube::Client, namespace: &str, name: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            last: None,
        }
    }

    fn error(&self, err: &kube::Error) -> LeaseError {
        LeaseError {
            lease: self.describe(),
            reason: crate::connect::describe::kube_error(err),
        }
    }
}

/// The record a Lease holds. The resourceVersion is the renewal stamp: any change to the
/// object (a renewal or a hand edit) restarts followers' count.
pub fn record_of(lease: &Lease) -> LeaseRecord {
    let spec = lease.spec.clone().unwrap_or_default();
    let seconds = spec.lease_duration_seconds.unwrap_or(0).max(0);
    LeaseRecord {
        holder: spec.holder_identity.filter(|h| !h.is_empty()),
        duration: Duration::from_secs(u64::try_from(seconds).unwrap_or(0)),
        renewed: lease.metadata.resource_version.clone().unwrap_or_default(),
        term: u64::try_from(spec.lease_transitions.unwrap_or(0).max(0)).unwrap_or(0),
    }
}

impl LeaseStore for KubeLease {
    async fn read(&mut self) -> Result<Option<LeaseRecord>, LeaseError> {
        let lease = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.error(&e))?;
        let record = lease.as_ref().map(record_of);
        self.last = lease;
        Ok(record)
    }

    async fn claim(&mut self, record: &LeaseRecord) -> Result<Option<LeaseRecord>, LeaseError> {
        let now = MicroTime(jiff::Timestamp::now());
        let previous = self
            .last
            .as_ref()
            .and_then(|l| l.spec.clone())
            .unwrap_or_default();
        let renewing = previous.holder_identity == record.holder;
        let spec = LeaseSpec {
            holder_identity: record.holder.clone(),
            // Whole seconds, rounded up: a follower never waits less than the leader assumes.
            lease_duration_seconds: Some(
                i32::try_from(
                    record.duration.as_secs() + u64::from(record.duration.subsec_nanos() > 0),
                )
                .unwrap_or(i32::MAX),
            ),
            acquire_time: if renewing {
                previous.acquire_time.clone()
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(i32::try_from(record.term).unwrap_or(i32::MAX)),
            ..LeaseSpec::default()
        };
        let params = PostParams {
            field_manager: Some(crate::sync::FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        };
        let result = match &self.last {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        namespace: Some(self.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec),
                };
                self.api.create(&params, &lease).await
            }
            Some(last) => {
                let mut lease = last.clone();
                lease.spec = Some(spec);
                // The resourceVersion read: the API server refuses the write (409) if anyone
                // changed the Lease since.
                self.api.replace(&self.name, &params, &lease).await
            }
        };
        match result {
            Ok(stored) => {
                let record = record_of(&stored);
                self.last = Some(stored);
                Ok(Some(record))
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(None),
            Err(err) => Err(self.error(&err)),
        }
    }

    async fn release(&mut self) -> Result<(), LeaseError> {
        let Some(mut lease) = self.last.clone() else {
            return Ok(());
        };
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = None;
            spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
        }
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            // Someone changed it since: it is not ours to release.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(err) => Err(self.error(&err)),
        }
    }

    fn describe(&self) -> String {
        format!("Lease {}/{}", self.namespace, self.name)
    }
}
