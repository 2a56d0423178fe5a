//! Clusters sharded across replicas through etcd (`--leader-election shard`): this replica's
//! membership ([`membership`]), its claims on the clusters it owns ([`claims`]) and the
//! writers' fence each claim opens ([`fences`]), and the clusters' objects shared between
//! replicas ([`objects`]). The decisions (who owns a cluster, who may write to it,
//! whether settings agree) are pure, in [`federator_core::planner::shards`],
//! [`federator_core::planner::claims`] and [`federator_core::planner::membership`]; this
//! module carries them out against etcd; `crate::runtime` runs them.

pub mod claims;
pub mod fences;
pub mod follow;
mod members;
pub mod membership;
pub mod objects;

use std::collections::BTreeMap;

use federator_core::planner::election::ElectionTiming;

/// How this replica takes part in sharding clusters.
#[derive(Clone, Debug)]
pub struct ShardOptions {
    /// Its name among the replicas (unique while it lives).
    pub replica: String,
    /// Its membership lease's timings (the election's flags).
    pub timing: ElectionTiming,
}

/// The settings every replica sharing clusters must agree on, by flag: they decide what
/// the shared registry makes of the published objects, and what is written where.
pub fn shared_settings(options: &crate::runtime::RunOptions) -> BTreeMap<String, String> {
    let registry = &options.settings.registry;
    BTreeMap::from([
        ("host-suffix".to_owned(), registry.host_suffix.clone()),
        ("vip-range".to_owned(), registry.vip_range.to_string()),
        (
            "max-hosts-per-cluster".to_owned(),
            registry.max_hosts_per_cluster.to_string(),
        ),
        (
            "sync-namespace".to_owned(),
            options.settings.render.namespace.clone(),
        ),
        ("instance".to_owned(), options.instance.clone()),
    ])
}

/// The wait between attempts of a sharding task that failed against etcd (following,
/// publishing): short at first, jittered, at most 10 s.
pub(crate) fn retry_backoff() -> backon::ExponentialBackoff {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(200))
        .with_max_delay(std::time::Duration::from_secs(10))
        .with_jitter()
        .without_max_times()
        .build()
}
