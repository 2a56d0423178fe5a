//! Clusters sharded across replicas through etcd (issue 15, in progress): this replica's
//! membership ([`membership`]), its claims on the clusters it owns ([`claims`]) and the
//! writers' fence each claim opens ([`fences`]), and the clusters' objects shared between
//! replicas ([`objects`]). The decisions (who owns a cluster, who may write to it,
//! whether settings agree) are pure, in [`federator_core::planner::shards`],
//! [`federator_core::planner::claims`] and [`federator_core::planner::membership`]; this
//! module carries them out against etcd. Not yet wired into `federator run`.

pub mod claims;
pub mod fences;
pub mod follow;
mod members;
pub mod membership;
pub mod objects;
