use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::{IngestError, Ingested, object_key};
use crate::model::{EndpointLocation, EndpointSliceInfo, Object};

/// Label that ties an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// An EndpointSlice: the locations of its ready endpoints (`ready` unset counts as ready,
/// as the API defines).
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
        let location = EndpointLocation {
            node: endpoint.node_name.clone(),
            zone: endpoint.zone.clone(),
        };
        ready.extend(std::iter::repeat_n(location, endpoint.addresses.len()));
    }
    Ok(Ingested::clean(Object::EndpointSlice(EndpointSliceInfo {
        key,
        service,
        ready,
    })))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn endpoint(ready: Option<bool>, zone: &str) -> Endpoint {
        Endpoint {
            addresses: vec!["10.0.0.1".into()],
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
            ports: None,
        };
        let got = endpoint_slice(&slice).unwrap();
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
