//! What makes a bare kube-apiserver behave like a cluster: the real kube-controller-manager
//! (Deployments become ReplicaSets and Pods, the EndpointSlice controller writes the slices,
//! ServiceAccount token Secrets are filled, Node taints follow readiness), the real
//! kube-scheduler (Pods land on Nodes) and kwok (Nodes it manages report Ready, their Pods
//! become Running with an IP from the Node's `podCIDR`, and deleted Pods go).
//!
//! No kubelet runs: a Pod is "Running" because kwok says so. Only Nodes annotated
//! [`KWOK_NODE_ANNOTATION`] are played by kwok ([`crate::objects::kwok_node`] makes them).

use std::path::Path;
use std::process::Command;

use crate::TestEnvError;
use crate::binaries::Binaries;
use crate::process::Process;

/// The annotation (with value `fake`) that hands a Node to kwok.
pub const KWOK_NODE_ANNOTATION: &str = "kwok.x-k8s.io/node";

/// The controllers kube-controller-manager runs: what a workload needs to get endpoints, and
/// what a remote cluster's ServiceAccount token needs.
const CONTROLLERS: &str = "deployment-controller,replicaset-controller,endpointslice-controller,\
serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller,\
garbage-collector-controller,namespace-controller,node-lifecycle-controller";

/// The controller processes of one cluster; stopped when dropped.
pub(crate) struct Controllers {
    pub(crate) processes: Vec<Process>,
}

/// Everything one cluster's controllers need.
pub(crate) struct Spec<'a> {
    pub(crate) binaries: &'a Binaries,
    pub(crate) cluster: &'a str,
    pub(crate) dir: &'a Path,
    pub(crate) kubeconfig: &'a Path,
    pub(crate) service_account_key: &'a Path,
    pub(crate) root_ca: &'a Path,
}

/// Starts kube-controller-manager, kube-scheduler and kwok for `spec.cluster`. They serve no
/// port of their own (`--secure-port=0`) and elect no leader (one of each per cluster).
pub(crate) fn start(spec: &Spec<'_>) -> Result<Controllers, TestEnvError> {
    let kubeconfig = format!("--kubeconfig={}", spec.kubeconfig.display());
    let cluster = spec.cluster;
    let mut manager = Command::new(spec.binaries.kube_controller_manager()?);
    manager
        .arg(&kubeconfig)
        .arg(format!("--controllers={CONTROLLERS}"))
        .arg(format!(
            "--service-account-private-key-file={}",
            spec.service_account_key.display()
        ))
        .arg(format!("--root-ca-file={}", spec.root_ca.display()))
        .arg("--use-service-account-credentials=false")
        .arg("--leader-elect=false")
        .arg("--secure-port=0")
        .arg("--v=1");
    let mut scheduler = Command::new(spec.binaries.kube_scheduler()?);
    scheduler
        .arg(&kubeconfig)
        .arg("--leader-elect=false")
        .arg("--secure-port=0")
        .arg("--v=1");
    let mut kwok = Command::new(spec.binaries.kwok()?);
    kwok.arg(&kubeconfig)
        .arg(format!(
            "--config={}",
            spec.binaries.kwok_stages()?.display()
        ))
        .arg("--manage-all-nodes=false")
        .arg(format!(
            "--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake"
        ));
    let log = |what: &str| spec.dir.join(format!("{cluster}-{what}.log"));
    Ok(Controllers {
        processes: vec![
            Process::spawn(
                &format!("kube-controller-manager of cluster {cluster}"),
                manager,
                &log("controller-manager"),
            )?,
            Process::spawn(
                &format!("kube-scheduler of cluster {cluster}"),
                scheduler,
                &log("scheduler"),
            )?,
            Process::spawn(&format!("kwok of cluster {cluster}"), kwok, &log("kwok"))?,
        ],
    })
}

impl Controllers {
    /// Fails (with the log's tail) when a controller process has exited.
    pub(crate) fn check_running(&mut self) -> Result<(), TestEnvError> {
        self.processes
            .iter_mut()
            .try_for_each(Process::check_running)
    }

    /// Stops every controller.
    pub(crate) fn stop(&mut self) {
        self.processes.iter_mut().for_each(Process::stop);
    }
}
