//! hickory-server glue: the request handler and the UDP/TCP server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};
use tracing::debug;

use crate::{DnsMetrics, Snapshot, answer};

/// Largest UDP payload advertised in EDNS answers (the DNS flag day 2020 value).
const MAX_UDP_PAYLOAD: u16 = 1232;
/// How long an idle TCP connection is kept.
const TCP_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Answers queries from the current snapshot.
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

    fn observe(&self, qtype: &'static str, rcode: ResponseCode, started: Instant) {
        if let Some(metrics) = &self.metrics {
            let labels = crate::metrics::QueryLabels {
                qtype,
                rcode: crate::metrics::rcode_label(rcode),
            };
            metrics.queries.get_or_create(&labels).inc();
            metrics.latency.observe(started.elapsed().as_secs_f64());
        }
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
            edns.set_max_payload(req.max_payload().clamp(512, MAX_UDP_PAYLOAD));
            edns.set_version(0);
            &edns
        });
        let error = |code: ResponseCode| {
            MessageResponseBuilder::new(&request.queries, response_edns)
                .error_msg(&request.metadata, code)
        };
        if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            return send(response_handle, error(ResponseCode::BADVERS), request).await;
        }
        if request.metadata.message_type != MessageType::Query {
            self.observe("-", ResponseCode::FormErr, started);
            return send(response_handle, error(ResponseCode::FormErr), request).await;
        }
        if request.metadata.op_code != OpCode::Query {
            self.observe("-", ResponseCode::NotImp, started);
            return send(response_handle, error(ResponseCode::NotImp), request).await;
        }
        let info = match request.request_info() {
            Ok(info) => info,
            Err(_) => {
                // Not exactly one question.
                self.observe("-", ResponseCode::FormErr, started);
                return send(response_handle, error(ResponseCode::FormErr), request).await;
            }
        };
        let snapshot = self.snapshot.0.load();
        let query = info.query;
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
        self.observe(query.query_type().into(), result.code, started);
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

/// A UDP socket and a TCP listener on the same port: what [`serve`] answers on.
#[derive(Debug)]
pub struct Sockets {
    /// UDP.
    pub udp: UdpSocket,
    /// TCP.
    pub tcp: TcpListener,
}

/// Binds UDP and TCP on `addr`. With port 0 both land on one free port; that port can be
/// taken for TCP between the two binds, so it retries.
pub async fn bind(addr: std::net::SocketAddr) -> std::io::Result<Sockets> {
    let mut last = None;
    for _ in 0..10 {
        let udp = UdpSocket::bind(addr).await?;
        let port = udp.local_addr()?.port();
        match TcpListener::bind((addr.ip(), port)).await {
            Ok(tcp) => return Ok(Sockets { udp, tcp }),
            Err(err) if addr.port() == 0 => last = Some(err),
            Err(err) => return Err(err),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port for DNS")))
}

/// Serves `handler` on the given sockets until the future is dropped.
pub async fn serve(handler: DnsHandler, sockets: Sockets) -> std::io::Result<()> {
    let mut server = Server::new(handler);
    server.register_socket(sockets.udp);
    server.register_listener(sockets.tcp, TCP_TIMEOUT, usize::from(u16::MAX));
    server
        .block_until_done()
        .await
        .map_err(std::io::Error::other)
}
