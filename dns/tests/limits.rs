//! The server's defences on real sockets: the TCP connection cap, the idle timeout,
//! SERVFAIL before the registry is read, and every answer or dropped message counted.

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{PATIENCE, ask_tcp, config, greeting, query, start_with, tcp, udp, udp_maybe};
use federator_dns::{DnsMetrics, ServeOptions, Snapshot};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const GREETING: &str = "prod.greeting.global.";

fn options(max_tcp_connections: usize, tcp_idle_timeout: Duration) -> ServeOptions {
    ServeOptions {
        max_tcp_connections,
        tcp_idle_timeout,
    }
}

/// The metrics as Prometheus would scrape them.
fn scrape(metrics: &DnsMetrics) -> String {
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    text
}

/// Waits for the server to close `stream`: end of file or a reset, never data; panics if it
/// stays open `PATIENCE` long. Returns how long it took.
async fn closed_by_server(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 64];
    match tokio::time::timeout(PATIENCE, stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => started.elapsed(),
        Ok(Ok(n)) => panic!("the server sent {n} bytes instead of closing"),
        Err(_) => panic!("the server kept the connection open"),
    }
}

async fn connected(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let answer = ask_tcp(&mut stream, &query(GREETING, RecordType::A, None))
        .await
        .unwrap();
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    stream
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_while_udp_answers() {
    let metrics = DnsMetrics::default();
    let cap = 4;
    let (_, addr) = start_with(
        greeting(),
        options(cap, Duration::from_secs(60)),
        Some(metrics.clone()),
    )
    .await;
    let mut open = Vec::new();
    for _ in 0..cap {
        // Each answers once, then stays idle and holds its slot.
        open.push(connected(addr).await);
    }
    let mut over = TcpStream::connect(addr).await.unwrap();
    closed_by_server(&mut over).await;
    let text = scrape(&metrics);
    assert!(text.contains("dns_tcp_connections 4\n"), "{text}");
    assert!(
        text.contains("dns_tcp_connections_refused_total 1\n"),
        "{text}"
    );

    let answer = udp(addr, &query(GREETING, RecordType::A, None)).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);

    // A slot freed is a slot taken: the server sees the close a moment later.
    drop(open.pop());
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        match ask_tcp(&mut stream, &query(GREETING, RecordType::A, None)).await {
            Ok(answer) => {
                assert_eq!(
                    &answer.answers[0].data,
                    &RData::A("240.0.0.7".parse().unwrap())
                );
                break;
            }
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(err) => panic!("no connection answered after one was closed: {err}"),
        }
    }
    // The first of the four still answers: refusing others did not disturb it.
    let answer = ask_tcp(&mut open[0], &query(GREETING, RecordType::A, None)).await;
    assert_eq!(
        answer.unwrap().metadata.response_code,
        ResponseCode::NoError
    );
}

#[tokio::test]
async fn idle_connections_are_closed_and_busy_ones_kept() {
    let idle = Duration::from_millis(300);
    let (_, addr) = start_with(greeting(), options(16, idle), None).await;

    let mut silent = TcpStream::connect(addr).await.unwrap();
    let took = closed_by_server(&mut silent).await;
    assert!(took >= idle, "closed after {took:?}, before the timeout");

    // Half a length prefix, then nothing: a slow read is bounded too.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(&[0]).await.unwrap();
    closed_by_server(&mut slow).await;

    // Idle means without a query: a connection asking every 50 ms outlives the timeout.
    let mut busy = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    while started.elapsed() < idle * 2 {
        let answer = ask_tcp(&mut busy, &query(GREETING, RecordType::A, None)).await;
        assert_eq!(
            answer.unwrap().metadata.response_code,
            ResponseCode::NoError
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn servfail_until_the_registry_is_read() {
    let metrics = DnsMetrics::default();
    let (handle, addr) = start_with(
        Snapshot::starting(&config(0)),
        ServeOptions::default(),
        Some(metrics.clone()),
    )
    .await;
    let a = query(GREETING, RecordType::A, None);
    for early in [udp(addr, &a).await, tcp(addr, &a).await] {
        assert_eq!(early.metadata.response_code, ResponseCode::ServFail);
        assert!(!early.metadata.authoritative);
        assert!(early.answers.is_empty() && early.authorities.is_empty());
    }
    let outside = udp(addr, &query("example.com.", RecordType::A, None)).await;
    assert_eq!(outside.metadata.response_code, ResponseCode::Refused);

    handle.store(greeting());
    let ready = udp(addr, &a).await;
    assert_eq!(ready.metadata.response_code, ResponseCode::NoError);
    assert!(ready.metadata.authoritative);
    assert_eq!(
        &ready.answers[0].data,
        &RData::A("240.0.0.7".parse().unwrap())
    );
    let text = scrape(&metrics);
    let servfail = r#"dns_queries_total{qtype="A",rcode="SERVFAIL"} 2"#;
    assert!(text.contains(servfail), "no {servfail} in\n{text}");
}

#[tokio::test]
async fn every_answer_and_every_drop_is_counted() {
    let metrics = DnsMetrics::default();
    let (_, addr) = start_with(greeting(), ServeOptions::default(), Some(metrics.clone())).await;
    let none = Duration::from_millis(300);

    // A header asking one question, then bytes that are no question: FORMERR, same id.
    let mut garbage = query(GREETING, RecordType::A, None)[..12].to_vec();
    garbage.extend_from_slice(&[0xff, 0xff, 0xff]);
    let formerr = Message::from_vec(&udp_maybe(addr, &garbage, PATIENCE).await.unwrap()).unwrap();
    assert_eq!(formerr.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(formerr.metadata.id, 4242);

    let mut v1 = Message::new(7, MessageType::Query, OpCode::Query);
    v1.add_query(Query::query(
        Name::from_ascii(GREETING).unwrap(),
        RecordType::A,
    ));
    let mut edns = Edns::new();
    edns.set_version(1);
    v1.set_edns(edns);
    let badvers = udp(addr, &v1.to_vec().unwrap()).await;
    // Code 16 is BADVERS in an answer with EDNS; hickory decodes it by its other name.
    assert_eq!(u16::from(badvers.metadata.response_code), 16);
    assert_eq!(
        badvers.edns.map(|e| e.version()),
        Some(0),
        "answered with our version"
    );

    let mut status = Message::new(8, MessageType::Query, OpCode::Status);
    status.add_query(Query::query(
        Name::from_ascii(GREETING).unwrap(),
        RecordType::A,
    ));
    let notimp = udp(addr, &status.to_vec().unwrap()).await;
    assert_eq!(notimp.metadata.response_code, ResponseCode::NotImp);

    let refused = udp(addr, &query("example.com.", RecordType::AAAA, None)).await;
    assert_eq!(refused.metadata.response_code, ResponseCode::Refused);
    tcp(addr, &query(GREETING, RecordType::A, None)).await;

    // Under a header: dropped. A response (QR=1): dropped, never reflected.
    assert_eq!(udp_maybe(addr, &[0x12, 0x34, 0x01], none).await, None);
    let mut response = query(GREETING, RecordType::A, None);
    response[2] |= 0x80;
    assert_eq!(udp_maybe(addr, &response, none).await, None);

    let text = scrape(&metrics);
    for line in [
        r#"dns_queries_total{qtype="-",rcode="FORMERR"} 1"#,
        r#"dns_queries_total{qtype="A",rcode="BADVERS"} 1"#,
        r#"dns_queries_total{qtype="A",rcode="NOTIMP"} 1"#,
        r#"dns_queries_total{qtype="AAAA",rcode="REFUSED"} 1"#,
        r#"dns_queries_total{qtype="A",rcode="NOERROR"} 1"#,
        r#"dns_dropped_total{reason="short"} 1"#,
        r#"dns_dropped_total{reason="response"} 1"#,
        "dns_answer_seconds_count 5",
    ] {
        assert!(text.contains(&format!("{line}\n")), "no {line} in\n{text}");
    }
}

#[tokio::test]
async fn garbage_over_tcp_does_not_stop_the_connection() {
    let (_, addr) = start_with(greeting(), ServeOptions::default(), None).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // Framed messages the server must skip (short) or answer FORMERR, then a real query.
    for bytes in [
        vec![1u8, 2, 3],
        [0u8; 12].iter().chain(&[0xff; 9]).copied().collect(),
    ] {
        let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        stream.write_all(&framed).await.unwrap();
    }
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.unwrap();
    let mut formerr = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut formerr).await.unwrap();
    let formerr = Message::from_vec(&formerr).unwrap();
    assert_eq!(formerr.metadata.response_code, ResponseCode::FormErr);
    let ok = ask_tcp(&mut stream, &query(GREETING, RecordType::A, None)).await;
    assert_eq!(
        &ok.unwrap().answers[0].data,
        &RData::A("240.0.0.7".parse().unwrap())
    );
}

#[tokio::test]
async fn answers_of_the_lean_udp_path_are_counted_as_the_others() {
    let metrics = DnsMetrics::default();
    let (_, addr) = start_with(greeting(), ServeOptions::default(), Some(metrics.clone())).await;
    // A plain A query with and without EDNS: the lean path's; a missing name: hickory's.
    for bytes in [
        query(GREETING, RecordType::A, None),
        query(GREETING, RecordType::A, Some(1232)),
        query("prod.missing.global.", RecordType::A, None),
    ] {
        udp(addr, &bytes).await;
    }
    let text = scrape(&metrics);
    for line in [
        r#"dns_queries_total{qtype="A",rcode="NOERROR"} 2"#,
        r#"dns_queries_total{qtype="A",rcode="NXDOMAIN"} 1"#,
        "dns_answer_seconds_count 3",
    ] {
        assert!(text.contains(&format!("{line}\n")), "no {line} in\n{text}");
    }
}
