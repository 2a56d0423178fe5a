//! Out of file descriptors, the TCP accept loop pauses instead of spinning a core, UDP
//! still answers, and TCP answers again once descriptors are free. In a file of its own:
//! it lowers this test process's open-files limit (with util-linux's `prlimit`).

// A failed fixture or assertion should stop a test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use common::{PATIENCE, greeting, query, start, tcp};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::net::UdpSocket;

/// CPU time this process has used (user + system), from `/proc/self/stat` opened
/// beforehand (no descriptor is left to open it when it is read).
fn cpu_time(stat: &mut std::fs::File) -> Duration {
    let mut text = String::new();
    stat.seek(SeekFrom::Start(0)).unwrap();
    stat.read_to_string(&mut text).unwrap();
    let stat = text;
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on every Linux architecture that matters here.
    Duration::from_millis(ticks * 10)
}

fn limit_open_files(soft: usize) {
    let status = std::process::Command::new("prlimit")
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg(format!("--nofile={soft}:"))
        .status()
        .expect("prlimit (util-linux) is needed to lower the open-files limit");
    assert!(status.success(), "prlimit failed");
}

// One thread: the server cannot accept while the client below fills the table.
#[tokio::test(flavor = "current_thread")]
async fn out_of_descriptors_the_accept_loop_pauses_and_udp_answers() {
    let (_, addr) = start(greeting()).await;
    let a = query("prod.greeting.global.", RecordType::A, None);
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut stat = std::fs::File::open("/proc/self/stat").unwrap();

    let open = std::fs::read_dir("/proc/self/fd").unwrap().count();
    limit_open_files(open + 32);
    // Connections the kernel completes but the server cannot accept: no descriptor left.
    let mut waiting = Vec::new();
    let exhausted = loop {
        match std::net::TcpStream::connect(addr) {
            Ok(stream) => waiting.push(stream),
            Err(err) => break err,
        }
    };
    assert_eq!(exhausted.raw_os_error(), Some(24), "EMFILE: {exhausted}");
    assert!(!waiting.is_empty());

    let before = cpu_time(&mut stat);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used = cpu_time(&mut stat) - before;
    assert!(
        used < Duration::from_millis(300),
        "{used:?} of CPU in 1 s: the accept loop spins on EMFILE"
    );

    client.send_to(&a, addr).await.unwrap();
    let mut buf = vec![0u8; 512];
    let (n, _) = tokio::time::timeout(PATIENCE, client.recv_from(&mut buf))
        .await
        .expect("no UDP answer while out of descriptors")
        .unwrap();
    let answer = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);

    drop(waiting);
    let answer = tcp(addr, &a).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
}
