//! `/healthz`, `/readyz` and `/metrics`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::metrics::Metrics;

/// What `/readyz` checks.
#[derive(Clone)]
pub(crate) struct Health {
    /// The initial sync is done.
    pub(crate) ready: watch::Receiver<bool>,
    /// The DNS server (if any) still serves.
    pub(crate) dns_alive: watch::Receiver<bool>,
}

#[derive(Clone)]
struct HttpState {
    health: Health,
    metrics: Arc<Metrics>,
}

/// Serves health and metrics on `listener` until the task is dropped.
pub(crate) async fn serve(
    listener: TcpListener,
    health: Health,
    metrics: Arc<Metrics>,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(HttpState { health, metrics });
    axum::serve(listener, app).await
}

async fn readyz(State(state): State<HttpState>) -> (StatusCode, &'static str) {
    if !*state.health.dns_alive.borrow() {
        (StatusCode::SERVICE_UNAVAILABLE, "the DNS server stopped")
    } else if *state.health.ready.borrow() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "initial sync in progress")
    }
}

async fn metrics_text(
    State(state): State<HttpState>,
) -> ([(&'static str, &'static str); 1], String) {
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn readyz_fails_once_dns_stopped_even_after_the_sync() {
        let (ready_tx, ready) = watch::channel(false);
        let (dns_tx, dns_alive) = watch::channel(true);
        let state = HttpState {
            health: Health { ready, dns_alive },
            metrics: Arc::new(Metrics::default()),
        };
        assert_eq!(
            readyz(State(state.clone())).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        ready_tx.send_replace(true);
        assert_eq!(readyz(State(state.clone())).await.0, StatusCode::OK);
        dns_tx.send_replace(false);
        let (code, body) = readyz(State(state)).await;
        assert_eq!(
            (code, body),
            (StatusCode::SERVICE_UNAVAILABLE, "the DNS server stopped")
        );
    }
}
