//! DNS authority for federator's global zones.
//!
//! This crate answers for the zones federator owns (default `global.`) and nothing else: it
//! is never a recursive or open resolver. It holds the pure, I/O-free pieces; the server that
//! binds sockets builds on them.

#![forbid(unsafe_code)]

mod zone;

pub use zone::{Zone, ZoneError};
