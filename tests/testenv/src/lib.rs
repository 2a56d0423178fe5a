//! Real Kubernetes API servers on one machine, for federator's end-to-end tests and demo.
//!
//! [`TestEnv::start`] starts one etcd and one kube-apiserver per named cluster, all on free
//! loopback ports, writes a kubeconfig per cluster, installs the CRDs from the repository's
//! `crds/` folder and stops every process when dropped (also when a test panics). There are
//! no kubelets or controllers: tests write the Deployments, Services, EndpointSlices and
//! Nodes a real cluster's controllers would, with the helpers in [`objects`].
//! [`TestEnv::start_with_controllers`] adds the real kube-controller-manager and
//! kube-scheduler and kwok ([`controllers`]), so that applied Deployments get Pods and the
//! real EndpointSlice controller writes the slices.
//!
//! [`istio`] adds a real istiod per cluster and upstream Envoys (sidecars, east-west
//! gateways, mTLS backends) fed by it, sharing one mesh PKI.
//!
//! The binaries come from `tests/testenv/setup.sh` (kube-apiserver built from the
//! `k8s.io/kubernetes` Go module at a pinned version, etcd from the etcd server module that
//! version pins), cached under `.cache/`.

mod apiserver;
mod binaries;
mod cluster;
pub mod controllers;
mod crds;
mod env;
mod error;
mod etcd;
pub mod istio;
mod json;
mod kubeconfig;
pub mod netns;
pub mod objects;
mod ports;
mod process;

pub use binaries::{
    Binaries, KUBERNETES_VERSION, helm_version, istio_module_version, kwok_version,
};
pub use cluster::{Object, TestCluster};
pub use env::TestEnv;
pub use error::TestEnvError;
pub use ports::{free_port, is_listening};
