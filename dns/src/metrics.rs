//! Query counts by type and response code, and answer latency.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of a query.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryLabels {
    /// Record type asked (`A`, `SRV`, ...).
    pub qtype: &'static str,
    /// Response code given, as dig spells it (`NOERROR`, `NXDOMAIN`, `REFUSED`, ...).
    pub rcode: &'static str,
}

/// The usual mnemonic of a response code, without allocating.
pub(crate) fn rcode_label(code: hickory_proto::op::ResponseCode) -> &'static str {
    use hickory_proto::op::ResponseCode as R;
    match code {
        R::NoError => "NOERROR",
        R::FormErr => "FORMERR",
        R::ServFail => "SERVFAIL",
        R::NXDomain => "NXDOMAIN",
        R::NotImp => "NOTIMP",
        R::Refused => "REFUSED",
        R::BADVERS => "BADVERS",
        _ => "OTHER",
    }
}

/// DNS metrics, registered into the process's Prometheus registry.
#[derive(Debug, Clone)]
pub struct DnsMetrics {
    /// Queries answered.
    pub queries: Family<QueryLabels, Counter>,
    /// Seconds from receiving a query to handing its answer to the socket.
    pub latency: Histogram,
}

impl Default for DnsMetrics {
    fn default() -> Self {
        Self {
            queries: Family::default(),
            latency: Histogram::new([
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05,
            ]),
        }
    }
}

impl DnsMetrics {
    /// Adds the metrics to `registry` (as `dns_queries` and `dns_answer_seconds`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "dns_queries",
            "DNS queries by type and response code",
            self.queries.clone(),
        );
        registry.register(
            "dns_answer_seconds",
            "Seconds to answer a DNS query",
            self.latency.clone(),
        );
    }
}
