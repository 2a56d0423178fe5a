//! `federator run`'s state store flags.

use std::path::PathBuf;

use clap::Args;
use federator::state::StoreOptions;
use federator::state::etcd::EtcdOptions;

/// Where the VIP table lives.
#[derive(Args, Debug)]
pub(super) struct StoreArgs {
    /// Where the VIP table is kept across restarts and shared by replicas: `embedded` (a
    /// ConfigMap in federator's namespace of the config cluster, written only by the leader)
    /// or `etcd://HOST:PORT[,HOST:PORT...]` (keys under --etcd-prefix, each allocation a
    /// compare-and-swap; leader election then runs on etcd too).
    #[arg(long, default_value = "embedded", env = "FEDERATOR_STORE")]
    store: String,
    /// Name of the embedded store's ConfigMap.
    #[arg(long, default_value = "federator-state")]
    state_name: String,
    /// Key prefix in etcd (default: /federator/<instance>/).
    #[arg(long)]
    etcd_prefix: Option<String>,
    /// CA certificate (PEM) that signed etcd's: connects with TLS.
    #[arg(long)]
    etcd_ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for etcd's mutual TLS; with --etcd-key-file.
    #[arg(long, requires = "etcd_key_file", requires = "etcd_ca_file")]
    etcd_cert_file: Option<PathBuf>,
    /// Client key (PEM) for etcd's mutual TLS; with --etcd-cert-file.
    #[arg(long, requires = "etcd_cert_file")]
    etcd_key_file: Option<PathBuf>,
}

impl StoreArgs {
    /// The store to open for installation `instance`.
    pub(super) fn options(&self, instance: &str) -> anyhow::Result<StoreOptions> {
        if self.store == "embedded" {
            federator::model::validate_label_value(&self.state_name)
                .map_err(|why| anyhow::anyhow!("--state-name {:?}: {why}", self.state_name))?;
            return Ok(StoreOptions::Embedded {
                name: self.state_name.clone(),
            });
        }
        let Some(list) = self.store.strip_prefix("etcd://") else {
            anyhow::bail!(
                "--store {:?}: expected `embedded` or `etcd://HOST:PORT[,HOST:PORT...]`",
                self.store
            );
        };
        let endpoints: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect();
        if endpoints.is_empty()
            || endpoints
                .iter()
                .any(|e| !e.contains(':') || e.contains('/'))
        {
            anyhow::bail!(
                "--store {:?}: each etcd endpoint must be HOST:PORT",
                self.store
            );
        }
        let prefix = self
            .etcd_prefix
            .clone()
            .unwrap_or_else(|| format!("/federator/{instance}/"));
        let prefix = if prefix.ends_with('/') {
            prefix
        } else {
            format!("{prefix}/")
        };
        Ok(StoreOptions::Etcd(EtcdOptions {
            endpoints,
            prefix,
            ca_file: self.etcd_ca_file.clone(),
            client_cert: self.etcd_cert_file.clone().zip(self.etcd_key_file.clone()),
        }))
    }
}
