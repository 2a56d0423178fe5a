use std::collections::BTreeMap;

use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::{IngestError, Ingested, object_key};
use crate::model::{EndpointSliceInfo, Object, ReadyEndpoint, SmolStr};

/// Label that ties an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// An EndpointSlice: its ready endpoints (`ready` unset counts as ready, as the API
/// defines) with their addresses and locations, and the ports they listen on. Ports without
/// a number (a slice of a Service whose target port names a container port no pod has)
/// are left out with a warning.
pub fn endpoint_slice(slice: &EndpointSlice) -> Result<Ingested, IngestError> {
    let key = object_key("EndpointSlice", &slice.metadata)?;
    let service = slice
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SERVICE_NAME_LABEL))
        .filter(|s| !s.is_empty())
        .cloned()
        .ok_or_else(|| {
            IngestError::new(
                "EndpointSlice",
                &key,
                format!("label {SERVICE_NAME_LABEL} is missing"),
            )
        })?;
    let mut warnings = Vec::new();
    let mut ports = BTreeMap::new();
    for port in slice.ports.iter().flatten() {
        let name = port.name.clone().unwrap_or_default();
        match port.port.map(u16::try_from) {
            Some(Ok(number)) if number > 0 => {
                ports.insert(name, number);
            }
            _ => warnings.push(format!("port {name:?} has no usable number and is ignored")),
        }
    }
    let mut ready = Vec::new();
    for endpoint in &slice.endpoints {
        let is_ready = endpoint
            .conditions
            .as_ref()
            .and_then(|c| c.ready)
            .unwrap_or(true);
        if !is_ready {
            continue;
        }
        ready.extend(endpoint.addresses.iter().map(|address| ReadyEndpoint {
            address: address.into(),
            node: endpoint.node_name.as_deref().map(SmolStr::new),
            zone: endpoint.zone.as_deref().map(SmolStr::new),
            hostname: endpoint.hostname.as_deref().map(SmolStr::new),
        }));
    }
    ready.sort();
    ready.dedup_by(|a, b| a.address == b.address);
    // The registry keeps it as it is.
    ready.shrink_to_fit();
    Ok(Ingested {
        object: Object::EndpointSlice(EndpointSliceInfo {
            key,
            service: service.into(),
            ports: ports.into(),
            ready,
        }),
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn endpoint(ready: Option<bool>, zone: &str) -> Endpoint {
        Endpoint {
            addresses: vec![format!(
                "10.0.0.{}",
                zone.len() + zone.as_bytes()[0] as usize
            )],
            conditions: Some(EndpointConditions {
                ready,
                ..Default::default()
            }),
            zone: Some(zone.into()),
            node_name: Some(format!("node-{zone}")),
            ..Default::default()
        }
    }

    #[test]
    fn counts_ready_and_unknown_endpoints_only() {
        let slice = EndpointSlice {
            metadata: ObjectMeta {
                name: Some("cart-abc".into()),
                namespace: Some("shop".into()),
                labels: Some([(SERVICE_NAME_LABEL.to_string(), "cart".to_string())].into()),
                ..Default::default()
            },
            address_type: "IPv4".into(),
            endpoints: vec![
                endpoint(Some(true), "a"),
                endpoint(None, "b"),
                endpoint(Some(false), "c"),
            ],
            ports: Some(vec![
                k8s_openapi::api::discovery::v1::EndpointPort {
                    name: Some("http".into()),
                    port: Some(8081),
                    ..Default::default()
                },
                k8s_openapi::api::discovery::v1::EndpointPort {
                    name: Some("broken".into()),
                    port: None,
                    ..Default::default()
                },
            ]),
        };
        let got = endpoint_slice(&slice).unwrap();
        assert_eq!(got.warnings.len(), 1, "{:?}", got.warnings);
        let Object::EndpointSlice(info) = got.object else {
            panic!("wrong object")
        };
        assert_eq!(info.service, "cart");
        let zones: Vec<_> = info
            .ready
            .iter()
            .map(|e| e.zone.as_deref().unwrap())
            .collect();
        assert_eq!(zones, ["a", "b"]);
        let addresses: Vec<_> = info.ready.iter().map(|e| e.address.as_str()).collect();
        assert_eq!(addresses, ["10.0.0.98", "10.0.0.99"]);
        assert_eq!(info.ports.iter().collect::<Vec<_>>(), [("http", 8081)]);
    }

    #[test]
    fn slice_without_service_label_is_an_error() {
        let slice = EndpointSlice {
            metadata: ObjectMeta {
                name: Some("orphan".into()),
                namespace: Some("shop".into()),
                ..Default::default()
            },
            address_type: "IPv4".into(),
            endpoints: vec![],
            ports: None,
        };
        let err = endpoint_slice(&slice).unwrap_err();
        assert_eq!(
            err.to_string(),
            "EndpointSlice shop/orphan: label kubernetes.io/service-name is missing"
        );
    }
}
