//! The ServiceImport every cluster gets for a clusterset service (MCS API): named after the
//! Service, in the Service's namespace, with its type, ports and clusterset IP.

use std::collections::BTreeMap;

use super::metadata::{HOST_ANNOTATION, ownership_labels};
use super::{Metadata, Rendered};
use crate::mcs::{ServiceImportPort, ServiceImportSpec, ServiceImportType};
use crate::registry::GlobalService;

/// The ServiceImport of `service`, the same in every cluster; `None` for a global host, for
/// a clusterset service no export backs with a Service any more, and for a ClusterSetIP
/// service without a VIP (the VIP range is exhausted: no clusterset IP to give).
pub fn render_service_import(service: &GlobalService) -> Option<Rendered<ServiceImportSpec>> {
    let clusterset = service.clusterset.as_ref()?;
    let (name, namespace) = service.host.clusterset_service()?;
    if service.backends.is_empty() {
        return None;
    }
    let (import_type, ips) = if clusterset.headless {
        (ServiceImportType::Headless, Vec::new())
    } else {
        (
            ServiceImportType::ClusterSetIP,
            vec![service.vip?.to_string()],
        )
    };
    let ports = service
        .ports
        .iter()
        .map(|p| ServiceImportPort {
            name: p.name.to_string(),
            protocol: "TCP".to_owned(),
            port: p.number,
        })
        .collect();
    Some(Rendered {
        metadata: Metadata {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            labels: ownership_labels(service),
            annotations: BTreeMap::from([(
                HOST_ANNOTATION.to_owned(),
                service.host.as_str().to_owned(),
            )]),
        },
        spec: ServiceImportSpec {
            import_type,
            ports,
            ips,
        },
    })
}
