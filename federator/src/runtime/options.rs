use std::time::Duration;

use crate::clusters::SecretPolicy;
use crate::config::Settings;
use crate::connect::ConnectSettings;
use crate::dns::DnsSettings;

/// Everything `federator run` can be told.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Ingest, registry and render settings.
    pub settings: Settings,
    /// Namespace of the cluster Secrets in the config cluster.
    pub namespace: String,
    /// Label selector of cluster Secrets.
    pub secret_selector: String,
    /// How long an unreachable cluster's backends are kept before they are withdrawn.
    pub stale_after: Duration,
    /// How long start-up waits for clusters to list their objects before the first write.
    pub initial_sync_timeout: Duration,
    /// How often each cluster's API server is probed.
    pub probe_interval: Duration,
    /// How often every cluster is fully re-read and repaired, changes or not.
    pub resync_period: Duration,
    /// DNS zones and TTL (served when the DNS sockets are given to `run`).
    pub dns: DnsSettings,
    /// DNS server limits (TCP connections, idle timeout).
    pub dns_server: federator_dns::ServeOptions,
    /// What cluster Secrets may contain.
    pub secrets: SecretPolicy,
    /// How clients for registered clusters are built.
    pub connect: ConnectSettings,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            settings: Settings::default(),
            namespace: "federator".into(),
            secret_selector: "federator.io/cluster=true".into(),
            stale_after: Duration::from_secs(180),
            initial_sync_timeout: Duration::from_secs(30),
            probe_interval: Duration::from_secs(5),
            resync_period: Duration::from_secs(600),
            dns: DnsSettings {
                zones: federator_dns::Zone::new("global").into_iter().collect(),
                ttl: 5,
            },
            dns_server: federator_dns::ServeOptions::default(),
            secrets: SecretPolicy::default(),
            connect: ConnectSettings::default(),
        }
    }
}
