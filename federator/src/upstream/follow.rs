//! The follow loop: a `Watch` on the upstream federator's registry API, folded into the
//! mirror and published to the DNS server after each whole batch. Reconnects with backoff,
//! resuming from the last version (the upstream answers with what changed since, or a fresh
//! snapshot); keeps answering from the last snapshot meanwhile.

use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use federator_dns::SnapshotHandle;
use tokio::sync::watch;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tracing::{info, warn};

use super::mirror::UpstreamMirror;
use crate::api::pb;
use crate::dns::DnsSettings;

/// Where the registry comes from.
#[derive(Clone, Debug)]
pub struct UpstreamOptions {
    /// The upstream's gRPC API, `http://host:port` or `https://host:port`.
    pub url: String,
    /// TLS: the CA that signed the upstream's certificate.
    pub ca: Option<Vec<u8>>,
    /// TLS client certificate and key (PEM), for an upstream that requires them.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

/// How the follow loop stands, for `/readyz`.
#[derive(Clone, Copy, Debug)]
pub struct UpstreamState {
    /// A whole snapshot has been received (DNS answers from it).
    pub whole: bool,
    /// The Watch stream is open.
    pub connected: bool,
    /// Since when the stream is closed (when not connected).
    pub since: Instant,
}

/// Largest message accepted from the upstream (it sends at most 4 MiB).
const MAX_MESSAGE: usize = 8 * 1024 * 1024;

/// Builds the channel to the upstream (nothing is dialled yet).
pub fn channel(options: &UpstreamOptions) -> Result<Channel, tonic::transport::Error> {
    let mut endpoint = Endpoint::from_shared(options.url.clone())?
        .connect_timeout(Duration::from_secs(5))
        // A dead upstream is noticed even when nothing changes.
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true);
    if let Some(ca) = &options.ca {
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
        if let Some((cert, key)) = &options.identity {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        endpoint = endpoint.tls_config(tls)?;
    }
    Ok(endpoint.connect_lazy())
}

/// Follows the upstream forever, publishing to `dns`.
pub async fn follow(
    channel: Channel,
    url: String,
    dns: SnapshotHandle,
    settings: DnsSettings,
    state: watch::Sender<UpstreamState>,
) {
    let mut mirror = UpstreamMirror::default();
    let mut serial: u32 = 0;
    let retry = || {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_jitter()
            .without_max_times()
            .build()
    };
    let mut backoff = retry();
    let mut reported = false;
    loop {
        let mut client = pb::registry_client::RegistryClient::new(channel.clone())
            .max_decoding_message_size(MAX_MESSAGE);
        let request = pb::WatchRequest {
            from_version: mirror.version().to_owned(),
        };
        let outcome = match client.watch(request).await {
            Ok(stream) => {
                state.send_modify(|s| s.connected = true);
                if reported {
                    info!(upstream = url, "upstream answers again");
                    reported = false;
                }
                let mut stream = stream.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(event)) => {
                            backoff = retry();
                            if mirror.apply(event) {
                                serial = serial.wrapping_add(1);
                                publish(&mirror, &dns, &settings, serial);
                                state.send_modify(|s| s.whole = true);
                            }
                        }
                        Ok(None) => break "the upstream ended the stream".to_owned(),
                        Err(status) => break status_text(&status),
                    }
                }
            }
            Err(status) => status_text(&status),
        };
        state.send_modify(|s| {
            if s.connected {
                s.since = Instant::now();
            }
            s.connected = false;
        });
        if !reported {
            warn!(
                upstream = url,
                error = outcome,
                "upstream lost; answering from the last snapshot and reconnecting"
            );
            reported = true;
        }
        tokio::time::sleep(backoff.next().unwrap_or(Duration::from_secs(5))).await;
    }
}

fn status_text(status: &tonic::Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

/// Rebuilds the DNS snapshot from the mirror.
fn publish(mirror: &UpstreamMirror, dns: &SnapshotHandle, settings: &DnsSettings, serial: u32) {
    let (snapshot, errors) = crate::dns::build(mirror.records(), settings, serial);
    for err in errors {
        warn!(error = %err, "not answered");
    }
    dns.store(snapshot);
}
