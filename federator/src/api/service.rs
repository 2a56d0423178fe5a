//! The `federator.v1.Registry` server: answers from the latest published registry view, with
//! no lock and without touching the registry loop.

use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use super::pb::registry_server::{Registry, RegistryServer};
use super::pb::{GetServiceRequest, ListServicesRequest, ListServicesResponse, Service};
use super::query::{self, BadField, Filter};
use super::{DESCRIPTORS, convert};
use crate::registry::RegistryView;

/// Answers registry reads.
struct RegistryApi {
    views: watch::Receiver<RegistryView>,
    ready: watch::Receiver<bool>,
}

impl RegistryApi {
    /// The latest view, once the initial sync is done: before, an absent host may only not
    /// be listed yet, and a client must not take that for an answer.
    fn view(&self) -> Result<RegistryView, Status> {
        if !*self.ready.borrow() {
            return Err(Status::unavailable(
                "the registry is not synced yet: federator is still reading its clusters",
            ));
        }
        Ok(self.views.borrow().clone())
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
        let service = host
            .as_ref()
            .and_then(|h| view.get(h))
            .ok_or_else(|| Status::not_found(format!("host {name:?} is not in the registry")))?;
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
        let services = view
            .services()
            .filter(|s| filter.matches(s))
            .map(convert::service)
            .collect();
        Ok(Response::new(ListServicesResponse { services }))
    }
}

/// Serves the registry API, the gRPC health service (`SERVING` once the initial sync is done)
/// and reflection on `listener` until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    views: watch::Receiver<RegistryView>,
    mut ready: watch::Receiver<bool>,
) -> Result<(), tonic::transport::Error> {
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
    let api = RegistryServer::new(RegistryApi {
        views,
        ready: ready.clone(),
    });
    tokio::spawn(async move {
        if ready.wait_for(|r| *r).await.is_ok() {
            health.set_serving::<RegistryServer<RegistryApi>>().await;
        }
    });
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(api)
        .add_optional_service(reflection)
        .serve_with_incoming(incoming)
        .await
}
