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
#[derive(Clone)]
pub struct UpstreamOptions {
    /// The upstream's gRPC API, `http://host:port` or `https://host:port`.
    pub url: String,
    /// TLS: the CA that signed the upstream's certificate.
    pub ca: Option<Vec<u8>>,
    /// TLS client certificate and key (PEM), for an upstream that requires them.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for UpstreamOptions {
    /// Never the client key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamOptions")
            .field("url", &self.url)
            .field("tls", &self.ca.is_some())
            .field("client_certificate", &self.identity.is_some())
            .finish()
    }
}

/// Why the upstream's settings cannot work.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// TLS files with a plain-text URL (they would be ignored), or an https URL without the
    /// CA to check the upstream's certificate.
    #[error("--upstream {url}: {reason}")]
    Scheme {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The URL or TLS settings are not usable.
    #[error("--upstream {url}: {source}")]
    Transport {
        /// The URL.
        url: String,
        /// Why.
        source: tonic::transport::Error,
    },
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

/// A connection that lasted this long counts as the upstream having answered (it survived
/// keepalives), even without an event.
const HEALTHY_CONNECTION: Duration = Duration::from_secs(10);

/// Builds the channel to the upstream (nothing is dialled yet). TLS is used exactly when
/// the URL is `https://`, which then needs the CA: never a silent fall back to plain text.
pub fn channel(options: &UpstreamOptions) -> Result<Channel, UpstreamError> {
    let url = options.url.clone();
    let scheme = |reason| UpstreamError::Scheme {
        url: url.clone(),
        reason,
    };
    match (url.split_once("://").map(|(s, _)| s), &options.ca) {
        (Some("http"), None) | (Some("https"), Some(_)) => {}
        (Some("http"), Some(_)) => {
            return Err(scheme("TLS files were given: use an https:// URL"));
        }
        (Some("https"), None) => {
            return Err(scheme("an https:// upstream needs --upstream-ca-file"));
        }
        _ => return Err(scheme("expected http://HOST:PORT or https://HOST:PORT")),
    }
    let transport = |source| UpstreamError::Transport {
        url: url.clone(),
        source,
    };
    let mut endpoint = Endpoint::from_shared(options.url.clone())
        .map_err(transport)?
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
        endpoint = endpoint.tls_config(tls).map_err(transport)?;
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
        let opened = Instant::now();
        let mut answered = false;
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
                            answered = true;
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
        // The staleness counts from the last sign of a working upstream: an event, or a
        // stream that stayed open through keepalives. One that accepts and fails at once
        // again and again does not look fresh.
        let healthy = answered || opened.elapsed() >= HEALTHY_CONNECTION;
        state.send_modify(|s| {
            if s.connected && healthy {
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
    let (snapshot, errors) = crate::dns::build(
        mirror.records(),
        mirror.clusterset_records(),
        settings,
        serial,
    );
    for err in errors {
        warn!(error = %err, "not answered");
    }
    dns.store(snapshot);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(url: &str, ca: bool) -> UpstreamOptions {
        UpstreamOptions {
            url: url.into(),
            ca: ca.then(|| b"-----BEGIN CERTIFICATE-----\n".to_vec()),
            identity: None,
        }
    }

    #[tokio::test]
    async fn tls_is_used_exactly_for_https_and_never_dropped_silently() {
        assert!(channel(&options("http://127.0.0.1:9091", false)).is_ok());
        let downgrade = channel(&options("http://127.0.0.1:9091", true)).unwrap_err();
        assert!(downgrade.to_string().contains("https://"), "{downgrade}");
        let unchecked = channel(&options("https://127.0.0.1:9091", false)).unwrap_err();
        assert!(
            unchecked.to_string().contains("--upstream-ca-file"),
            "{unchecked}"
        );
        assert!(channel(&options("127.0.0.1:9091", false)).is_err());
    }

    #[test]
    fn the_client_key_never_shows_in_debug_output() {
        let mut with_key = options("https://u:1", true);
        with_key.identity = Some((b"cert".to_vec(), b"SECRET-KEY".to_vec()));
        assert!(!format!("{with_key:?}").contains("SECRET"));
    }
}
