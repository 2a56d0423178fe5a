//! Whatever bytes arrive, the request path (hickory's parser, our handler, hickory's
//! encoder) answers or drops them without panicking.

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use federator_dns::{DnsHandler, HostRecord, Snapshot, SnapshotConfig, SnapshotHandle, Zone};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, Record, RecordType};
use hickory_proto::serialize::binary::BinEncoder;
use hickory_server::net::NetError;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;
use proptest::prelude::*;

/// Captures the encoded response instead of sending it.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

#[async_trait::async_trait]
impl ResponseHandler for Capture {
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
        let mut bytes = Vec::new();
        let mut encoder = BinEncoder::new(&mut bytes);
        encoder.set_max_size(512);
        let info = response.destructive_emit(&mut encoder)?;
        *self.0.lock().unwrap() = bytes;
        Ok(info)
    }
}

fn handler() -> DnsHandler {
    let config = SnapshotConfig {
        zones: vec![Zone::new("global").unwrap()],
        ttl: 5,
        serial: 1,
    };
    let host = HostRecord {
        name: "prod.greeting.global".into(),
        address: "240.0.0.7".parse().unwrap(),
        ports: vec![("http".into(), 8080)],
    };
    DnsHandler::new(
        SnapshotHandle::new(Snapshot::build(&config, [host]).0),
        None,
    )
}

fn valid_query() -> Vec<u8> {
    let mut m = Message::new(7, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(
        Name::from_str("prod.greeting.global.").unwrap(),
        RecordType::A,
    ));
    m.to_vec().unwrap()
}

/// Runs raw bytes through the request path; returns the encoded answer, if any.
fn respond(handler: &DnsHandler, bytes: Vec<u8>) -> Option<Vec<u8>> {
    let request =
        Request::from_bytes(bytes, "127.0.0.1:5353".parse().unwrap(), Protocol::Udp).ok()?;
    let capture = Capture::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(handler.handle_request::<_, TokioTime>(&request, capture.clone()));
    let out = capture.0.lock().unwrap().clone();
    Some(out)
}

/// Runs `bytes` through the request path: whatever comes back is a DNS message a client can
/// parse, answering the query it came for (same id).
fn check(handler: &DnsHandler, bytes: Vec<u8>) -> Result<(), TestCaseError> {
    let id = bytes.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    if let Some(answer) = respond(handler, bytes) {
        let message = Message::from_vec(&answer);
        prop_assert!(message.is_ok(), "unparsable answer {:?}", answer);
        prop_assert_eq!(message.map(|m| m.metadata.id).ok(), id);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let handler = handler();
        check(&handler, bytes)?;
    }

    #[test]
    fn mutated_queries_never_panic(flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6), cut in 0usize..8) {
        let handler = handler();
        let mut bytes = valid_query();
        for (at, value) in flips {
            let at = at % bytes.len();
            bytes[at] = value;
        }
        bytes.truncate(bytes.len().saturating_sub(cut));
        check(&handler, bytes)?;
    }
}

#[test]
fn the_valid_query_is_answered() {
    let answer = respond(&handler(), valid_query()).unwrap();
    let message = Message::from_vec(&answer).unwrap();
    assert_eq!(message.answers.len(), 1);
}
