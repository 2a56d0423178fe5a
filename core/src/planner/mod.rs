//! The pure decisions with consequences: which clusters exist ([`clusters`]), what happens
//! to each one's backends as it comes and goes ([`health`]), which replicas share the clusters
//! ([`membership`]), which of them owns each cluster ([`shards`]) and may write to it
//! ([`claims`]), and how a replica publishes its clusters' objects for the others
//! ([`shared_objects`]), and what to write into each cluster's sync namespace
//! ([`write`]). The edge feeds them what it observed and carries out
//! what they decide; here they are tested without an API server or a clock.

pub mod claims;
pub mod clusters;
pub mod compact_id;
pub mod election;
pub mod handoffs;
pub mod health;
pub mod membership;
pub mod shards;
pub mod shared_maps;
pub mod shared_objects;
pub mod vip_sync;
pub mod write;
