//! Fixtures shared by the real-socket tests: a server on 127.0.0.1, queries, and a client
//! over UDP and TCP.

// Each test file uses its own part of these.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use federator_dns::{
    DnsHandler, DnsMetrics, HostRecord, ServeOptions, Snapshot, SnapshotConfig, SnapshotHandle,
    Zone, bind, serve,
};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long a test waits for an answer that must come.
pub const PATIENCE: Duration = Duration::from_secs(5);

pub fn config(serial: u32) -> SnapshotConfig {
    SnapshotConfig {
        zones: vec![Zone::new("global").unwrap()],
        ttl: 5,
        serial,
    }
}

pub fn host(name: &str, ip: &str, ports: usize) -> HostRecord {
    HostRecord {
        name: name.into(),
        address: ip.parse().unwrap(),
        ports: (0..ports)
            .map(|i| (format!("port-{i}"), 8000 + i as u16))
            .collect(),
    }
}

/// A snapshot answering `prod.greeting.global` with 240.0.0.7.
pub fn greeting() -> Snapshot {
    Snapshot::build(&config(1), [host("prod.greeting.global", "240.0.0.7", 0)]).0
}

pub async fn start(snapshot: Snapshot) -> (SnapshotHandle, SocketAddr) {
    start_with(snapshot, ServeOptions::default(), None).await
}

/// Serves `snapshot` on a free port of 127.0.0.1 (UDP and TCP) until the test ends.
pub async fn start_with(
    snapshot: Snapshot,
    options: ServeOptions,
    metrics: Option<DnsMetrics>,
) -> (SnapshotHandle, SocketAddr) {
    let sockets = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = sockets.udp.local_addr().unwrap();
    let handle = SnapshotHandle::new(snapshot);
    tokio::spawn(serve(
        DnsHandler::new(handle.clone(), metrics),
        sockets,
        options,
    ));
    (handle, addr)
}

pub fn query(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut message = Message::new(4242, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(Name::from_str(name).unwrap(), qtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        message.set_edns(e);
    }
    message.to_vec().unwrap()
}

pub async fn udp(addr: SocketAddr, bytes: &[u8]) -> Message {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(bytes, addr).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let (n, _) = tokio::time::timeout(PATIENCE, socket.recv_from(&mut buf))
        .await
        .expect("no UDP answer")
        .unwrap();
    Message::from_vec(&buf[..n]).unwrap()
}

/// Sends `bytes` and returns what comes back within `wait`, if anything.
pub async fn udp_maybe(addr: SocketAddr, bytes: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(bytes, addr).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let (n, _) = tokio::time::timeout(wait, socket.recv_from(&mut buf))
        .await
        .ok()?
        .unwrap();
    Some(buf[..n].to_vec())
}

/// Sends one query on `stream` and reads its answer.
pub async fn ask_tcp(stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<Message> {
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    stream.write_all(&framed).await?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).await?;
    Ok(Message::from_vec(&buf).unwrap())
}

/// One query on a new connection.
pub async fn tcp(addr: SocketAddr, bytes: &[u8]) -> Message {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    tokio::time::timeout(PATIENCE, ask_tcp(&mut stream, bytes))
        .await
        .expect("no TCP answer")
        .unwrap()
}
