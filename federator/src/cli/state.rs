//! `federator run`'s state store flags.

use clap::Args;
use federator::state::StoreOptions;

/// Where the VIP table lives.
#[derive(Args, Debug)]
pub(super) struct StoreArgs {
    /// Where the VIP table is kept across restarts and shared by replicas: `embedded` (a
    /// ConfigMap in federator's namespace of the config cluster, written only by the
    /// leader).
    #[arg(long, default_value = "embedded", env = "FEDERATOR_STORE")]
    store: String,
    /// Name of the embedded store's ConfigMap.
    #[arg(long, default_value = "federator-state")]
    state_name: String,
}

impl StoreArgs {
    /// The store to open.
    pub(super) fn options(&self) -> anyhow::Result<StoreOptions> {
        match self.store.as_str() {
            "embedded" => {
                federator::model::validate_label_value(&self.state_name)
                    .map_err(|why| anyhow::anyhow!("--state-name {:?}: {why}", self.state_name))?;
                Ok(StoreOptions::Embedded {
                    name: self.state_name.clone(),
                })
            }
            other => anyhow::bail!("--store {other:?}: expected `embedded`"),
        }
    }
}
