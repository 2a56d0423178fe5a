//! The gRPC registry API, `federator.v1.Registry` (protos in `proto/`): the registry as the
//! registry loop last published it, for dashboards, CI checks and other tools, with the
//! standard gRPC health service and reflection (so `grpcurl` works without the protos).

mod convert;
mod query;
mod service;
mod watch;

pub(crate) use query::shown;
pub use service::{ApiTls, Sources, serve};

/// The generated messages, server and client.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("federator.v1");
}

/// The encoded descriptors of the protos, served by reflection.
pub const DESCRIPTORS: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/federator_descriptors.bin"));
