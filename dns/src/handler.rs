//! The request handler: a decoded query in, an answer from the current snapshot out.

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tracing::debug;

use crate::metrics::{DropReason, OpenConnection};
use crate::{DnsMetrics, Snapshot, answer};

/// Largest UDP payload advertised in EDNS answers (the DNS flag day 2020 value).
pub(crate) const MAX_UDP_PAYLOAD: u16 = 1232;
/// What a client without EDNS takes over UDP (RFC 1035 4.2.1), and the least an EDNS
/// client is answered with.
pub(crate) const PLAIN_UDP_PAYLOAD: u16 = 512;

/// Where the current snapshot is published; cheap to clone, shared with the handler.
#[derive(Clone, Debug)]
pub struct SnapshotHandle(Arc<ArcSwap<Snapshot>>);

impl SnapshotHandle {
    /// A handle serving `snapshot`.
    pub fn new(snapshot: Snapshot) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(snapshot)))
    }

    /// Replaces the snapshot; queries in flight finish on the old one.
    pub fn store(&self, snapshot: Snapshot) {
        self.0.store(Arc::new(snapshot));
    }

    /// The current snapshot.
    pub fn load(&self) -> Arc<Snapshot> {
        self.0.load_full()
    }
}

/// Answers queries from the current snapshot, as a hickory-server [`RequestHandler`]; the
/// socket loops of [`serve`](crate::serve) call it for every decoded query.
#[derive(Clone, Debug)]
pub struct DnsHandler {
    snapshot: SnapshotHandle,
    metrics: Option<DnsMetrics>,
}

impl DnsHandler {
    /// A handler reading from `snapshot`, counting into `metrics` when given.
    pub fn new(snapshot: SnapshotHandle, metrics: Option<DnsMetrics>) -> Self {
        Self { snapshot, metrics }
    }

    /// The snapshot answering now, for the lean UDP path.
    pub(crate) fn current(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.snapshot.0.load()
    }

    /// Counts an answer sent with `rcode` (`qtype` is `-` when the question is unknown).
    pub(crate) fn observe(&self, qtype: &'static str, rcode: ResponseCode, started: Instant) {
        if let Some(metrics) = &self.metrics {
            metrics.answered(qtype, rcode);
            metrics.latency.observe(started.elapsed().as_secs_f64());
        }
    }

    /// Counts a message dropped without an answer.
    pub(crate) fn dropped(&self, reason: DropReason) {
        if let Some(metrics) = &self.metrics {
            metrics.dropped(reason);
        }
    }

    /// Counts a TCP connection refused because the cap was reached.
    pub(crate) fn refused_connection(&self) {
        if let Some(metrics) = &self.metrics {
            metrics.tcp_connections_refused.inc();
        }
    }

    /// Counts a TCP connection as open while the result lives.
    pub(crate) fn open_connection(&self) -> Option<OpenConnection> {
        self.metrics.as_ref().map(DnsMetrics::open_connection)
    }
}

#[async_trait::async_trait]
impl RequestHandler for DnsHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let started = Instant::now();
        let mut edns = Edns::new();
        let response_edns = request.edns.as_ref().map(|req| {
            edns.set_max_payload(req.max_payload().clamp(PLAIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD));
            edns.set_version(0);
            &edns
        });
        let info = request.request_info();
        let qtype = info
            .as_ref()
            .map_or("-", |info| info.query.query_type().into());
        let checked = if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            Err(ResponseCode::BADVERS)
        } else if request.metadata.message_type != MessageType::Query {
            Err(ResponseCode::FormErr)
        } else if request.metadata.op_code != OpCode::Query {
            Err(ResponseCode::NotImp)
        } else {
            // Not exactly one question: FORMERR.
            info.map(|info| info.query)
                .map_err(|_| ResponseCode::FormErr)
        };
        let query = match checked {
            Ok(query) => query,
            Err(code) => {
                let response = MessageResponseBuilder::new(&request.queries, response_edns)
                    .error_msg(&request.metadata, code);
                let info = send(response_handle, response, request).await;
                self.observe(qtype, info.response_code, started);
                return info;
            }
        };
        let snapshot = self.snapshot.0.load();
        let result = answer(
            &snapshot,
            query.name(),
            query.query_type(),
            query.query_class(),
        );
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = result.authoritative;
        metadata.response_code = result.code;
        let response = MessageResponseBuilder::new(&request.queries, response_edns).build(
            metadata,
            result.answers.iter(),
            [].iter(),
            result.authority.iter(),
            result.additionals.iter(),
        );
        let info = match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(err) => {
                debug!(error = %err, "could not send a DNS response");
                failed(request)
            }
        };
        // What was sent: SERVFAIL if the answer could not be encoded.
        self.observe(qtype, info.response_code, started);
        info
    }
}

async fn send<'a, R: ResponseHandler>(
    mut handle: R,
    response: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
        impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
        impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
        impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
    >,
    request: &Request,
) -> ResponseInfo {
    handle
        .send_response(response)
        .await
        .unwrap_or_else(|_| failed(request))
}

fn failed(request: &Request) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = ResponseCode::ServFail;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}
