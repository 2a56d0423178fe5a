use std::time::Duration;

use crate::clusters::SecretPolicy;
use crate::clusters::health::{HealthPolicy, OnUnreachable};
use crate::config::Settings;
use crate::connect::ConnectSettings;
use crate::dns::DnsSettings;
use crate::sync::plan::Installation;

/// Everything `federator run` can be told.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Ingest, registry and render settings.
    pub settings: Settings,
    /// Namespace of the cluster Secrets in the config cluster.
    pub namespace: String,
    /// Label selector of cluster Secrets.
    pub secret_selector: String,
    /// How long a cluster may be unreachable before the outage policy applies.
    pub stale_after: Duration,
    /// The outage policy: keep an unreachable cluster's last-known backends (and alert), or
    /// withdraw them after `stale_after`.
    pub on_unreachable: OnUnreachable,
    /// How long a cluster outlives its Secret (a `kubectl replace --force` or a GitOps
    /// replace never flaps the fleet).
    pub removal_grace: Duration,
    /// Whether removing a cluster also deletes what this installation wrote in it.
    pub cleanup_on_remove: bool,
    /// This installation's name on the objects it writes (`federator.io/instance`): objects
    /// of another installation are never touched.
    pub instance: String,
    /// Whether federator objects without an instance label (written by a federator before
    /// it set one) are taken as this installation's: for upgrading a single installation.
    pub adopt_unlabelled: bool,
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
    /// Leader election among replicas; `None`: this process is the only writer.
    pub election: Option<crate::leader::ElectionOptions>,
    /// Clusters sharded across replicas through etcd (instead of one elected writer).
    pub shard: Option<crate::shard::ShardOptions>,
    /// Where the VIP table is kept across restarts and shared by replicas.
    pub store: crate::state::StoreOptions,
    /// TLS (and mutual TLS) of the gRPC registry API; `None`: plain text.
    pub api_tls: Option<crate::api::ApiTls>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            settings: Settings::default(),
            namespace: "federator".into(),
            secret_selector: "federator.io/cluster=true".into(),
            stale_after: Duration::from_secs(180),
            on_unreachable: OnUnreachable::Keep,
            removal_grace: Duration::from_secs(120),
            cleanup_on_remove: false,
            instance: "federator.federator".into(),
            adopt_unlabelled: false,
            initial_sync_timeout: Duration::from_secs(30),
            probe_interval: Duration::from_secs(5),
            resync_period: Duration::from_secs(600),
            dns: DnsSettings {
                zones: ["global", crate::model::CLUSTERSET_ZONE]
                    .into_iter()
                    .filter_map(|z| federator_dns::Zone::new(z).ok())
                    .collect(),
                ttl: 5,
            },
            dns_server: federator_dns::ServeOptions::default(),
            secrets: SecretPolicy::default(),
            connect: ConnectSettings::default(),
            election: None,
            shard: None,
            store: crate::state::StoreOptions::default(),
            api_tls: None,
        }
    }
}

impl RunOptions {
    /// This installation, as the write plan tells its objects from others'.
    pub fn installation(&self) -> Installation {
        Installation {
            instance: self.instance.clone(),
            adopt_unlabelled: self.adopt_unlabelled,
        }
    }

    /// The cluster health machine's policy.
    pub fn health_policy(&self) -> HealthPolicy {
        HealthPolicy {
            stale_after: self.stale_after,
            on_unreachable: self.on_unreachable,
            removal_grace: self.removal_grace,
        }
    }
}
