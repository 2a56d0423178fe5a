use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::TestEnvError;
use crate::ports::{free_port, is_listening};
use crate::process::Process;

/// A running etcd and the URL its clients use.
#[derive(Debug)]
pub(crate) struct Etcd {
    pub(crate) process: Process,
    pub(crate) url: String,
    pub(crate) port: u16,
}

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts etcd on two free loopback ports with its data in `dir`, retrying when another
/// process takes a port first.
pub(crate) async fn start(binary: &Path, dir: &Path) -> Result<Etcd, TestEnvError> {
    let mut last = None;
    for attempt in 0..3 {
        let (client, peer) = (free_port()?, free_port()?);
        let data = dir.join(format!("etcd-data-{attempt}"));
        let url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let mut command = Command::new(binary);
        command
            .arg("--name=testenv")
            .arg(format!("--data-dir={}", data.display()))
            .arg(format!("--listen-client-urls={url}"))
            .arg(format!("--advertise-client-urls={url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=testenv={peer_url}"))
            // Tests need no durability; fsync dominates etcd's latency on small machines.
            .arg("--unsafe-no-fsync")
            .arg("--log-level=warn");
        let mut process = Process::spawn("etcd", command, &dir.join("etcd.log"))?;
        let started = Instant::now();
        loop {
            if let Err(err) = process.check_running() {
                if process.lost_port_race() {
                    last = Some(err);
                    break;
                }
                return Err(err);
            }
            if is_listening(client) {
                return Ok(Etcd {
                    process,
                    url,
                    port: client,
                });
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(TestEnvError::NotReady {
                    what: "etcd".into(),
                    waited: START_TIMEOUT,
                    log: process.log.clone(),
                    tail: process.log_tail(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Err(last.unwrap_or_else(|| TestEnvError::Other("etcd did not start".into())))
}
