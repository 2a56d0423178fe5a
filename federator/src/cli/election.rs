//! `federator run`'s leader election flags.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use federator::leader::{ElectionOptions, ElectionTiming};
use federator::shard::ShardOptions;

/// `--leader-election`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Election {
    /// A coordination.k8s.io Lease in the namespace of the cluster Secrets.
    Lease,
    /// No election: this process is the only writer. Never with more than one replica.
    None,
    /// No single leader: the clusters are sharded across the replicas through etcd
    /// (`--store etcd://...`). Each replica watches and writes the clusters it owns,
    /// publishes their objects, and follows the others' (DNS and the API serve every
    /// cluster from any replica).
    Shard,
}

/// Leader election among replicas.
#[derive(Args, Debug)]
pub(super) struct ElectionArgs {
    /// How replicas agree on the one that writes. Followers watch every cluster too and keep
    /// their registry warm (and serve DNS and the API), so a takeover relists nothing.
    #[arg(long, value_enum, default_value = "lease")]
    leader_election: Election,
    /// Name of the Lease.
    #[arg(long, default_value = "federator-leader")]
    lease_name: String,
    /// How long a leader's claim lasts: a follower takes over after seeing the lease
    /// unrenewed for this long.
    #[arg(long, default_value = "15s", value_parser = super::duration_at_least::<1000>)]
    lease_duration: Duration,
    /// A leader that could not renew for this long stops writing; shorter than
    /// --lease-duration, and the difference covers writes in flight.
    #[arg(long, default_value = "10s", value_parser = super::duration_at_least::<500>)]
    renew_deadline: Duration,
    /// How often the leader renews and followers read the lease.
    #[arg(long, default_value = "2s", value_parser = super::duration_at_least::<100>)]
    retry_period: Duration,
    /// This replica's name in the lease, or among the replicas sharing clusters (default: $POD_NAME or the host name, with a random
    /// suffix so a restarted process is never taken for its predecessor).
    #[arg(long, env = "FEDERATOR_IDENTITY")]
    identity: Option<String>,
}

impl ElectionArgs {
    /// The election to run, if any.
    pub(super) fn options(&self) -> anyhow::Result<Option<ElectionOptions>> {
        if self.leader_election != Election::Lease {
            return Ok(None);
        }
        let timing = self.timing()?;
        federator::model::validate_label_value(&self.lease_name)
            .map_err(|why| anyhow::anyhow!("--lease-name {:?}: {why}", self.lease_name))?;
        let identity = self.identity.clone().unwrap_or_else(default_identity);
        Ok(Some(ElectionOptions {
            identity,
            lease_name: self.lease_name.clone(),
            timing,
        }))
    }

    /// The sharding of clusters across replicas, when asked for.
    pub(super) fn shard(&self) -> anyhow::Result<Option<ShardOptions>> {
        if self.leader_election != Election::Shard {
            return Ok(None);
        }
        let replica = self.identity.clone().unwrap_or_else(default_identity);
        // It names etcd keys and metric labels.
        federator::model::validate_label_value(&replica)
            .map_err(|why| anyhow::anyhow!("--identity {replica:?}: {why}"))?;
        Ok(Some(ShardOptions {
            replica,
            timing: self.timing()?,
        }))
    }

    fn timing(&self) -> anyhow::Result<ElectionTiming> {
        ElectionTiming::new(self.lease_duration, self.renew_deadline, self.retry_period)
            .context("--lease-duration, --renew-deadline and --retry-period")
    }
}

/// `<pod or host name>_<random>`.
fn default_identity() -> String {
    let name = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "federator".into());
    // RandomState is seeded from the operating system's randomness, per process.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("{name}_{:08x}", random as u32)
}
