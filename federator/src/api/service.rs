//! The `federator.v1.Registry` server: answers from the latest published registry view, with
//! no lock and without touching the registry loop.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use super::pb::registry_server::{Registry, RegistryServer};
use super::pb::{
    ClusterStatusRequest, ClusterStatusResponse, GetServiceRequest, ListServicesRequest,
    ListServicesResponse, Service, WatchRequest,
};
use super::query::{self, BadField, Filter};
use super::{DESCRIPTORS, convert};
use crate::registry::RegistryView;
use crate::runtime::ClusterStatuses;

/// Most concurrent calls (Watch streams included) on one connection.
const MAX_STREAMS_PER_CONNECTION: u32 = 128;
/// TCP and HTTP/2 keepalive.
const KEEPALIVE: Duration = Duration::from_secs(60);
/// Largest answer: what gRPC clients accept by default. Pages and Watch events stay far
/// below; a single service past it is refused rather than sent to fail in the client.
const MAX_MESSAGE_BYTES: usize = 4 << 20;

/// What the API answers from, each kept current by the controller.
#[derive(Clone, Debug)]
pub struct Sources {
    /// The registry as its loop last published it.
    pub views: watch::Receiver<RegistryView>,
    /// Whether the initial sync is done.
    pub ready: watch::Receiver<bool>,
    /// Every registered cluster's status.
    pub clusters: watch::Receiver<ClusterStatuses>,
}

/// Answers registry reads.
struct RegistryApi {
    sources: Sources,
    /// Tells this run's `Watch` versions from an earlier run's.
    epoch: u64,
}

impl RegistryApi {
    /// The latest view, once the initial sync is done: before, an absent host may only not
    /// be listed yet, and a client must not take that for an answer.
    fn view(&self) -> Result<RegistryView, Status> {
        if !*self.sources.ready.borrow() {
            return Err(Status::unavailable(
                "the registry is not synced yet: federator is still reading its clusters",
            ));
        }
        Ok(self.sources.views.borrow().clone())
    }
}

fn invalid(err: BadField) -> Status {
    Status::invalid_argument(err.to_string())
}

#[tonic::async_trait]
impl Registry for RegistryApi {
    async fn get_service(
        &self,
        request: Request<GetServiceRequest>,
    ) -> Result<Response<Service>, Status> {
        let view = self.view()?;
        let name = request.into_inner().host;
        let host = query::host(&name, &view.config().host_suffix).map_err(invalid)?;
        let service = host.as_ref().and_then(|h| view.get(h)).ok_or_else(|| {
            Status::not_found(format!(
                "host {} is not in the registry",
                query::shown(&name)
            ))
        })?;
        Ok(Response::new(convert::service(service)))
    }

    async fn list_services(
        &self,
        request: Request<ListServicesRequest>,
    ) -> Result<Response<ListServicesResponse>, Status> {
        let view = self.view()?;
        let r = request.into_inner();
        let filter =
            Filter::parse(&r.cluster, &r.identity, &r.env, &r.namespace).map_err(invalid)?;
        let page =
            query::page(r.page_size, &r.page_token, &view.config().host_suffix).map_err(invalid)?;
        let mut matching = view
            .services_after(page.after.as_ref())
            .filter(|s| filter.matches(s));
        let services: Vec<Service> = matching
            .by_ref()
            .take(page.size)
            .map(convert::service)
            .collect();
        let next_page_token = match (matching.next(), services.last()) {
            (Some(_), Some(last)) => last.host.clone(),
            _ => String::new(),
        };
        Ok(Response::new(ListServicesResponse {
            services,
            next_page_token,
        }))
    }

    async fn cluster_status(
        &self,
        request: Request<ClusterStatusRequest>,
    ) -> Result<Response<ClusterStatusResponse>, Status> {
        // Cluster states are known from the start: no wait for the initial sync.
        let view = self.sources.views.borrow().clone();
        let statuses = self.sources.clusters.borrow().clone();
        let wanted = request.into_inner().cluster;
        let only = query::cluster(&wanted).map_err(invalid)?;
        if let Some(name) = &only
            && !statuses.contains_key(name)
        {
            return Err(Status::not_found(format!(
                "cluster {} is not registered",
                query::shown(&wanted)
            )));
        }
        let clusters = statuses
            .iter()
            .filter(|(name, _)| only.as_ref().is_none_or(|o| o == *name))
            .map(|(name, status)| convert::cluster(name, status, &view))
            .collect();
        Ok(Response::new(ClusterStatusResponse { clusters }))
    }

    type WatchStream = super::watch::WatchStream;

    async fn watch(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let start =
            super::watch::start(&request.into_inner().from_version, self.epoch).map_err(invalid)?;
        Ok(Response::new(super::watch::stream(
            self.sources.views.clone(),
            self.sources.ready.clone(),
            self.epoch,
            start,
        )))
    }
}

/// Serves the registry API, the gRPC health service (`SERVING` once the initial sync is done)
/// and reflection on `listener` until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    sources: Sources,
    tls: Option<ApiTls>,
) -> Result<(), tonic::transport::Error> {
    let mut ready = sources.ready.clone();
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_not_serving::<RegistryServer<RegistryApi>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(DESCRIPTORS)
        .build_v1()
        .map_err(|err| {
            tracing::error!(error = %err, "gRPC reflection unavailable: the built-in descriptors do not load");
        })
        .ok();
    let epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let api = RegistryServer::new(RegistryApi { sources, epoch })
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
        .max_decoding_message_size(64 * 1024);
    tokio::spawn(async move {
        if ready.wait_for(|r| *r).await.is_ok() {
            health.set_serving::<RegistryServer<RegistryApi>>().await;
        }
    });
    let incoming = tonic::transport::server::TcpIncoming::from(listener)
        .with_keepalive(Some(KEEPALIVE))
        .with_nodelay(Some(true));
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        let mut config = tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(&tls.cert, &tls.key));
        if let Some(ca) = &tls.client_ca {
            // Mutual TLS: a client without a certificate from this CA is refused in the
            // handshake.
            config = config.client_ca_root(tonic::transport::Certificate::from_pem(ca));
        }
        server = server.tls_config(config)?;
    }
    server
        // Bounds per connection (tonic's defaults lift hyper's): streams, reset floods.
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
        .http2_max_local_error_reset_streams(Some(1024))
        // A peer gone without closing is noticed, and its streams end.
        .http2_keepalive_interval(Some(KEEPALIVE))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .add_service(health_service)
        .add_service(api)
        .add_optional_service(reflection)
        .serve_with_incoming(incoming)
        .await
}

/// TLS of the registry API: the server's certificate chain and key (PEM), and the CA that
/// client certificates must chain to, for mutual TLS.
#[derive(Clone)]
pub struct ApiTls {
    /// Certificate chain (PEM).
    pub cert: Vec<u8>,
    /// Private key (PEM).
    pub key: Vec<u8>,
    /// CA of client certificates (PEM): set, every client must present one.
    pub client_ca: Option<Vec<u8>>,
}

impl std::fmt::Debug for ApiTls {
    /// Never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiTls")
            .field("mutual", &self.client_ca.is_some())
            .finish_non_exhaustive()
    }
}
