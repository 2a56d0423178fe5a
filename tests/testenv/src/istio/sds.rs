//! The SDS server the harness runs for each Envoy, in place of Istio's agent (pilot-agent),
//! which is what serves certificates to a real istio-proxy.
//!
//! istiod's generated clusters and listeners reference two secrets through the bootstrap's
//! `sds-grpc` cluster: `default` (the workload's certificate chain and key) and `ROOTCA`
//! (the validation context with the mesh root). This server answers Envoy's SotW
//! `StreamSecrets` for those names from a [`WorkloadCert`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use envoy_types::pb::envoy::config::core::v3::{DataSource, data_source};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, Secret, TlsCertificate, secret,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_server::{
    SecretDiscoveryService, SecretDiscoveryServiceServer,
};
use envoy_types::pb::google::protobuf::Any;
use futures_util::Stream;
use prost::Message;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use super::pki::WorkloadCert;
use crate::TestEnvError;

/// Type URL of an SDS resource.
const SECRET_TYPE: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

/// Istio's name of the workload certificate secret.
pub const WORKLOAD_SECRET: &str = "default";
/// Istio's name of the mesh root secret.
pub const ROOT_SECRET: &str = "ROOTCA";

/// A running SDS server on a loopback port; stops when dropped.
#[derive(Debug)]
pub struct SdsServer {
    addr: SocketAddr,
    requested: Arc<Mutex<BTreeMap<String, bool>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SdsServer {
    /// Serves `cert` on a fresh port of 127.0.0.1 (bound before this returns, so no race).
    pub async fn start(cert: &WorkloadCert) -> Result<Self, TestEnvError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(TestEnvError::io("binding the SDS server"))?;
        let addr = listener
            .local_addr()
            .map_err(TestEnvError::io("binding the SDS server"))?;
        let requested = Arc::new(Mutex::new(BTreeMap::new()));
        let service = Sds {
            secrets: Arc::new(secrets(cert)),
            requested: requested.clone(),
        };
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let task = tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(SecretDiscoveryServiceServer::new(service))
                .serve_with_incoming(incoming)
                .await;
            if let Err(err) = served {
                tracing::warn!("SDS server stopped: {err}");
            }
        });
        Ok(Self {
            addr,
            requested,
            task,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every secret name Envoy asked for, and whether this server has it (for diagnosing a
    /// listener or cluster stuck warming on a secret).
    pub fn requested(&self) -> BTreeMap<String, bool> {
        self.requested.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for SdsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn inline(text: &str) -> Option<DataSource> {
    Some(DataSource {
        specifier: Some(data_source::Specifier::InlineString(text.to_owned())),
        ..Default::default()
    })
}

fn secrets(cert: &WorkloadCert) -> BTreeMap<String, Secret> {
    let workload = Secret {
        name: WORKLOAD_SECRET.into(),
        r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: inline(&cert.chain_pem),
            private_key: inline(&cert.key_pem),
            ..Default::default()
        })),
    };
    let root = Secret {
        name: ROOT_SECRET.into(),
        r#type: Some(secret::Type::ValidationContext(
            CertificateValidationContext {
                trusted_ca: inline(&cert.root_pem),
                ..Default::default()
            },
        )),
    };
    [workload, root]
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect()
}

struct Sds {
    secrets: Arc<BTreeMap<String, Secret>>,
    requested: Arc<Mutex<BTreeMap<String, bool>>>,
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

impl Sds {
    fn response(&self, names: &[String], nonce: u64) -> DiscoveryResponse {
        let resources = names
            .iter()
            .filter_map(|name| self.secrets.get(name))
            .map(|secret| Any {
                type_url: SECRET_TYPE.into(),
                value: secret.encode_to_vec(),
            })
            .collect();
        DiscoveryResponse {
            version_info: "1".into(),
            resources,
            type_url: SECRET_TYPE.into(),
            nonce: nonce.to_string(),
            ..Default::default()
        }
    }
}

#[tonic::async_trait]
impl SecretDiscoveryService for Sds {
    type DeltaSecretsStream = ResponseStream<DeltaDiscoveryResponse>;
    type StreamSecretsStream = ResponseStream<DiscoveryResponse>;

    async fn stream_secrets(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamSecretsStream>, Status> {
        let mut requests = request.into_inner();
        let (tx, rx) = mpsc::unbounded_channel();
        let this = Sds {
            secrets: self.secrets.clone(),
            requested: self.requested.clone(),
        };
        tokio::spawn(async move {
            let mut sent: Option<Vec<String>> = None;
            let mut nonce = 0;
            while let Ok(Some(req)) = requests.message().await {
                if let Some(error) = &req.error_detail {
                    tracing::warn!(
                        "Envoy rejected secrets {:?}: {}",
                        req.resource_names,
                        error.message
                    );
                }
                let mut names = req.resource_names.clone();
                names.sort();
                if let Ok(mut requested) = this.requested.lock() {
                    for name in &names {
                        requested.insert(name.clone(), this.secrets.contains_key(name));
                    }
                }
                if sent.as_ref() == Some(&names) {
                    continue; // an ACK (or NACK) of what we sent
                }
                nonce += 1;
                if tx.send(Ok(this.response(&names, nonce))).is_err() {
                    break;
                }
                sent = Some(names);
            }
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn delta_secrets(
        &self,
        _request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaSecretsStream>, Status> {
        Err(Status::unimplemented(
            "the test SDS server speaks SotW only",
        ))
    }

    async fn fetch_secrets(
        &self,
        request: Request<DiscoveryRequest>,
    ) -> Result<Response<DiscoveryResponse>, Status> {
        Ok(Response::new(
            self.response(&request.into_inner().resource_names, 1),
        ))
    }
}
