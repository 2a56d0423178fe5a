//! Istio objects the harness's Envoys need, as JSON for [`crate::TestCluster::apply_json`].

use std::net::Ipv4Addr;

use serde_json::{Value, json};

use super::istiod::ISTIO_SYSTEM;
use super::workload::Workload;

/// The port of Istio's east-west gateways for mTLS passthrough.
pub const EASTWEST_PORT: u16 = 15443;

/// A `Sidecar` for `workload` (selected by its `app` label) that makes it reachable without
/// iptables: one egress listener bound to the workload's ip, `captureMode: NONE`, on `port`
/// (HTTP, named `http`), importing every host (`*/*`). istiod names that listener
/// `<ip>_<port>`; requests sent there with a `Host` header go to that host's cluster.
pub fn sidecar_egress(workload: &Workload, port: u16) -> Value {
    let app = workload
        .labels
        .get("app")
        .cloned()
        .unwrap_or_else(|| workload.name.clone());
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "Sidecar",
        "metadata": {"name": format!("{}-egress", workload.name), "namespace": workload.namespace},
        "spec": {
            "workloadSelector": {"labels": {"app": app}},
            "egress": [{
                "port": {"number": port, "protocol": "HTTP", "name": "http"},
                "bind": workload.ip.to_string(),
                "captureMode": "NONE",
                "hosts": ["*/*"],
            }],
        },
    })
}

/// The workload of an east-west gateway as Istio's `eastwest-gateway` install names and
/// labels it (`istio-system/istio-eastwestgateway-x`, labels `istio: eastwestgateway`,
/// `app: istio-eastwestgateway`), at `ip` in `region`/`zone`.
pub fn eastwest_gateway_workload(ip: Ipv4Addr, region: &str, zone: &str) -> Workload {
    let mut workload = Workload::new(ISTIO_SYSTEM, "istio-eastwestgateway-x", ip)
        .in_locality(region, zone)
        .with_service_account("istio-eastwestgateway-service-account")
        .with_label("istio", "eastwestgateway");
    workload
        .labels
        .insert("app".into(), "istio-eastwestgateway".into());
    workload
}

/// The `Gateway` of an east-west gateway: port 15443, `protocol: TLS`,
/// `tls.mode: AUTO_PASSTHROUGH`, for `hosts` (say `["*.global"]`), selecting
/// `istio: eastwestgateway`. With `bind`, istiod binds the listener to that ip only (so
/// several gateways can run on one machine); without, to `0.0.0.0:15443`.
pub fn eastwest_gateway(hosts: &[&str], bind: Option<Ipv4Addr>) -> Value {
    let mut server = json!({
        "port": {"number": EASTWEST_PORT, "name": "tls", "protocol": "TLS"},
        "tls": {"mode": "AUTO_PASSTHROUGH"},
        "hosts": hosts,
    });
    if let Some(ip) = bind {
        server["bind"] = json!(ip.to_string());
    }
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "cross-network-gateway", "namespace": ISTIO_SYSTEM},
        "spec": {
            "selector": {"istio": "eastwestgateway"},
            "servers": [server],
        },
    })
}
