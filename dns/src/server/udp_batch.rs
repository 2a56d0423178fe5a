//! DNS over UDP on Linux, batched: one `recvmmsg` takes up to [`BATCH`] datagrams, each is
//! answered as the one-at-a-time loop would ([`answer_datagram`]), and one `sendmmsg` sends
//! their answers. Under load this divides the system calls, which cost more than the
//! answers, by up to the batch size; a lone datagram still goes out at once.
//!
//! `recvmmsg` comes from nix (rustix has none); `sendmmsg` from rustix, which reports how
//! many messages went out without reading back uninitialised addresses as nix's does.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;

use hickory_server::net::xfer::Protocol;
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};
use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tracing::debug;

use super::Backoff;
use super::respond::Responder;
use super::udp::answer_datagram;
use crate::DnsHandler;

/// Most datagrams taken by one `recvmmsg` (and answers sent by one `sendmmsg`).
const BATCH: usize = 32;
/// Room for each datagram: no DNS datagram is longer, so none is cut. The buffer is
/// allocated zeroed, so only the pages datagrams are written to become resident.
const SLOT: usize = u16::MAX as usize;

/// Why the batched loop ended.
#[derive(Debug)]
pub(super) enum Stopped {
    /// The socket failed for good: the server stops with this error.
    Failed(io::Error),
    /// The kernel has no `recvmmsg` (or a filter forbids it): receive one datagram at a time.
    Unsupported(io::Error),
}

/// Receives and answers batches of datagrams on `socket` until it fails for good, or at once
/// if batching is unsupported. Several loops may share one socket.
pub(super) async fn receive(socket: &UdpSocket, handler: &DnsHandler) -> Stopped {
    let responder = Responder::new(handler.clone(), Protocol::Udp);
    let mut backoff = Backoff::new("DNS over UDP");
    let mut batch = Batch::new();
    let mut batched_once = false;
    loop {
        let received = match socket.readable().await {
            Ok(()) => socket.try_io(Interest::READABLE, || batch.receive(socket)),
            Err(err) => Err(err),
        };
        match received {
            Ok(_) => {
                backoff.succeeded();
                batched_once = true;
            }
            // Spurious readiness (another loop took the datagrams): tokio clears it.
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            Err(err) if !batched_once && unsupported(&err) => return Stopped::Unsupported(err),
            Err(err) => match backoff.after(err).await {
                Ok(()) => continue,
                Err(err) => return Stopped::Failed(err),
            },
        }
        batch.answer(handler, &responder).await;
        batch.send(socket).await;
    }
}

/// Whether `err` from `recvmmsg` means the system call is not available at all.
fn unsupported(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::Unsupported
        || err.raw_os_error() == Some(nix::errno::Errno::ENOSYS as i32)
}

/// One received datagram.
#[derive(Clone, Copy, Debug)]
struct Received {
    /// Its length, from the start of its slot.
    len: usize,
    /// Its source; the unspecified address, which is never answered, if the kernel gave none.
    src: SocketAddr,
}

/// One answer waiting to be sent.
#[derive(Debug)]
struct Pending {
    /// The slot whose answer it is.
    slot: usize,
    /// Where it goes, as `sendmmsg` takes it.
    dest: SocketAddrAny,
    /// Where it goes, for the logs.
    client: SocketAddr,
}

/// The buffers of one loop, reused from batch to batch.
///
/// Not nix's `recvmmsg` headers: they hold raw pointers (not `Send`, so they cannot live in
/// the loop's task across an `.await`), and a reused header keeps the previous source's
/// address length, so they are made afresh for each `recvmmsg`.
#[derive(Debug)]
struct Batch {
    /// [`BATCH`] slots of [`SLOT`] bytes.
    messages: Vec<u8>,
    /// The datagrams of the current batch, by slot.
    received: Vec<Received>,
    /// One answer buffer per slot.
    answers: Vec<Vec<u8>>,
    /// The answers of the current batch, in the order received.
    pending: Vec<Pending>,
}

impl Batch {
    fn new() -> Self {
        Self {
            messages: vec![0; BATCH * SLOT],
            received: Vec::with_capacity(BATCH),
            answers: (0..BATCH).map(|_| Vec::with_capacity(512)).collect(),
            pending: Vec::with_capacity(BATCH),
        }
    }

    /// Takes the datagrams waiting on `socket`, up to [`BATCH`], without blocking
    /// (`WouldBlock` when there are none).
    fn receive(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        let Self {
            messages, received, ..
        } = self;
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
        let mut slots = messages.chunks_mut(SLOT);
        let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] =
            std::array::from_fn(|_| [IoSliceMut::new(slots.next().unwrap_or_default())]);
        let batch = recvmmsg(
            socket.as_raw_fd(),
            &mut headers,
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )?;
        received.clear();
        let unspecified = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        received.extend(batch.map(|message| {
            Received {
                len: message.bytes.min(SLOT),
                src: message
                    .address
                    .and_then(|address| to_std(&address))
                    .unwrap_or(unspecified),
            }
        }));
        Ok(received.len())
    }

    /// Answers the datagrams received, queueing the answers to send.
    async fn answer(&mut self, handler: &DnsHandler, responder: &Responder) {
        self.pending.clear();
        for (slot, received) in self.received.iter().enumerate() {
            let start = slot * SLOT;
            let message = &self.messages[start..start + received.len];
            let answer = &mut self.answers[slot];
            if answer_datagram(handler, responder, message, received.src, answer).await {
                self.pending.push(Pending {
                    slot,
                    dest: SocketAddrAny::from(received.src),
                    client: received.src,
                });
            }
        }
    }

    /// Sends the queued answers, as many per `sendmmsg` as the socket takes. Waits only
    /// while the send buffer is full: an answer is not dropped for it. An answer the kernel
    /// refuses (say, to an unreachable client) is logged and skipped.
    async fn send(&mut self, socket: &UdpSocket) {
        let mut sent = 0;
        while sent < self.pending.len() {
            if let Err(err) = socket.writable().await {
                debug!(error = %err, answers = self.pending.len() - sent, "could not send DNS answers");
                return;
            }
            match socket.try_io(Interest::WRITABLE, || self.send_from(socket, sent)) {
                Ok(count) => sent += count.max(1),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => {
                    let client = self.pending[sent].client;
                    debug!(%client, error = %err, "could not send a DNS answer");
                    sent += 1;
                }
            }
        }
    }

    /// One `sendmmsg` of the queued answers from `first` on, without blocking; how many
    /// went out.
    fn send_from(&self, socket: &UdpSocket, first: usize) -> io::Result<usize> {
        let pending = &self.pending[first..];
        let iovs: Vec<[IoSlice<'_>; 1]> = pending
            .iter()
            .map(|answer| [IoSlice::new(&self.answers[answer.slot])])
            .collect();
        let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> = pending
            .iter()
            .map(|_| SendAncillaryBuffer::default())
            .collect();
        let mut messages: Vec<MMsgHdr<'_>> = pending
            .iter()
            .zip(&iovs)
            .zip(&mut controls)
            .map(|((answer, iov), control)| MMsgHdr::new_with_addr(&answer.dest, iov, control))
            .collect();
        Ok(rustix::net::sendmmsg(
            socket,
            &mut messages,
            SendFlags::DONTWAIT,
        )?)
    }
}

/// `address` as a standard socket address, if it is IPv4 or IPv6.
fn to_std(address: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        Some(SocketAddr::from(*v4))
    } else {
        address.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_convert_both_ways() {
        for text in ["10.0.0.1:5353", "[fd00::1]:53"] {
            let addr: SocketAddr = text.parse().unwrap();
            assert_eq!(to_std(&SockaddrStorage::from(addr)), Some(addr));
        }
    }

    #[test]
    fn enosys_falls_back() {
        assert!(unsupported(&io::Error::from_raw_os_error(
            nix::errno::Errno::ENOSYS as i32
        )));
        assert!(!unsupported(&io::Error::from_raw_os_error(
            nix::errno::Errno::ENOBUFS as i32
        )));
    }
}
