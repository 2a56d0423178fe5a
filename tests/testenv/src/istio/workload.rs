//! Who an Envoy stands in for: a pod's name, namespace, identity, address, labels and place.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// A workload (pod) an Envoy stands in for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// Pod name (also the `app` label unless `labels` says otherwise).
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Service account (its SPIFFE identity is `spiffe://cluster.local/ns/<ns>/sa/<sa>`).
    pub service_account: String,
    /// Its own loopback address (`127.0.x.y`): Envoy's listeners bind there.
    pub ip: Ipv4Addr,
    /// Pod labels (Envoy's `LABELS` metadata, what workload selectors match).
    pub labels: BTreeMap<String, String>,
    /// Region of its node.
    pub region: String,
    /// Zone of its node.
    pub zone: String,
}

impl Workload {
    /// Workload `name` in `namespace` at `ip`, service account `name`, label `app: <name>`,
    /// region `us-east-1`, zone `us-east-1a` (change the fields as needed).
    pub fn new(namespace: &str, name: &str, ip: Ipv4Addr) -> Self {
        Self {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            service_account: name.to_owned(),
            ip,
            labels: BTreeMap::from([("app".to_owned(), name.to_owned())]),
            region: "us-east-1".into(),
            zone: "us-east-1a".into(),
        }
    }

    /// The same workload in `region`/`zone`.
    pub fn in_locality(mut self, region: &str, zone: &str) -> Self {
        self.region = region.to_owned();
        self.zone = zone.to_owned();
        self
    }

    /// The same workload with service account `sa`.
    pub fn with_service_account(mut self, sa: &str) -> Self {
        self.service_account = sa.to_owned();
        self
    }

    /// The same workload with label `key: value` added.
    pub fn with_label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_owned(), value.to_owned());
        self
    }

    /// `<region>/<zone>`, as ServiceEntry endpoints write a locality.
    pub fn locality(&self) -> String {
        format!("{}/{}", self.region, self.zone)
    }
}
