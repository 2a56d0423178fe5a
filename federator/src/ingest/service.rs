use k8s_openapi::api::core::v1::Service;

use super::{IngestConfig, IngestError, Ingested, created, object_key};
use crate::model::{GatewayInfo, MeshPort, Object, Protocol, ServiceInfo};

/// A Service: the cluster's east-west gateway when it matches the gateway selector,
/// otherwise a possible backend of workloads.
pub fn service(svc: &Service, config: &IngestConfig) -> Result<Ingested, IngestError> {
    let key = object_key("Service", &svc.metadata)?;
    let spec = svc.spec.clone().unwrap_or_default();
    let gw = &config.gateway;
    let labels = svc.metadata.labels.clone().unwrap_or_default();
    if key.namespace == gw.namespace && gw.labels.iter().all(|(k, v)| labels.get(k) == Some(v)) {
        let port = spec
            .ports
            .iter()
            .flatten()
            .find(|p| {
                u16::try_from(p.port).ok() == Some(gw.port) || p.name.as_deref() == Some("tls")
            })
            .ok_or_else(|| {
                IngestError::new(
                    "Service",
                    &key,
                    format!(
                        "east-west gateway has no port {} (or port named tls)",
                        gw.port
                    ),
                )
            })?;
        let mut addresses: Vec<String> = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
            .chain(spec.external_ips.iter().flatten().cloned())
            .filter(|a| !a.is_empty())
            .collect();
        addresses.sort();
        addresses.dedup();
        return Ok(Ingested::clean(Object::Gateway(GatewayInfo {
            key,
            addresses,
            port: u16::try_from(port.port).unwrap_or(gw.port),
            node_port: port.node_port.and_then(|p| u16::try_from(p).ok()),
        })));
    }

    let mut warnings = Vec::new();
    let mut ports = Vec::new();
    for port in spec.ports.iter().flatten() {
        let protocol = port.protocol.as_deref().unwrap_or("TCP");
        let Ok(number) = u16::try_from(port.port) else {
            warnings.push(format!("port {} is out of range and ignored", port.port));
            continue;
        };
        if protocol != "TCP" {
            warnings.push(format!(
                "port {number}/{protocol} ignored: Istio routes TCP only"
            ));
            continue;
        }
        let detected = Protocol::detect(port.name.as_deref(), port.app_protocol.as_deref());
        let name = port
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("{}-{number}", detected.as_istio().to_ascii_lowercase()));
        ports.push(MeshPort::new(name, number, detected));
    }
    ports.sort();
    let headless = spec.cluster_ip.as_deref() == Some("None");
    Ok(Ingested {
        object: Object::Service(ServiceInfo {
            key,
            pinned: spec
                .selector
                .as_ref()
                .is_some_and(|s| s.contains_key(ROLLOUT_HASH_LABEL)),
            selector: selector(spec.selector.unwrap_or_default()).into(),
            ports: ports.into(),
            headless,
            created: created(&svc.metadata),
        }),
        warnings,
    })
}

/// Label Argo Rollouts adds to the selector of the Services it manages, pinning each to one
/// ReplicaSet; pod templates never carry it.
const ROLLOUT_HASH_LABEL: &str = "rollouts-pod-template-hash";

/// A Service's selector as matched against pod templates: without Argo's ReplicaSet pin, so
/// a Rollout's active, preview, stable and canary Services still find its template (which
/// pods each one serves, the EndpointSlices say).
fn selector(
    mut selector: std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    selector.remove(ROLLOUT_HASH_LABEL);
    selector
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        LoadBalancerIngress, LoadBalancerStatus, ServicePort, ServiceSpec, ServiceStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn svc(ns: &str, name: &str, ports: Vec<ServicePort>) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: Some([("app".to_string(), name.to_string())].into()),
                ports: Some(ports),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn port(name: Option<&str>, number: i32, protocol: Option<&str>) -> ServicePort {
        ServicePort {
            name: name.map(Into::into),
            port: number,
            protocol: protocol.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn argos_replica_set_pin_is_left_out_of_the_selector() {
        let mut s = svc("shop", "cart-preview", vec![port(Some("http"), 80, None)]);
        if let Some(spec) = s.spec.as_mut() {
            spec.selector = Some(
                [
                    ("app".to_string(), "cart".to_string()),
                    (
                        "rollouts-pod-template-hash".to_string(),
                        "6d4f8c".to_string(),
                    ),
                ]
                .into(),
            );
        }
        let Object::Service(info) = service(&s, &IngestConfig::default()).unwrap().object else {
            panic!("not a service")
        };
        assert_eq!(
            info.selector,
            [("app".to_string(), "cart".to_string())]
                .into_iter()
                .collect::<crate::model::Labels>()
        );
        assert!(info.pinned, "it serves only a Rollout that names it");
    }

    #[test]
    fn every_tcp_port_becomes_a_mesh_port() {
        let s = svc(
            "shop",
            "cart",
            vec![
                port(Some("http"), 8080, None),
                port(Some("grpc-api"), 9090, Some("TCP")),
                port(Some("dns"), 53, Some("UDP")),
                port(None, 7000, None),
            ],
        );
        let got = service(&s, &IngestConfig::default()).unwrap();
        let Object::Service(info) = got.object else {
            panic!("not a service")
        };
        assert_eq!(
            info.ports.to_vec(),
            vec![
                MeshPort::new("tcp-7000", 7000, Protocol::Tcp),
                MeshPort::new("http", 8080, Protocol::Http),
                MeshPort::new("grpc-api", 9090, Protocol::Grpc),
            ]
        );
        assert_eq!(got.warnings.len(), 1);
        assert!(got.warnings[0].contains("53/UDP"), "{:?}", got.warnings);
    }

    #[test]
    fn gateway_service_yields_addresses_and_port() {
        let mut s = svc(
            "istio-system",
            "istio-eastwestgateway",
            vec![{
                let mut p = port(Some("tls"), 15443, None);
                p.node_port = Some(31443);
                p
            }],
        );
        s.metadata.labels = Some([("istio".into(), "eastwestgateway".into())].into());
        s.spec.as_mut().unwrap().external_ips = Some(vec!["192.0.2.7".into()]);
        s.status = Some(ServiceStatus {
            load_balancer: Some(LoadBalancerStatus {
                ingress: Some(vec![
                    LoadBalancerIngress {
                        ip: Some("203.0.113.10".into()),
                        ..Default::default()
                    },
                    LoadBalancerIngress {
                        hostname: Some("gw.east.example.com".into()),
                        ..Default::default()
                    },
                ]),
            }),
            ..Default::default()
        });
        let got = service(&s, &IngestConfig::default()).unwrap();
        let Object::Gateway(gw) = got.object else {
            panic!("not a gateway")
        };
        assert_eq!(
            gw.addresses,
            ["192.0.2.7", "203.0.113.10", "gw.east.example.com"]
        );
        assert_eq!(gw.port, 15443);
        assert_eq!(gw.node_port, Some(31443));
    }

    #[test]
    fn gateway_without_passthrough_port_is_an_error() {
        let mut s = svc(
            "istio-system",
            "gw",
            vec![port(Some("status"), 15021, None)],
        );
        s.metadata.labels = Some([("istio".into(), "eastwestgateway".into())].into());
        let err = service(&s, &IngestConfig::default()).unwrap_err();
        assert_eq!(err.key, "istio-system/gw");
        assert!(err.reason.contains("15443"), "{err}");
    }

    #[test]
    fn missing_name_is_an_error() {
        let mut s = svc("shop", "cart", vec![]);
        s.metadata.name = None;
        let err = service(&s, &IngestConfig::default()).unwrap_err();
        assert!(err.to_string().contains("metadata.name"), "{err}");
    }
}
