//! DNS over TCP: an accept loop with a cap on open connections, and one task per
//! connection that answers its queries in order and closes it when idle.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_server::net::xfer::Protocol;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::timeout;
use tracing::{debug, warn};

use super::respond::Responder;
use super::{Backoff, ServeOptions};
use crate::DnsHandler;

/// Accepts connections on `listener` until it fails for good. Dropping the future closes
/// every connection it opened.
pub(super) async fn accept(
    listener: TcpListener,
    handler: DnsHandler,
    options: ServeOptions,
) -> io::Error {
    let mut connections = JoinSet::new();
    let mut backoff = Backoff::new("DNS over TCP");
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(ended) = connections.join_next() => {
                ended_connection(ended);
                continue;
            }
        };
        let (stream, client) = match accepted {
            Ok(accepted) => {
                backoff.succeeded();
                accepted
            }
            Err(err) => match backoff.after(err).await {
                Ok(()) => continue,
                Err(err) => return err,
            },
        };
        // Connections that ended since the last turn no longer count.
        while let Some(ended) = connections.try_join_next() {
            ended_connection(ended);
        }
        if connections.len() >= options.max_tcp_connections {
            // Dropping it closes it: the client reads end of file instead of waiting.
            debug!(
                %client,
                limit = options.max_tcp_connections,
                "closing a DNS over TCP connection: too many open"
            );
            handler.refused_connection();
            continue;
        }
        connections.spawn(connection(
            stream,
            client,
            handler.clone(),
            options.tcp_idle_timeout,
        ));
    }
}

/// Reports a connection task that panicked (one that returned has nothing to report).
fn ended_connection(ended: Result<(), tokio::task::JoinError>) {
    if let Err(err) = ended
        && err.is_panic()
    {
        warn!(error = %err, "a DNS over TCP connection panicked");
    }
}

/// Answers the queries of one connection in order until the client closes it, it errs, or
/// it stays `idle` without a complete query (or without reading an answer).
async fn connection(
    mut stream: TcpStream,
    client: SocketAddr,
    handler: DnsHandler,
    idle: Duration,
) {
    let _open = handler.open_connection();
    // Each answer is written whole at once: do not hold it back waiting for more.
    if let Err(err) = stream.set_nodelay(true) {
        debug!(%client, error = %err, "could not set TCP_NODELAY");
    }
    let responder = Responder::new(handler, Protocol::Tcp);
    let mut message = Vec::new();
    let mut answer = Vec::new();
    let mut framed = Vec::new();
    loop {
        match timeout(idle, read_message(&mut stream, &mut message)).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return,
            Ok(Err(err)) => {
                debug!(%client, error = %err, "DNS over TCP connection failed");
                return;
            }
            Err(_) => {
                debug!(%client, timeout_ms = idle.as_millis(), "closing an idle DNS over TCP connection");
                return;
            }
        }
        if !responder.respond(&message, client, &mut answer).await {
            continue;
        }
        // Answers are encoded to at most u16::MAX bytes.
        let Ok(len) = u16::try_from(answer.len()) else {
            continue;
        };
        framed.clear();
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&answer);
        match timeout(idle, stream.write_all(&framed)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                debug!(%client, error = %err, "could not send a DNS answer over TCP");
                return;
            }
            Err(_) => {
                debug!(%client, "closing a DNS over TCP connection whose client does not read");
                return;
            }
        }
    }
}

/// Reads one length-prefixed message into `message`; false when the client closed the
/// connection between messages.
async fn read_message(stream: &mut TcpStream, message: &mut Vec<u8>) -> io::Result<bool> {
    let mut len = [0u8; 2];
    if stream.read(&mut len[..1]).await? == 0 {
        return Ok(false);
    }
    stream.read_exact(&mut len[1..]).await?;
    message.resize(usize::from(u16::from_be_bytes(len)), 0);
    stream.read_exact(message).await?;
    Ok(true)
}
