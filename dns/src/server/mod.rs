//! The UDP and TCP socket loops: our own instead of hickory-server's `Server`, so that TCP
//! connections are capped and time out, accept errors back off instead of spinning, and
//! every answer and every dropped message is counted.
//!
//! hickory-server still does the DNS part: [`Request::from_bytes`] decodes, the
//! [`RequestHandler`](hickory_server::server::RequestHandler) impl of [`DnsHandler`]
//! answers, and a small [`ResponseHandler`](hickory_server::server::ResponseHandler)
//! ([`respond`]) encodes the answer into a buffer the loop sends.
//!
//! [`Request::from_bytes`]: hickory_server::server::Request::from_bytes

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::DnsHandler;

pub(crate) mod respond;
mod tcp;
mod udp;
#[cfg(target_os = "linux")]
mod udp_batch;

/// How the server treats its clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeOptions {
    /// Most DNS over TCP connections open at once; past it a new connection is accepted and
    /// closed at once (the client sees the connection closed, not a hang). 0 refuses all.
    ///
    /// The default, 256, bounds what TCP can take from the process: a common open-files
    /// limit is 1024, and federator needs descriptors for its API server watches and its
    /// HTTP server too. DNS clients use TCP only after a truncated UDP answer (rare: our
    /// answers are small) or for a pipelined batch, and each connection is short-lived, so
    /// 256 at once is far more than legitimate traffic needs, while idle connections held
    /// open by a misbehaving or hostile client stop at a quarter of that limit. UDP is not
    /// affected by the cap.
    pub max_tcp_connections: usize,
    /// How long a TCP connection may go without sending a complete query before it is
    /// closed; this also bounds a query read slowly byte by byte and an answer the client
    /// does not read. Default 10 s.
    pub tcp_idle_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_tcp_connections: 256,
            tcp_idle_timeout: Duration::from_secs(10),
        }
    }
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
pub async fn bind(addr: SocketAddr) -> io::Result<Sockets> {
    let mut last = None;
    for _ in 0..10 {
        let udp = UdpSocket::bind(addr).await?;
        enlarge_buffers(&udp);
        let port = udp.local_addr()?.port();
        match TcpListener::bind((addr.ip(), port)).await {
            Ok(tcp) => return Ok(Sockets { udp, tcp }),
            Err(err) if addr.port() == 0 => last = Some(err),
            Err(err) => return Err(err),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free port for DNS")))
}

/// The UDP receive and send buffer sizes asked for: a burst of queries (a resolver's
/// start-up, a load test's first second) waits here instead of being dropped while the loop
/// catches up. The kernel grants at most `net.core.rmem_max` / `wmem_max`.
const UDP_BUFFER_BYTES: usize = 4 << 20;

/// Asks for [`UDP_BUFFER_BYTES`] of receive and send buffer on `udp`, logging what was
/// granted; a refusal leaves the default, which still works.
fn enlarge_buffers(udp: &UdpSocket) {
    let socket = socket2::SockRef::from(udp);
    if let Err(err) = socket.set_recv_buffer_size(UDP_BUFFER_BYTES) {
        debug!(error = %err, requested = UDP_BUFFER_BYTES, "could not enlarge the UDP receive buffer");
    }
    if let Err(err) = socket.set_send_buffer_size(UDP_BUFFER_BYTES) {
        debug!(error = %err, requested = UDP_BUFFER_BYTES, "could not enlarge the UDP send buffer");
    }
    // Linux reports twice what it grants (the other half is its bookkeeping).
    debug!(
        requested = UDP_BUFFER_BYTES,
        receive = socket.recv_buffer_size().unwrap_or(0),
        send = socket.send_buffer_size().unwrap_or(0),
        "UDP socket buffers"
    );
}

/// Serves `handler` on `sockets` until the future is dropped (which stops every loop and
/// closes every connection). It returns only if a socket fails for good, with that error,
/// so the caller notices that DNS stopped.
///
/// UDP is answered inline in the receive loop (an answer is a map lookup: a task per packet
/// would cost more than the answer), one loop per runtime worker on the shared socket.
/// Each TCP connection gets its own task, up to [`ServeOptions::max_tcp_connections`].
pub async fn serve(handler: DnsHandler, sockets: Sockets, options: ServeOptions) -> io::Error {
    let workers = tokio::runtime::Handle::try_current()
        .map_or(1, |runtime| runtime.metrics().num_workers())
        .max(1);
    let udp = Arc::new(sockets.udp);
    let mut loops = JoinSet::new();
    for _ in 0..workers {
        loops.spawn(udp::receive(udp.clone(), handler.clone()));
    }
    loops.spawn(tcp::accept(sockets.tcp, handler, options));
    match loops.join_next().await {
        Some(Ok(err)) => err,
        Some(Err(err)) => io::Error::other(format!("a DNS socket loop ended: {err}")),
        None => io::Error::other("no DNS socket loop"),
    }
}

/// What a socket error means for the loop that got it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ErrorClass {
    /// About one connection or datagram (aborted, reset, interrupted): go on at once.
    Transient,
    /// The socket is unusable (EINVAL: not listening, not bound): stop.
    Fatal,
    /// Anything else, chiefly resource exhaustion (EMFILE, ENFILE, ENOBUFS, ENOMEM): the
    /// same call would fail again at once, so pause before the next one.
    Exhausted,
}

fn classify(err: &io::Error) -> ErrorClass {
    use io::ErrorKind as K;
    match err.kind() {
        K::ConnectionAborted
        | K::ConnectionReset
        | K::ConnectionRefused
        | K::Interrupted
        | K::WouldBlock
        | K::TimedOut
        | K::PermissionDenied
        | K::HostUnreachable
        | K::NetworkUnreachable
        | K::NetworkDown => ErrorClass::Transient,
        K::InvalidInput | K::NotConnected => ErrorClass::Fatal,
        _ => ErrorClass::Exhausted,
    }
}

/// How long a loop waits after an exhaustion error before it tries again.
const PAUSE: Duration = Duration::from_millis(100);
/// How often a streak of exhaustion errors is logged again while it lasts.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Handles a socket error: returns it if the socket is dead, otherwise waits as long as the
/// error calls for, logging a streak of them once (and once a minute while it lasts).
#[derive(Debug)]
struct Backoff {
    /// The loop, for the logs.
    what: &'static str,
    /// Errors since the last success.
    streak: u64,
    /// When the streak was last logged.
    warned: Option<Instant>,
}

impl Backoff {
    fn new(what: &'static str) -> Self {
        Self {
            what,
            streak: 0,
            warned: None,
        }
    }

    /// Waits as `err` requires; `Err` when the socket is dead.
    async fn after(&mut self, err: io::Error) -> Result<(), io::Error> {
        match classify(&err) {
            ErrorClass::Transient => {
                debug!(socket = self.what, error = %err, "socket error, going on");
                Ok(())
            }
            ErrorClass::Fatal => Err(io::Error::new(
                err.kind(),
                format!("{} failed for good: {err}", self.what),
            )),
            ErrorClass::Exhausted => {
                self.streak += 1;
                if self.warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                    warn!(
                        socket = self.what,
                        error = %err,
                        errors = self.streak,
                        pause_ms = PAUSE.as_millis(),
                        "socket error, pausing before trying again"
                    );
                    self.warned = Some(Instant::now());
                }
                tokio::time::sleep(PAUSE).await;
                Ok(())
            }
        }
    }

    /// Records a success, ending a streak of errors.
    fn succeeded(&mut self) {
        if self.streak > 0 {
            info!(
                socket = self.what,
                errors = self.streak,
                "socket working again"
            );
            self.streak = 0;
            self.warned = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_by_what_retrying_would_do() {
        let os = io::Error::from_raw_os_error;
        // EMFILE, ENFILE, ENOBUFS, ENOMEM on Linux.
        for code in [24, 23, 105, 12] {
            assert_eq!(classify(&os(code)), ErrorClass::Exhausted, "errno {code}");
        }
        // ECONNABORTED, EINTR, EAGAIN, ECONNREFUSED (an ICMP error on UDP).
        for code in [103, 4, 11, 111] {
            assert_eq!(classify(&os(code)), ErrorClass::Transient, "errno {code}");
        }
        // EINVAL: not listening.
        assert_eq!(classify(&os(22)), ErrorClass::Fatal);
    }

    #[tokio::test]
    async fn exhaustion_pauses_and_a_dead_socket_stops() {
        let mut backoff = Backoff::new("test");
        let before = Instant::now();
        for _ in 0..3 {
            backoff
                .after(io::Error::from_raw_os_error(24))
                .await
                .unwrap();
        }
        assert!(before.elapsed() >= PAUSE * 3, "no spinning on EMFILE");
        assert_eq!(backoff.streak, 3);
        backoff.succeeded();
        assert_eq!(backoff.streak, 0);
        let before = Instant::now();
        backoff
            .after(io::Error::from_raw_os_error(103))
            .await
            .unwrap();
        assert!(before.elapsed() < PAUSE, "ECONNABORTED: at once");
        assert!(
            backoff
                .after(io::Error::from_raw_os_error(22))
                .await
                .is_err()
        );
    }
}
