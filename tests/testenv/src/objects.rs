//! Kubernetes objects as a real cluster would hold them, for tests to write: there are no
//! controllers here, so tests create the EndpointSlices and Nodes themselves.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, Namespace, Node, NodeAddress, NodeStatus, PodSpec, PodTemplateSpec, Service,
    ServicePort, ServiceSpec,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn meta(namespace: Option<&str>, name: &str, pairs: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        labels: (!pairs.is_empty()).then(|| labels(pairs)),
        ..Default::default()
    }
}

/// A Namespace.
pub fn namespace(name: &str) -> Namespace {
    Namespace {
        metadata: meta(None, name, &[]),
        ..Default::default()
    }
}

/// A Deployment `name` whose pods carry `app=<name>`, `identity` and `env` labels.
pub fn deployment(namespace: &str, name: &str, identity: &str, env: &str) -> Deployment {
    let pod_labels = [("app", name), ("identity", identity), ("env", env)];
    Deployment {
        metadata: meta(Some(namespace), name, &[("app", name)]),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(labels(&[("app", name)])),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(&pod_labels)),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: name.to_owned(),
                        image: Some(format!("registry.example.com/{name}:1.0")),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

/// A ClusterIP Service selecting `app=<name>` with `(port name, number)` ports.
pub fn service(namespace: &str, name: &str, ports: &[(&str, i32)]) -> Service {
    Service {
        metadata: meta(Some(namespace), name, &[("app", name)]),
        spec: Some(ServiceSpec {
            selector: Some(labels(&[("app", name)])),
            ports: Some(
                ports
                    .iter()
                    .map(|(port_name, number)| ServicePort {
                        name: Some((*port_name).to_owned()),
                        port: *number,
                        protocol: Some("TCP".into()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        status: None,
    }
}

/// One endpoint of an EndpointSlice.
#[derive(Debug, Clone)]
pub struct Ep<'a> {
    /// Pod IP.
    pub ip: &'a str,
    /// Node it runs on.
    pub node: &'a str,
    /// Zone of that node.
    pub zone: &'a str,
    /// Whether it passes its readiness probe.
    pub ready: bool,
}

/// The EndpointSlice the EndpointSlice controller would write for `service`.
pub fn endpoint_slice(
    namespace: &str,
    service: &str,
    ports: &[(&str, i32)],
    endpoints: &[Ep<'_>],
) -> EndpointSlice {
    EndpointSlice {
        metadata: meta(
            Some(namespace),
            &format!("{service}-abcde"),
            &[
                ("kubernetes.io/service-name", service),
                (
                    "endpointslice.kubernetes.io/managed-by",
                    "endpointslice-controller.k8s.io",
                ),
            ],
        ),
        address_type: "IPv4".into(),
        endpoints: endpoints
            .iter()
            .map(|ep| Endpoint {
                addresses: vec![ep.ip.to_owned()],
                conditions: Some(EndpointConditions {
                    ready: Some(ep.ready),
                    serving: Some(ep.ready),
                    terminating: Some(false),
                }),
                node_name: Some(ep.node.to_owned()),
                zone: Some(ep.zone.to_owned()),
                ..Default::default()
            })
            .collect(),
        ports: Some(
            ports
                .iter()
                .map(|(name, number)| EndpointPort {
                    name: Some((*name).to_owned()),
                    port: Some(*number),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                })
                .collect(),
        ),
    }
}

/// A Node in `region`/`zone` with an internal IP.
pub fn node(name: &str, region: &str, zone: &str, ip: &str) -> Node {
    Node {
        metadata: meta(
            None,
            name,
            &[
                ("kubernetes.io/hostname", name),
                ("topology.kubernetes.io/region", region),
                ("topology.kubernetes.io/zone", zone),
            ],
        ),
        spec: None,
        status: Some(NodeStatus {
            addresses: Some(vec![NodeAddress {
                address: ip.to_owned(),
                type_: "InternalIP".into(),
            }]),
            ..Default::default()
        }),
    }
}

/// A Node played by kwok ([`crate::controllers`]) in `region`/`zone`: it becomes Ready and its
/// Pods get addresses from `pod_cidr` (say `10.1.1.0/24`), as a kubelet with that range would.
pub fn kwok_node(name: &str, region: &str, zone: &str, pod_cidr: &str) -> Node {
    let mut node = node(name, region, zone, "");
    node.status = None;
    node.metadata.annotations = Some(labels(&[(
        crate::controllers::KWOK_NODE_ANNOTATION,
        "fake",
    )]));
    node.spec = Some(k8s_openapi::api::core::v1::NodeSpec {
        pod_cidr: Some(pod_cidr.to_owned()),
        ..Default::default()
    });
    node
}

/// Istio's east-west gateway Service (`istio-system/istio-eastwestgateway`, port 15443).
pub fn gateway_service() -> Service {
    let mut svc = service(
        "istio-system",
        "istio-eastwestgateway",
        &[("status-port", 15021), ("tls", 15443)],
    );
    svc.metadata.labels = Some(labels(&[
        ("istio", "eastwestgateway"),
        ("app", "istio-eastwestgateway"),
    ]));
    if let Some(spec) = svc.spec.as_mut() {
        spec.type_ = Some("LoadBalancer".into());
        spec.selector = Some(labels(&[("istio", "eastwestgateway")]));
    }
    svc
}
