//! The pure decisions with consequences: which clusters exist ([`clusters`]), what happens
//! to each one's backends as it comes and goes ([`health`]), and what to write into each
//! cluster's sync namespace ([`write`]). The edge feeds them what it observed and carries out
//! what they decide; here they are tested without an API server or a clock.

pub mod clusters;
pub mod compact_id;
pub mod election;
pub mod health;
pub mod shared_maps;
pub mod vip_sync;
pub mod write;
