//! Pure rendering of the Istio objects a destination cluster needs for each global host.
//!
//! For every host with a ready backend somewhere, a cluster gets a ServiceEntry (the host's
//! VIP and ports; its own backends by Service name, other clusters' through their east-west
//! gateways) and a DestinationRule (mTLS, locality load balancing, outlier detection).
//! Output is deterministic: same registry, same bytes. Objects come out as plain
//! [`Rendered`] specs with their [`Metadata`]; the edge wraps them in Kubernetes objects.

mod destination_rule;
mod gateway;
mod metadata;
mod object;
mod service_entry;
mod service_import;
mod sidecar;

use crate::istio::{DestinationRuleSpec, OutlierDetection, ServiceEntrySpec, SidecarSpec};
use crate::model::ClusterName;
use crate::registry::{GlobalService, RegistryView};

pub use gateway::{EASTWEST_GATEWAY_NAME, EastWestGateway, eastwest_gateway};
pub use metadata::{HOST_ANNOTATION, MANAGED_BY_LABEL, MANAGED_BY_VALUE, ownership_labels};
pub use object::{Metadata, Rendered};
pub use service_import::render_service_import;
pub use sidecar::sidecar_name;

/// Settings for rendering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderOptions {
    /// Namespace the objects go into in every cluster.
    pub namespace: String,
    /// Outlier detection used where a policy does not override it.
    pub outlier_detection: OutlierDetection,
    /// The Gateway for each cluster's east-west gateway; `None` when the mesh already has
    /// one that passes the global hosts.
    pub eastwest_gateway: Option<EastWestGateway>,
    /// Which clusters get a host's objects.
    pub export_scope: ExportScope,
    /// Namespace Istio runs in: Sidecars always let it through.
    pub mesh_namespace: String,
}

/// Which clusters get a host's ServiceEntry and DestinationRule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExportScope {
    /// Every cluster: any workload may call any global host.
    #[default]
    All,
    /// Only clusters where a workload that calls the host's identity runs (as a Dependency
    /// declares), and those where the host runs (their east-west gateway routes it): what
    /// Admiral does, for fleets where most clusters call few hosts.
    Dependents,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            namespace: "federator-sync".into(),
            outlier_detection: OutlierDetection {
                consecutive_5xx_errors: Some(5),
                interval: Some("5s".into()),
                base_ejection_time: Some("30s".into()),
                max_ejection_percent: Some(100),
            },
            eastwest_gateway: Some(EastWestGateway::default()),
            export_scope: ExportScope::All,
            mesh_namespace: "istio-system".into(),
        }
    }
}

/// The objects one host needs in one cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderedHost {
    /// Registers the host with its endpoints.
    pub service_entry: Rendered<ServiceEntrySpec>,
    /// How clients reach those endpoints.
    pub destination_rule: Rendered<DestinationRuleSpec>,
}

/// The objects `host` needs in cluster `destination`, or `None` when the cluster should have
/// none: no ready backend anywhere, no VIP, or no endpoint reachable from there.
pub fn render_host(
    view: &RegistryView,
    service: &GlobalService,
    destination: &ClusterName,
    options: &RenderOptions,
) -> Option<RenderedHost> {
    if service.vip.is_none() || !service.is_serving() || !exported_to(service, destination, options)
    {
        return None;
    }
    let service_entry = service_entry::render(view, service, destination, options)?;
    let destination_rule = destination_rule::render(service, options);
    Some(RenderedHost {
        service_entry,
        destination_rule,
    })
}

/// Whether the export scope sends `service`'s objects to `destination`.
pub fn exported_to(
    service: &GlobalService,
    destination: &ClusterName,
    options: &RenderOptions,
) -> bool {
    if service.clusterset.is_some() {
        // The MCS API imports a clusterset service into every cluster.
        return true;
    }
    match options.export_scope {
        ExportScope::All => true,
        ExportScope::Dependents => {
            service.backends.contains_key(destination)
                || service.rejected.iter().any(|r| &r.cluster == destination)
                || service
                    .dependencies
                    .dependent_clusters
                    .contains(destination)
        }
    }
}

/// The Sidecars that `service`'s workloads in `destination` get when its identity declares
/// its calls, sorted by namespace and name.
pub fn render_sidecars(
    view: &RegistryView,
    service: &GlobalService,
    destination: &ClusterName,
    options: &RenderOptions,
) -> Vec<Rendered<SidecarSpec>> {
    sidecar::render(service, destination, &view.config().host_suffix, options)
}

/// Every host's objects for cluster `destination`, sorted by host.
pub fn render_cluster(
    view: &RegistryView,
    destination: &ClusterName,
    options: &RenderOptions,
) -> Vec<RenderedHost> {
    view.services()
        .filter_map(|service| render_host(view, service, destination, options))
        .collect()
}

#[cfg(test)]
mod tests;
