//! Envoy bootstraps: what pilot-agent would write for an istio-proxy (sidecar or gateway),
//! and a static one for a backend.
//!
//! What istiod reads from a proxy (node id and metadata), learned by running it:
//! - node id `<type>~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local`, `<type>`
//!   `sidecar` or `router` (gateways); the ip is the proxy's address (`INSTANCE_IPS` too);
//! - `CLUSTER_ID` (must be istiod's cluster), `NAMESPACE`, `NETWORK`, `LABELS` (what
//!   Sidecar/Gateway workload selectors match), `ISTIO_VERSION` (istiod gates features on it),
//!   `INTERCEPTION_MODE: NONE` (no iptables: istiod then builds no virtual 15001/15006
//!   listeners), `SERVICE_ACCOUNT`, `WORKLOAD_NAME`, `NAME`, `MESH_ID`;
//! - gateways: `ROUTER_MODE: sni-dnat` and `REQUESTED_NETWORK_VIEW` (as Istio's east-west
//!   gateway install sets them): istiod then builds the `outbound_.<port>_._.<host>` SNI
//!   clusters that AUTO_PASSTHROUGH listeners forward to, with only that network's endpoints;
//! - the node locality (region, zone), which locality load balancing compares.
//!
//! Certificates come over SDS from the `sds-grpc` cluster (the harness's [`super::sds`]
//! server, in place of pilot-agent), XDS over ADS from the `xds-grpc` cluster (istiod's
//! plaintext port).

use std::net::SocketAddr;

use serde_json::{Value, json};

use super::istiod::ISTIO_VERSION;
use super::pki::{TRUST_DOMAIN, WorkloadCert};
use super::workload::Workload;

/// Which kind of istio-proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProxyKind {
    /// A sidecar.
    Sidecar,
    /// An (east-west) gateway in router mode.
    Router,
}

/// Envoy's admin interface on a port the kernel picks (written to `--admin-address-path`).
fn admin() -> Value {
    json!({"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}})
}

fn grpc_cluster(name: &str, addr: SocketAddr) -> Value {
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                "address": addr.ip().to_string(),
                "port_value": addr.port(),
            }}}}]}],
        },
    })
}

/// The node id istiod parses.
pub(crate) fn node_id(kind: ProxyKind, workload: &Workload) -> String {
    let prefix = match kind {
        ProxyKind::Sidecar => "sidecar",
        ProxyKind::Router => "router",
    };
    let (ns, name) = (&workload.namespace, &workload.name);
    format!(
        "{prefix}~{}~{name}.{ns}~{ns}.svc.cluster.local",
        workload.ip
    )
}

/// The bootstrap of an istio-proxy connected to istiod at `xds`, with certificates from `sds`.
pub(crate) fn proxy(
    kind: ProxyKind,
    workload: &Workload,
    cluster_id: &str,
    network: &str,
    xds: SocketAddr,
    sds: SocketAddr,
) -> Value {
    let mut metadata = json!({
        "NAMESPACE": workload.namespace,
        "CLUSTER_ID": cluster_id,
        "NETWORK": network,
        "LABELS": workload.labels,
        "ISTIO_VERSION": ISTIO_VERSION,
        "INTERCEPTION_MODE": "NONE",
        "INSTANCE_IPS": workload.ip.to_string(),
        "SERVICE_ACCOUNT": workload.service_account,
        "WORKLOAD_NAME": workload.name,
        "NAME": workload.name,
        "MESH_ID": TRUST_DOMAIN,
        "PILOT_SAN": ["istiod.istio-system.svc"],
    });
    if kind == ProxyKind::Router {
        metadata["ROUTER_MODE"] = json!("sni-dnat");
        metadata["REQUESTED_NETWORK_VIEW"] = json!(network);
    }
    let app = workload.labels.get("app").unwrap_or(&workload.name).clone();
    json!({
        "node": {
            "id": node_id(kind, workload),
            "cluster": format!("{app}.{}", workload.namespace),
            "locality": {"region": workload.region, "zone": workload.zone},
            "metadata": metadata,
        },
        "admin": admin(),
        "dynamic_resources": {
            "ads_config": {
                "api_type": "GRPC",
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}],
                "set_node_on_first_message_only": true,
            },
            "cds_config": {"ads": {}, "resource_api_version": "V3"},
            "lds_config": {"ads": {}, "resource_api_version": "V3"},
        },
        "static_resources": {
            "clusters": [grpc_cluster("xds-grpc", xds), grpc_cluster("sds-grpc", sds)],
        },
    })
}

/// Text of one PEM file, inline.
fn inline(text: &str) -> Value {
    json!({"inline_string": text})
}

/// A backend: one listener on `<ip>:<port>` terminating Istio mTLS (the workload's
/// certificate; a client certificate is required and verified against the mesh root; ALPN
/// `istio` accepted) and answering every HTTP request with 200 and `body`, plus the header
/// `x-backend: <name>`.
pub(crate) fn backend(workload: &Workload, port: u16, cert: &WorkloadCert, body: &str) -> Value {
    let tls = json!({
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "require_client_certificate": true,
            "common_tls_context": {
                "alpn_protocols": ["h2", "http/1.1", "istio", "istio-http/1.1", "istio-h2"],
                "tls_certificates": [{
                    "certificate_chain": inline(&cert.chain_pem),
                    "private_key": inline(&cert.key_pem),
                }],
                "validation_context": {"trusted_ca": inline(&cert.root_pem)},
            },
        },
    });
    let hcm = json!({
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "backend",
            "codec_type": "AUTO",
            "route_config": {
                "name": "backend",
                "virtual_hosts": [{
                    "name": "all",
                    "domains": ["*"],
                    "routes": [{
                        "match": {"prefix": "/"},
                        "direct_response": {"status": 200, "body": {"inline_string": body}},
                        "response_headers_to_add": [{
                            "header": {"key": "x-backend", "value": workload.name},
                        }],
                    }],
                }],
            },
            "http_filters": [{
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
            }],
            "access_log": [{
                "name": "envoy.access_loggers.stdout",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"},
            }],
        },
    });
    json!({
        "node": {"id": format!("backend~{}~{}.{}", workload.ip, workload.name, workload.namespace), "cluster": workload.name},
        "admin": admin(),
        "static_resources": {
            "listeners": [{
                "name": "backend",
                "address": {"socket_address": {"address": workload.ip.to_string(), "port_value": port}},
                "filter_chains": [{"filters": [hcm], "transport_socket": tls}],
            }],
        },
    })
}
