//! Round trips and bytes exchanged with etcd, by call: what sharing clusters (and the VIP
//! store) costs the etcd cluster, as metrics.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Labels naming an etcd call (`Range`, `Txn`, `Watch`, `LeaseKeepAlive`, ...).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// The call.
    pub call: &'static str,
}

/// The counters; clones count into the same ones.
#[derive(Clone, Debug, Default)]
pub struct EtcdTraffic {
    requests: Family<CallLabels, Counter>,
    sent: Family<CallLabels, Counter>,
    received: Family<CallLabels, Counter>,
}

impl EtcdTraffic {
    /// Registers the counters under `etcd_*`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "etcd_requests",
            "Requests to etcd (a watch counts once; its messages count as bytes received)",
            self.requests.clone(),
        );
        registry.register(
            "etcd_sent_bytes",
            "Bytes of requests sent to etcd (protobuf encoded)",
            self.sent.clone(),
        );
        registry.register(
            "etcd_received_bytes",
            "Bytes of answers and watch messages received from etcd (protobuf encoded)",
            self.received.clone(),
        );
    }

    /// One request of `sent` bytes.
    pub(super) fn request(&self, call: &'static str, sent: usize) {
        let labels = CallLabels { call };
        self.requests.get_or_create(&labels).inc();
        self.sent
            .get_or_create(&labels)
            .inc_by(u64::try_from(sent).unwrap_or(u64::MAX));
    }

    /// An answer (or watch message) of `received` bytes.
    pub(super) fn answer(&self, call: &'static str, received: usize) {
        self.received
            .get_or_create(&CallLabels { call })
            .inc_by(u64::try_from(received).unwrap_or(u64::MAX));
    }

    /// Requests made of `call` so far.
    pub fn requests(&self, call: &'static str) -> u64 {
        self.requests.get_or_create(&CallLabels { call }).get()
    }

    /// Bytes sent in requests of `call` so far.
    pub fn sent(&self, call: &'static str) -> u64 {
        self.sent.get_or_create(&CallLabels { call }).get()
    }

    /// Bytes received in answers of `call` so far.
    pub fn received(&self, call: &'static str) -> u64 {
        self.received.get_or_create(&CallLabels { call }).get()
    }
}
