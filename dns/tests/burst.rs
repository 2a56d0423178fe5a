//! A burst of datagrams sent before any answer is read: the server takes them many at a
//! time (recvmmsg on Linux) and sends many answers at once, and each must still get exactly
//! its own answer, back to its own client.

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::str::FromStr;

use common::{PATIENCE, config, host, start};
use federator_dns::Snapshot;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::net::UdpSocket;

const QUERIES: u16 = 200;
const HOSTS: u16 = 150;

fn address(i: u16) -> Ipv4Addr {
    Ipv4Addr::new(240, 0, (i >> 8) as u8, i as u8)
}

/// Query `i` asks for host `i`: the first [`HOSTS`] exist (answered by the lean path), the
/// rest do not (NXDOMAIN, through hickory).
fn name(i: u16) -> String {
    format!("svc-{i}.global.")
}

/// A client socket whose receive buffer holds every answer of the burst.
async fn client() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket2::SockRef::from(&socket)
        .set_recv_buffer_size(1 << 20)
        .unwrap();
    socket
}

#[tokio::test]
async fn a_burst_of_queries_gets_each_its_own_answer() {
    let hosts = (0..HOSTS).map(|i| host(&name(i), &address(i).to_string(), 0));
    let (snapshot, errors) = Snapshot::build(&config(1), hosts);
    assert!(errors.is_empty());
    let (_, addr) = start(snapshot).await;
    // Two clients, interleaved: an answer sent to the wrong datagram's source shows.
    let clients = [client().await, client().await];
    for i in 0..QUERIES {
        let mut query = Message::new(i, MessageType::Query, OpCode::Query);
        query.add_query(Query::query(
            Name::from_str(&name(i)).unwrap(),
            RecordType::A,
        ));
        let client = &clients[usize::from(i % 2)];
        client
            .send_to(&query.to_vec().unwrap(), addr)
            .await
            .unwrap();
    }

    let mut answered: HashMap<u16, usize> = HashMap::new();
    let mut buf = vec![0u8; 65535];
    for (c, client) in clients.iter().enumerate() {
        for _ in 0..QUERIES / 2 {
            let (n, from) = tokio::time::timeout(PATIENCE, client.recv_from(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("client {c}: answers missing, got {answered:?}"))
                .unwrap();
            assert_eq!(from, addr);
            let answer = Message::from_vec(&buf[..n]).unwrap();
            let id = answer.metadata.id;
            assert_eq!(
                usize::from(id % 2),
                c,
                "answer {id} went to the other client"
            );
            *answered.entry(id).or_default() += 1;
            assert_eq!(answer.queries.len(), 1, "answer {id}");
            assert_eq!(
                answer.queries[0].name().to_string(),
                name(id),
                "answer {id}"
            );
            if id < HOSTS {
                assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
                assert_eq!(answer.answers.len(), 1, "answer {id}");
                assert_eq!(answer.answers[0].data, RData::A(address(id).into()));
            } else {
                assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain);
            }
        }
    }
    assert_eq!(answered.len(), usize::from(QUERIES), "each query answered");
    assert!(answered.values().all(|&n| n == 1), "once: {answered:?}");
}
