use k8s_openapi::api::core::v1::Node;

use super::{IngestError, Ingested};
use crate::model::{Locality, NodeInfo, Object, SmolStr};

const REGION: [&str; 2] = [
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/region",
];
const ZONE: [&str; 2] = [
    "topology.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/zone",
];

/// A Node: its region and zone (current topology labels, else the legacy
/// `failure-domain.beta` ones) and its addresses, external first.
pub fn node(node: &Node) -> Result<Ingested, IngestError> {
    let name = node
        .metadata
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| IngestError::new("Node", "<unnamed>", "metadata.name is missing"))?;
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let pick = |keys: [&str; 2]| {
        keys.iter()
            .find_map(|k| labels.get(*k).filter(|v| !v.is_empty()).cloned())
    };
    let mut addresses: Vec<(u8, String)> = node
        .status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|a| match a.type_.as_str() {
            "ExternalIP" => Some((0, a.address.clone())),
            "InternalIP" => Some((1, a.address.clone())),
            _ => None,
        })
        .collect();
    addresses.sort();
    Ok(Ingested::clean(Object::Node(NodeInfo {
        name,
        locality: Locality {
            region: pick(REGION).map(SmolStr::from),
            zone: pick(ZONE).map(SmolStr::from),
        },
        addresses: addresses.into_iter().map(|(_, a)| a).collect(),
    })))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{NodeAddress, NodeStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn with_labels(labels: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some("n1".into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn locality(node_: &Node) -> Locality {
        match node(node_).unwrap().object {
            Object::Node(n) => n.locality,
            _ => unreachable!(),
        }
    }

    #[test]
    fn current_topology_labels_win() {
        let n = with_labels(&[
            ("topology.kubernetes.io/region", "us-east-1"),
            ("topology.kubernetes.io/zone", "us-east-1a"),
            ("failure-domain.beta.kubernetes.io/region", "old"),
            ("failure-domain.beta.kubernetes.io/zone", "old-a"),
        ]);
        assert_eq!(
            locality(&n).to_istio().as_deref(),
            Some("us-east-1/us-east-1a")
        );
    }

    #[test]
    fn legacy_labels_are_a_fallback() {
        let n = with_labels(&[
            ("failure-domain.beta.kubernetes.io/region", "eu-west-1"),
            ("failure-domain.beta.kubernetes.io/zone", "eu-west-1b"),
        ]);
        assert_eq!(
            locality(&n).to_istio().as_deref(),
            Some("eu-west-1/eu-west-1b")
        );
        assert_eq!(locality(&with_labels(&[])).to_istio(), None);
    }

    #[test]
    fn external_addresses_come_first() {
        let mut n = with_labels(&[]);
        n.status = Some(NodeStatus {
            addresses: Some(vec![
                NodeAddress {
                    address: "10.0.0.5".into(),
                    type_: "InternalIP".into(),
                },
                NodeAddress {
                    address: "n1.local".into(),
                    type_: "Hostname".into(),
                },
                NodeAddress {
                    address: "198.51.100.5".into(),
                    type_: "ExternalIP".into(),
                },
            ]),
            ..Default::default()
        });
        let Object::Node(info) = node(&n).unwrap().object else {
            unreachable!()
        };
        assert_eq!(info.addresses, ["198.51.100.5", "10.0.0.5"]);
    }
}
