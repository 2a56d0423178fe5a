//! DNS over UDP: a receive loop that answers each datagram inline, from the lean path's
//! precomputed answers when it can, through hickory otherwise.

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
        if !answerable(src) {
            debug!(client = %src, "dropping a datagram from an address that cannot be answered");
            handler.dropped(DropReason::Source);
            continue;
        }
        let started = Instant::now();
        let fast = crate::fast::respond(&handler.current(), &message[..len], &mut answer);
        if let Some((qtype, rcode)) = fast {
            handler.observe(qtype.into(), rcode, started);
        } else if !responder.respond(&message[..len], src, &mut answer).await {
            continue;
        }
        // Waits only while the send buffer is full: the answer is not dropped for it.
        if let Err(err) = socket.send_to(&answer, src).await {
            debug!(client = %src, error = %err, "could not send a DNS answer");
        }
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
