//! Small builders for model objects, so tests and benchmarks read like the cluster they
//! describe: `service("shop", "cart").port("http", 8080)`.

use std::collections::BTreeMap;

use crate::model::{
    ClusterIdInfo, ClusterInfo, ClusterName, DependencyInfo, EndpointSliceInfo, GatewayInfo,
    Locality, MeshNamespaceInfo, MeshPort, NodeInfo, Object, ObjectKey, ObjectRef,
    PassthroughClaimInfo, PolicyInfo, PolicySource, Protocol, ReadyEndpoint, RejectedInfo,
    RolloutRole, ServiceInfo, SmolStr, TrafficPolicy, WorkloadInfo, WorkloadKind,
};
use crate::registry::Delta;

/// A Service selecting `app=<name>`, without ports yet.
pub fn service(namespace: &str, name: &str) -> ServiceInfo {
    ServiceInfo {
        key: ObjectKey::new(namespace, name),
        selector: BTreeMap::from([("app".to_owned(), name.to_owned())]).into(),
        ports: Default::default(),
        headless: false,
        created: None,
        pinned: false,
    }
}

impl ServiceInfo {
    /// Adds a port; the protocol is detected from the name as for a real Service.
    pub fn port(mut self, name: &str, number: u16) -> Self {
        let mut ports = self.ports.to_vec();
        ports.push(MeshPort::new(
            name,
            number,
            Protocol::detect(Some(name), None),
        ));
        ports.sort();
        self.ports = ports.into();
        self
    }

    /// Sets the creation time (seconds).
    pub fn created(mut self, seconds: i64) -> Self {
        self.created = Some(seconds);
        self
    }

    /// Replaces the selector.
    pub fn selector(mut self, pairs: &[(&str, &str)]) -> Self {
        self.selector = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self
    }

    /// Makes the Service headless.
    pub fn headless(mut self) -> Self {
        self.headless = true;
        self
    }
}

/// A ServiceExport of the Service `namespace/name`, created at `created` (seconds).
pub fn export(namespace: &str, name: &str, created: i64) -> WorkloadInfo {
    crate::model::service_export(ObjectKey::new(namespace, name), Some(created), Some(1))
}

/// A Deployment `<name>` with pod label `app=<name>` and the given identity and env.
pub fn workload(namespace: &str, name: &str, identity: &str, env: &str) -> WorkloadInfo {
    WorkloadInfo {
        kind: WorkloadKind::Deployment,
        key: ObjectKey::new(namespace, name),
        identity: identity.to_ascii_lowercase().into(),
        env: env.to_ascii_lowercase().into(),
        spelling: if format!("{env}{identity}")
            .chars()
            .any(|c| c.is_ascii_uppercase())
        {
            format!("{env}.{identity}").into()
        } else {
            SmolStr::default()
        },
        created: None,
        pod_labels: BTreeMap::from([("app".to_owned(), name.to_owned())]).into(),
        service: None,
        rollout_role: None,
        generation: None,
        canary_weight: None,
    }
}

/// An EndpointSlice of `service` with one ready endpoint per `(node, zone)`, each with an
/// address derived from the slice's name and its position (so slices do not share
/// addresses), on target ports equal to the Service's.
pub fn slice(
    namespace: &str,
    name: &str,
    service: &str,
    ready: &[(&str, &str)],
) -> EndpointSliceInfo {
    let seed = name
        .bytes()
        .chain(namespace.bytes())
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    EndpointSliceInfo {
        key: ObjectKey::new(namespace, name),
        service: service.into(),
        ports: Default::default(),
        ready: ready
            .iter()
            .enumerate()
            .map(|(i, (node, zone))| ReadyEndpoint {
                address: format!("10.{}.{}.{}", seed % 251, (i + 1) / 250, (i + 1) % 250).into(),
                node: (!node.is_empty()).then(|| SmolStr::new(node)),
                zone: (!zone.is_empty()).then(|| SmolStr::new(zone)),
                hostname: None,
            })
            .collect(),
    }
}

/// A Node in `region`/`zone` with one address.
pub fn node(name: &str, region: &str, zone: &str, address: &str) -> NodeInfo {
    NodeInfo {
        name: name.to_owned(),
        locality: Locality {
            region: Some(region.into()),
            zone: Some(zone.into()),
        },
        addresses: vec![address.to_owned()],
    }
}

/// An east-west gateway Service publishing `addresses` on 15443.
pub fn gateway(addresses: &[&str]) -> GatewayInfo {
    GatewayInfo {
        key: ObjectKey::new("istio-system", "istio-eastwestgateway"),
        addresses: addresses.iter().map(|a| a.to_string()).collect(),
        port: 15443,
        node_port: None,
    }
}

/// Registers a cluster on its own network.
pub fn cluster(name: &str) -> Delta {
    Delta::UpsertCluster(ClusterInfo {
        network: Some(format!("net-{name}")),
        ..ClusterInfo::new(name)
    })
}

/// An upsert of `object` in `cluster`.
pub fn upsert(cluster: &str, object: impl Into<Object>) -> Delta {
    Delta::Upsert(ClusterName::new(cluster), object.into())
}

/// The usual trio for one workload: Deployment, Service with `ports`, EndpointSlice with
/// `ready` endpoints, all named `name` in `namespace`.
pub fn app(
    cluster: &str,
    namespace: &str,
    name: &str,
    identity: &str,
    env: &str,
    ports: &[(&str, u16)],
    ready: &[(&str, &str)],
) -> Vec<Delta> {
    let svc = ports
        .iter()
        .fold(service(namespace, name), |s, (port, number)| {
            s.port(port, *number)
        });
    vec![
        upsert(cluster, workload(namespace, name, identity, env)),
        upsert(cluster, svc),
        upsert(cluster, slice(namespace, &format!("{name}-1"), name, ready)),
    ]
}

/// `greeting` (identity `greeting`, env `prod`, HTTP on 8080) in namespace `sample` of
/// `cluster`, with `ready` endpoints: the workload most tests need.
pub fn greeting(cluster: &str, ready: &[(&str, &str)]) -> Vec<Delta> {
    app(
        cluster,
        "sample",
        "greeting",
        "greeting",
        "prod",
        &[("http", 8080)],
        ready,
    )
}

macro_rules! into_object {
    ($($ty:ident => $variant:ident),* $(,)?) => {
        $(impl From<$ty> for Object {
            fn from(value: $ty) -> Self {
                Object::$variant(value)
            }
        })*
    };
}

into_object! {
    ServiceInfo => Service,
    EndpointSliceInfo => EndpointSlice,
    WorkloadInfo => Workload,
    NodeInfo => Node,
    GatewayInfo => Gateway,
    PolicyInfo => Policy,
    MeshNamespaceInfo => MeshNamespace,
    PassthroughClaimInfo => PassthroughClaim,
    DependencyInfo => Dependency,
}

/// A Dependency `name` in namespace `team`: `source` calls `destinations`.
pub fn dependency(name: &str, source: &str, destinations: &[&str]) -> DependencyInfo {
    let mut destinations: Vec<String> = destinations.iter().map(|d| d.to_string()).collect();
    destinations.sort();
    destinations.dedup();
    DependencyInfo {
        api: crate::model::PolicySource::Federator,
        key: ObjectKey::new("team", name),
        source: source.to_owned(),
        destinations,
        generation: Some(1),
    }
}

/// One object of every kind, each field that can be set set: what a test of every kind
/// (publishing, references) runs through.
pub fn every_kind_of_object() -> Vec<Object> {
    let mut rollout = workload("shop", "cart", "Cart", "prod");
    rollout.kind = WorkloadKind::Rollout;
    rollout.rollout_role = Some((RolloutRole::Canary, "cart-canary".into()));
    rollout.canary_weight = Some(20);
    rollout.created = Some(1_700_000_000);
    let mut target = slice("shop", "cart-1", "cart", &[("n1", "z1"), ("", "")]);
    target.ports = std::collections::BTreeMap::from([("http".to_owned(), 8080)]).into();
    vec![
        Object::Service(service("shop", "cart").port("http", 80).port("grpc", 9090)),
        Object::EndpointSlice(target),
        Object::Workload(workload("shop", "pay", "pay", "prod")),
        Object::Workload(rollout),
        Object::Node(node("n1", "us-east-1", "us-east-1a", "10.0.0.1")),
        Object::Gateway(gateway(&["203.0.113.7"])),
        Object::Policy(PolicyInfo {
            api: PolicySource::Admiral,
            key: ObjectKey::new("shop", "gtp"),
            identity: "cart".into(),
            env: Some("prod".into()),
            policy: TrafficPolicy::default(),
            created: Some(1),
            generation: Some(2),
            ignored: vec!["dns prefix".into()],
        }),
        Object::MeshNamespace(MeshNamespaceInfo {
            name: "istio-system".into(),
            network: Some("net-east".into()),
        }),
        Object::PassthroughClaim(PassthroughClaimInfo {
            key: ObjectKey::new("istio-system", "cross-network"),
            hosts: vec!["*.global".into()],
        }),
        Object::Dependency(DependencyInfo {
            api: PolicySource::Federator,
            key: ObjectKey::new("shop", "deps"),
            source: "cart".into(),
            destinations: vec!["pay".into()],
            generation: None,
        }),
        Object::Rejected(RejectedInfo {
            reference: ObjectRef::Policy(ObjectKey::new("shop", "bad")),
            generation: Some(3),
            reason: "no identity".into(),
        }),
        Object::ClusterId(ClusterIdInfo {
            value: "east-1".into(),
        }),
    ]
}
