//! Clients for registered clusters, built so that nothing a cluster Secret holds can stall
//! federator or leak a credential.
//!
//! kube would run a kubeconfig's `exec` plugin synchronously while building the client, on
//! whatever task builds it, with no timeout, and its errors quote the command and its
//! environment. Here the plugin is taken out of the kubeconfig and run by [`exec`] instead:
//! lazily, on the first request of that cluster's own tasks, with a timeout, killed when it
//! overruns, its output never reported. Every error that leaves this module is reduced to
//! fixed words ([`describe`]).

mod auth_layer;
pub mod describe;
pub mod exec;

use std::time::Duration;

use kube::Client;
use kube::client::ClientBuilder;
use kube::config::{ExecConfig, Kubeconfig};

use crate::clusters::ClusterEntry;
use crate::model::ClusterName;

/// How clients for registered clusters are built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectSettings {
    /// TCP connect timeout: an unreachable cluster must fail fast.
    pub connect_timeout: Duration,
    /// How long an `exec` credential plugin may run before it is killed.
    pub exec_timeout: Duration,
}

impl Default for ConnectSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            exec_timeout: Duration::from_secs(10),
        }
    }
}

/// Why no client could be built for a cluster; the reason quotes nothing of the kubeconfig.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cluster {cluster}: {reason}")]
pub struct ConnectError {
    /// The cluster.
    pub cluster: ClusterName,
    /// What is wrong, in fixed words.
    pub reason: String,
}

/// A client for `entry`. Never runs anything: an `exec` plugin runs on the client's first
/// request, in the tasks of that cluster alone.
pub async fn connect(
    entry: &ClusterEntry,
    settings: &ConnectSettings,
) -> Result<Client, ConnectError> {
    let error = |reason: String| ConnectError {
        cluster: entry.info.name.clone(),
        reason,
    };
    let mut kubeconfig = entry.kubeconfig.clone();
    let plugin = take_exec(&mut kubeconfig);
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| error(describe::kubeconfig_error(&e)))?;
    config.connect_timeout = Some(settings.connect_timeout);
    let builder = ClientBuilder::try_from(config).map_err(|e| error(describe::kube_error(&e)))?;
    Ok(match plugin {
        None => builder.build(),
        Some(plugin) => {
            let source = exec::TokenSource::new(exec::ExecPlugin::from_config(
                &plugin,
                settings.exec_timeout,
            ));
            builder
                .with_layer(&auth_layer::ExecAuthLayer::new(source))
                .build()
        }
    })
}

/// Removes the `exec` section of the user the current context uses, returning it.
fn take_exec(kubeconfig: &mut Kubeconfig) -> Option<ExecConfig> {
    let (_, context) = crate::clusters::current_context(kubeconfig)?;
    let user = context?.user.clone()?;
    kubeconfig
        .auth_infos
        .iter_mut()
        .find(|a| a.name == user)?
        .auth_info
        .as_mut()?
        .exec
        .take()
}
