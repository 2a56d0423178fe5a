//! The Gateway that lets a cluster's east-west gateway pass global hosts through.

use std::collections::BTreeMap;

use super::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, Metadata, RenderOptions, Rendered};
use crate::istio::{GatewayPort, GatewayServer, GatewaySpec, ServerTls, ServerTlsMode};
use crate::model::ClusterName;
use crate::registry::RegistryView;

/// Name of the Gateway federator writes into each cluster's sync namespace.
pub const EASTWEST_GATEWAY_NAME: &str = "federator-eastwest";

/// Which east-west gateway pods the Gateway selects and on which port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EastWestGateway {
    /// Labels of the east-west gateway pods.
    pub selector: BTreeMap<String, String>,
    /// Their mTLS passthrough port.
    pub port: u16,
}

impl Default for EastWestGateway {
    fn default() -> Self {
        Self {
            selector: BTreeMap::from([("istio".into(), "eastwestgateway".into())]),
            port: 15443,
        }
    }
}

/// The Gateway `destination` needs so that its east-west gateway accepts Istio mTLS for
/// `*.<suffix>` and the clusterset services (`*.svc.clusterset.local`) with `AUTO_PASSTHROUGH` and routes it by SNI to the local backends; `None`
/// when turned off, when the cluster has no east-west gateway Service, or when a user's
/// Gateway already claims those hosts on that port (federator never fights a user's
/// Gateway; the claim is reported instead).
pub fn eastwest_gateway(
    view: &RegistryView,
    destination: &ClusterName,
    options: &RenderOptions,
) -> Option<Rendered<GatewaySpec>> {
    let settings = options.eastwest_gateway.as_ref()?;
    if !view.has_gateway(destination) || !view.passthrough_claims(destination).is_empty() {
        return None;
    }
    let metadata = Metadata {
        name: EASTWEST_GATEWAY_NAME.to_owned(),
        namespace: options.namespace.clone(),
        labels: BTreeMap::from([(MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned())]),
        annotations: BTreeMap::new(),
    };
    let spec = GatewaySpec {
        selector: settings.selector.clone(),
        servers: vec![GatewayServer {
            port: GatewayPort {
                number: u32::from(settings.port),
                protocol: "TLS".into(),
                name: "tls-federator".into(),
            },
            hosts: vec![
                format!("*.{}", view.config().host_suffix),
                format!("*.{}", crate::model::CLUSTERSET_DOMAIN),
            ],
            tls: Some(ServerTls {
                mode: Some(ServerTlsMode::AutoPassthrough),
            }),
        }],
    };
    Some(Rendered { metadata, spec })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{cluster, gateway, upsert};
    use crate::model::{ObjectKey, PassthroughClaimInfo};
    use crate::registry::{ClusterFinding, Delta, Registry, RegistryConfig};

    fn registry(deltas: impl IntoIterator<Item = Delta>) -> Registry {
        let mut r = Registry::new(RegistryConfig::default());
        for d in deltas {
            r.apply(d);
        }
        r
    }

    fn claim(hosts: &[&str]) -> Delta {
        upsert(
            "east",
            PassthroughClaimInfo {
                key: ObjectKey::new("istio-system", "cross-network-gateway"),
                hosts: hosts.iter().map(|h| h.to_string()).collect(),
            },
        )
    }

    fn render(r: &Registry, options: &RenderOptions) -> Option<Rendered<GatewaySpec>> {
        eastwest_gateway(&r.full_view(), &ClusterName::new("east"), options)
    }

    #[test]
    fn passes_global_hosts_through_the_eastwest_gateway() {
        let r = registry([cluster("east"), upsert("east", gateway(&["203.0.113.1"]))]);
        let gw = render(&r, &RenderOptions::default()).unwrap();
        assert_eq!(gw.metadata.name, EASTWEST_GATEWAY_NAME);
        assert_eq!(gw.metadata.namespace, "federator-sync");
        assert_eq!(
            gw.metadata.labels.get(MANAGED_BY_LABEL).map(String::as_str),
            Some(MANAGED_BY_VALUE)
        );
        let yaml = serde_json::to_value(&gw.spec).unwrap();
        assert_eq!(
            yaml,
            serde_json::json!({
                "selector": {"istio": "eastwestgateway"},
                "servers": [{
                    "port": {"number": 15443, "protocol": "TLS", "name": "tls-federator"},
                    "hosts": ["*.global", "*.svc.clusterset.local"],
                    "tls": {"mode": "AUTO_PASSTHROUGH"},
                }],
            })
        );
    }

    #[test]
    fn left_out_without_a_gateway_service_when_turned_off_or_claimed_by_a_user() {
        let with_gw = [cluster("east"), upsert("east", gateway(&["203.0.113.1"]))];
        assert!(render(&registry([cluster("east")]), &RenderOptions::default()).is_none());
        let off = RenderOptions {
            eastwest_gateway: None,
            ..RenderOptions::default()
        };
        assert!(render(&registry(with_gw.clone()), &off).is_none());

        // Istio's own sample passes only *.local, and a Gateway naming one global host
        // passes only that one: no claim, ours is still needed.
        let mut r = registry(with_gw.clone());
        r.apply(claim(&[
            "*.local",
            "prod.greeting.global",
            "*.global.example",
        ]));
        assert!(render(&r, &RenderOptions::default()).is_some());
        assert!(r.cluster_findings(&ClusterName::new("east")).is_empty());

        // A user's Gateway passing *.global: ours stays out, the claim is reported.
        let changes = r.apply(claim(&["*.local", "*/*.global"]));
        assert!(changes.clusters.contains(&ClusterName::new("east")));
        assert!(render(&r, &RenderOptions::default()).is_none());
        assert_eq!(
            r.cluster_findings(&ClusterName::new("east")),
            [ClusterFinding::PassthroughClaimed {
                gateway: ObjectKey::new("istio-system", "cross-network-gateway"),
                hosts: vec!["*/*.global".into()],
            }]
        );
    }
}
