//! What federator reads of Istio itself: the system namespace's network label, and users'
//! Gateways that already pass global hosts through the east-west gateway.

use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;

use super::{IngestConfig, IngestError, Ingested, object_key};
use crate::istio::Gateway;
use crate::model::{MeshNamespaceInfo, Object, PassthroughClaimInfo};
use crate::render::{MANAGED_BY_LABEL, MANAGED_BY_VALUE};

/// Istio's label naming the network of a cluster (on its system namespace).
pub const NETWORK_LABEL: &str = "topology.istio.io/network";

/// The Istio system namespace: the network Istio records for the cluster. `None` for any
/// other namespace.
pub fn mesh_namespace(
    namespace: &Namespace,
    config: &IngestConfig,
) -> Result<Option<Ingested>, IngestError> {
    let name = namespace.name_any();
    if name != config.mesh_namespace {
        return Ok(None);
    }
    let network = namespace
        .labels()
        .get(NETWORK_LABEL)
        .filter(|n| !n.is_empty())
        .cloned();
    Ok(Some(Ingested::clean(Object::MeshNamespace(
        MeshNamespaceInfo { name, network },
    ))))
}

/// A Gateway that is not federator's and selects the east-west gateway's pods, with the
/// hosts it serves on the passthrough port: the registry decides whether they claim global
/// hosts (then federator reports it and defers). `None` for every other Gateway.
pub fn passthrough_claim(
    gateway: &Gateway,
    config: &IngestConfig,
) -> Result<Option<Ingested>, IngestError> {
    let key = object_key("Gateway", &gateway.metadata)?;
    if gateway.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY_VALUE) {
        return Ok(None);
    }
    let selector = &gateway.spec.selector;
    let selects_eastwest = !selector.is_empty()
        && selector
            .iter()
            .all(|(k, v)| config.gateway.labels.get(k) == Some(v));
    if !selects_eastwest {
        return Ok(None);
    }
    let hosts: Vec<String> = gateway
        .spec
        .servers
        .iter()
        .filter(|s| s.port.number == u32::from(config.gateway.port))
        .flat_map(|s| s.hosts.iter())
        .cloned()
        .collect();
    if hosts.is_empty() {
        return Ok(None);
    }
    Ok(Some(Ingested::clean(Object::PassthroughClaim(
        PassthroughClaimInfo { key, hosts },
    ))))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;
    use crate::istio::{GatewayPort, GatewayServer, GatewaySpec};

    fn gateway(selector: &[(&str, &str)], port: u32, hosts: &[&str], ours: bool) -> Gateway {
        let labels = ours
            .then(|| BTreeMap::from([(MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned())]));
        Gateway {
            metadata: ObjectMeta {
                name: Some("cross-network-gateway".into()),
                namespace: Some("istio-system".into()),
                labels,
                ..Default::default()
            },
            spec: GatewaySpec {
                selector: selector
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                servers: vec![GatewayServer {
                    port: GatewayPort {
                        number: port,
                        protocol: "TLS".into(),
                        name: "tls".into(),
                    },
                    hosts: hosts.iter().map(|h| h.to_string()).collect(),
                    tls: None,
                }],
            },
        }
    }

    fn claims(gw: &Gateway) -> Option<Vec<String>> {
        match passthrough_claim(gw, &IngestConfig::default())
            .unwrap()
            .map(|i| i.object)
        {
            Some(Object::PassthroughClaim(c)) => Some(c.hosts),
            None => None,
            Some(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_users_gateway_on_the_eastwest_port_is_read_with_its_hosts() {
        let eastwest = [("istio", "eastwestgateway")];
        let gw = gateway(&eastwest, 15443, &["*.local", "*/*.global"], false);
        assert_eq!(
            claims(&gw),
            Some(vec!["*.local".into(), "*/*.global".into()])
        );
    }

    #[test]
    fn other_gateways_are_not_read() {
        let eastwest = [("istio", "eastwestgateway")];
        assert_eq!(claims(&gateway(&eastwest, 443, &["*.global"], false)), None);
        let ingress = [("istio", "ingressgateway")];
        assert_eq!(
            claims(&gateway(&ingress, 15443, &["*.global"], false)),
            None
        );
        assert_eq!(claims(&gateway(&[], 15443, &["*.global"], false)), None);
        // federator's own.
        assert_eq!(
            claims(&gateway(&eastwest, 15443, &["*.global"], true)),
            None
        );
    }

    #[test]
    fn the_network_comes_from_the_istio_namespace_label_only() {
        let ns = |name: &str, network: Option<&str>| Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: network.map(|n| BTreeMap::from([(NETWORK_LABEL.to_owned(), n.to_owned())])),
                ..Default::default()
            },
            ..Default::default()
        };
        let config = IngestConfig::default();
        let read = |n: &Namespace| match mesh_namespace(n, &config).unwrap().map(|i| i.object) {
            Some(Object::MeshNamespace(info)) => Some(info.network),
            _ => None,
        };
        assert_eq!(
            read(&ns("istio-system", Some("net-1"))),
            Some(Some("net-1".into()))
        );
        assert_eq!(read(&ns("istio-system", None)), Some(None));
        assert_eq!(read(&ns("default", Some("net-1"))), None);
    }
}
