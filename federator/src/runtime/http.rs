//! `/healthz`, `/readyz` and `/metrics`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::watch_report::{WatchHealths, degraded_lines};
use crate::metrics::Metrics;

/// What `/readyz` checks.
#[derive(Clone)]
pub(crate) struct Health {
    /// The initial sync is done.
    pub(crate) ready: watch::Receiver<bool>,
    /// The DNS server (if any) still serves.
    pub(crate) dns_alive: watch::Receiver<bool>,
    /// Kinds clusters cannot read: shown, but they do not make the process unready.
    pub(crate) watch_health: watch::Receiver<WatchHealths>,
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

/// 200 once the initial sync is done, unless the DNS server stopped. Degraded clusters are
/// listed after `ok` but keep the process ready: their other kinds and every other cluster
/// still federate.
async fn readyz(State(state): State<HttpState>) -> (StatusCode, String) {
    if !*state.health.dns_alive.borrow() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the DNS server stopped".into(),
        )
    } else if *state.health.ready.borrow() {
        let degraded = degraded_lines(&state.health.watch_health.borrow());
        let body = if degraded.is_empty() {
            "ok".to_owned()
        } else {
            format!("ok\n{degraded}")
        };
        (StatusCode::OK, body)
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "initial sync in progress".into(),
        )
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

    /// The HTTP state with the given sync and DNS state, and the senders that change them.
    fn state(
        ready: bool,
    ) -> (
        HttpState,
        watch::Sender<bool>,
        watch::Sender<bool>,
        watch::Sender<WatchHealths>,
    ) {
        let (ready_tx, ready) = watch::channel(ready);
        let (dns_tx, dns_alive) = watch::channel(true);
        let (health_tx, watch_health) = watch::channel(WatchHealths::new());
        let state = HttpState {
            health: Health {
                ready,
                dns_alive,
                watch_health,
            },
            metrics: Arc::new(Metrics::default()),
        };
        (state, ready_tx, dns_tx, health_tx)
    }

    #[tokio::test]
    async fn readyz_fails_once_dns_stopped_even_after_the_sync() {
        let (state, ready_tx, dns_tx, _health_tx) = state(false);
        assert_eq!(
            readyz(State(state.clone())).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        ready_tx.send_replace(true);
        assert_eq!(readyz(State(state.clone())).await.0, StatusCode::OK);
        dns_tx.send_replace(false);
        let (code, body) = readyz(State(state)).await;
        assert_eq!(
            (code, body.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "the DNS server stopped")
        );
    }

    #[tokio::test]
    async fn readyz_lists_degraded_clusters_and_stays_ready() {
        let (state, _ready_tx, _dns_tx, health_tx) = state(true);
        assert_eq!(
            readyz(State(state.clone())).await,
            (StatusCode::OK, "ok".to_owned())
        );
        let reason =
            "list forbidden (403): grant list and watch on discovery.k8s.io endpointslices";
        let east = crate::watch::WatchHealth {
            kinds: [
                ("EndpointSlice", Some(reason.to_owned())),
                ("Service", None),
            ]
            .into(),
        };
        health_tx.send_replace([(crate::model::ClusterName::new("east"), east)].into());
        assert_eq!(
            readyz(State(state)).await,
            (
                StatusCode::OK,
                format!("ok\ndegraded: cluster east: EndpointSlice: {reason}\n")
            )
        );
    }
}
