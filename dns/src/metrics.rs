//! What the DNS server did: answers by type and response code, answer latency, messages
//! dropped unanswered, and TCP connections. No label holds a client address (unbounded
//! cardinality, and personal data).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of an answered query.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryLabels {
    /// Record type asked (`A`, `SRV`, ...), `-` when the question could not be read.
    pub qtype: &'static str,
    /// Response code given, as dig spells it (`NOERROR`, `NXDOMAIN`, `REFUSED`, ...).
    pub rcode: &'static str,
}

/// Labels of a message dropped without an answer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    /// Why: `short` (under the 12 bytes of a header), `response` (a response, not a query:
    /// answering it would make us a reflector), `source` (from an address that cannot be
    /// answered, such as port 0).
    pub reason: &'static str,
}

/// Why a message got no answer; the label values of [`DropLabels`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DropReason {
    /// Shorter than a DNS header.
    Short,
    /// QR=1: a response, never answered.
    Response,
    /// A source address no answer can go to.
    Source,
}

impl DropReason {
    fn label(self) -> &'static str {
        match self {
            Self::Short => "short",
            Self::Response => "response",
            Self::Source => "source",
        }
    }
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
    /// Answers sent, every response code included (FORMERR, BADVERS, REFUSED, ...).
    pub queries: Family<QueryLabels, Counter>,
    /// Seconds from receiving a query to handing its answer to the socket.
    pub latency: Histogram,
    /// Messages dropped without an answer, by reason.
    pub dropped: Family<DropLabels, Counter>,
    /// TCP connections open now.
    pub tcp_connections: Gauge,
    /// TCP connections closed at once because the cap was reached.
    pub tcp_connections_refused: Counter,
}

impl Default for DnsMetrics {
    fn default() -> Self {
        Self {
            queries: Family::default(),
            latency: Histogram::new([
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05,
            ]),
            dropped: Family::default(),
            tcp_connections: Gauge::default(),
            tcp_connections_refused: Counter::default(),
        }
    }
}

impl DnsMetrics {
    /// Adds the metrics to `registry`: `dns_queries`, `dns_answer_seconds`, `dns_dropped`,
    /// `dns_tcp_connections` and `dns_tcp_connections_refused` (counters get the `_total`
    /// suffix in the exposition).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "dns_queries",
            "DNS answers by query type and response code",
            self.queries.clone(),
        );
        registry.register(
            "dns_answer_seconds",
            "Seconds to answer a DNS query",
            self.latency.clone(),
        );
        registry.register(
            "dns_dropped",
            "DNS messages dropped without an answer, by reason",
            self.dropped.clone(),
        );
        registry.register(
            "dns_tcp_connections",
            "DNS over TCP connections open",
            self.tcp_connections.clone(),
        );
        registry.register(
            "dns_tcp_connections_refused",
            "DNS over TCP connections closed at once because the connection cap was reached",
            self.tcp_connections_refused.clone(),
        );
    }

    pub(crate) fn answered(&self, qtype: &'static str, rcode: hickory_proto::op::ResponseCode) {
        let labels = QueryLabels {
            qtype,
            rcode: rcode_label(rcode),
        };
        self.queries.get_or_create(&labels).inc();
    }

    pub(crate) fn dropped(&self, reason: DropReason) {
        let labels = DropLabels {
            reason: reason.label(),
        };
        self.dropped.get_or_create(&labels).inc();
    }

    /// Counts a TCP connection as open until the guard is dropped (also when its task is
    /// aborted).
    pub(crate) fn open_connection(&self) -> OpenConnection {
        self.tcp_connections.inc();
        OpenConnection(self.tcp_connections.clone())
    }
}

/// An open TCP connection in `dns_tcp_connections`.
#[derive(Debug)]
pub(crate) struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}
