//! DNS over UDP: a receive loop that answers each datagram inline, from the lean path's
//! precomputed answers when it can, through hickory otherwise. On Linux the loop takes up to
//! a batch of datagrams per system call ([`super::udp_batch`]); elsewhere, or where the
//! kernel refuses batching, it takes one datagram at a time.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use hickory_server::net::xfer::Protocol;
use tokio::net::UdpSocket;
use tracing::debug;

use super::Backoff;
use super::respond::Responder;
use crate::DnsHandler;
use crate::metrics::DropReason;

/// Receives and answers datagrams on `socket` until it fails for good. Several loops may
/// share one socket: each datagram goes to one of them.
pub(super) async fn receive(socket: Arc<UdpSocket>, handler: DnsHandler) -> io::Error {
    #[cfg(target_os = "linux")]
    match super::udp_batch::receive(&socket, &handler).await {
        super::udp_batch::Stopped::Failed(err) => return err,
        super::udp_batch::Stopped::Unsupported(err) => {
            tracing::info!(error = %err, "no batched UDP here, receiving one datagram at a time");
        }
    }
    receive_one_at_a_time(&socket, &handler).await
}

/// The portable loop: one `recv_from` and one `send_to` per datagram.
async fn receive_one_at_a_time(socket: &UdpSocket, handler: &DnsHandler) -> io::Error {
    let responder = Responder::new(handler.clone(), Protocol::Udp);
    let mut backoff = Backoff::new("DNS over UDP");
    // A datagram longer than the buffer would be cut; no DNS datagram is longer than this.
    let mut message = vec![0u8; usize::from(u16::MAX)];
    let mut answer = Vec::with_capacity(512);
    loop {
        let (len, src) = match socket.recv_from(&mut message).await {
            Ok(received) => {
                backoff.succeeded();
                received
            }
            Err(err) => match backoff.after(err).await {
                Ok(()) => continue,
                Err(err) => return err,
            },
        };
        if !answer_datagram(handler, &responder, &message[..len], src, &mut answer).await {
            continue;
        }
        // Waits only while the send buffer is full: the answer is not dropped for it.
        if let Err(err) = socket.send_to(&answer, src).await {
            debug!(client = %src, error = %err, "could not send a DNS answer");
        }
    }
}

/// Puts in `answer` the answer to the datagram `message` from `src`: from the lean path's
/// precomputed bytes when it can, through hickory otherwise. False (the datagram dropped and
/// counted, or given no answer) when there is nothing to send. Both loops answer through it,
/// so a datagram is treated alike whichever loop received it.
pub(super) async fn answer_datagram(
    handler: &DnsHandler,
    responder: &Responder,
    message: &[u8],
    src: SocketAddr,
    answer: &mut Vec<u8>,
) -> bool {
    if !answerable(src) {
        debug!(client = %src, "dropping a datagram from an address that cannot be answered");
        handler.dropped(DropReason::Source);
        return false;
    }
    let started = Instant::now();
    let fast = crate::fast::respond(&handler.current(), message, answer);
    if let Some((qtype, rcode)) = fast {
        handler.observe(qtype.into(), rcode, started);
        true
    } else {
        responder.respond(message, src, answer).await
    }
}

/// Whether an answer can go to `src`: not port 0, not an unspecified or broadcast address
/// (spoofed sources an answer would only bounce off).
fn answerable(src: SocketAddr) -> bool {
    src.port() != 0
        && match src.ip() {
            IpAddr::V4(v4) => !v4.is_unspecified() && !v4.is_broadcast(),
            IpAddr::V6(v6) => !v6.is_unspecified(),
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spoofed_sources_are_not_answered() {
        for bad in ["0.0.0.0:53", "255.255.255.255:53", "[::]:53", "10.0.0.1:0"] {
            assert!(!answerable(bad.parse().unwrap()), "{bad}");
        }
        assert!(answerable("10.0.0.1:5353".parse().unwrap()));
        assert!(answerable("[fd00::1]:5353".parse().unwrap()));
    }
}
