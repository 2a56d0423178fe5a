//! From the bytes of a message to the bytes of its answer, for UDP and TCP alike: what is
//! dropped, what gets FORMERR, and the [`ResponseHandler`] that encodes the handler's answer
//! into a buffer.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use hickory_proto::op::{Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use hickory_server::net::NetError;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;
use tracing::{debug, error};

use crate::DnsHandler;
use crate::handler::PLAIN_UDP_PAYLOAD;
use crate::metrics::DropReason;

/// The bytes of a DNS header; anything shorter is not a DNS message.
const HEADER_LEN: usize = 12;

/// Answers the messages of one socket loop or one connection, reusing its buffers.
#[derive(Debug)]
pub(crate) struct Responder {
    handler: DnsHandler,
    protocol: Protocol,
    encoded: Encoded,
}

impl Responder {
    pub(crate) fn new(handler: DnsHandler, protocol: Protocol) -> Self {
        let max_size = match protocol {
            Protocol::Udp => None,
            _ => Some(u16::MAX),
        };
        Self {
            handler,
            protocol,
            encoded: Encoded {
                max_size,
                buffer: Arc::default(),
            },
        }
    }

    /// Puts the answer to `message` from `src` in `out`; false (and `out` untouched) when the
    /// message gets none.
    pub(crate) async fn respond(&self, message: &[u8], src: SocketAddr, out: &mut Vec<u8>) -> bool {
        let started = Instant::now();
        if message.len() < HEADER_LEN {
            debug!(client = %src, len = message.len(), "dropping a message shorter than a header");
            self.handler.dropped(DropReason::Short);
            return false;
        }
        if message[2] & 0x80 != 0 {
            // A response: answering it would reflect traffic at whoever is spoofed as `src`.
            self.handler.dropped(DropReason::Response);
            return false;
        }
        let request = match Request::from_bytes(message.to_vec(), src, self.protocol) {
            Ok(request) => request,
            Err(err) => {
                debug!(client = %src, error = %err, "undecodable DNS message, FORMERR");
                let encoded = formerr(message, out);
                if encoded {
                    self.handler.observe("-", ResponseCode::FormErr, started);
                }
                return encoded;
            }
        };
        self.encoded.lock().clear();
        self.handler
            .handle_request::<_, TokioTime>(&request, self.encoded.clone())
            .await;
        let mut encoded = self.encoded.lock();
        if encoded.is_empty() {
            return false;
        }
        // The old `out` becomes the next answer's buffer: no allocation per answer.
        std::mem::swap(out, &mut *encoded);
        true
    }
}

/// Puts in `out` a FORMERR header answering `message`, whose header is readable but the
/// rest is not; false if it could not be encoded.
fn formerr(message: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    let mut metadata = match Header::read(&mut BinDecoder::new(message)) {
        Ok(header) => Metadata::response_from_request(&header.metadata),
        Err(_) => Metadata::new(0, MessageType::Response, OpCode::Query),
    };
    metadata.response_code = ResponseCode::FormErr;
    let header = Header {
        metadata,
        counts: HeaderCounts::default(),
    };
    match header.emit(&mut BinEncoder::new(out)) {
        Ok(()) => true,
        Err(err) => {
            error!(error = %err, "could not encode a DNS header");
            false
        }
    }
}

/// The [`ResponseHandler`] handed to the request handler: encodes the answer into a shared
/// buffer, at most the EDNS payload size (512 bytes without EDNS) over UDP, where a longer
/// answer is truncated and marked so, or 65,535 bytes over TCP.
#[derive(Clone, Debug)]
struct Encoded {
    /// `None` over UDP: from the answer's EDNS.
    max_size: Option<u16>,
    buffer: Arc<Mutex<Vec<u8>>>,
}

impl Encoded {
    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // The buffer is cleared before each use: a panic while encoding leaves nothing stale.
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl ResponseHandler for Encoded {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let max_size = self.max_size.unwrap_or_else(|| {
            response
                .edns()
                .map_or(PLAIN_UDP_PAYLOAD, |edns| edns.max_payload())
        });
        let metadata = *response.metadata();
        let mut buffer = self.lock();
        buffer.clear();
        let mut encoder = BinEncoder::new(&mut buffer);
        encoder.set_max_size(max_size);
        let error = match response.destructive_emit(&mut encoder) {
            Ok(info) => return Ok(info),
            Err(error) => error,
        };
        // As hickory's own encoder does: a bare SERVFAIL rather than nothing.
        error!(%error, id = metadata.id, "could not encode a DNS answer, SERVFAIL");
        buffer.clear();
        let mut servfail = Metadata::response_from_request(&metadata);
        servfail.response_code = ResponseCode::ServFail;
        let header = Header {
            metadata: servfail,
            counts: HeaderCounts::default(),
        };
        header.emit(&mut BinEncoder::new(&mut buffer))?;
        Ok(ResponseInfo::from(header))
    }
}
