//! `federator dns --upstream`: a standalone DNS server fed by the registry API's `Watch`, so
//! DNS scales out apart from the controller. It answers exactly what the controller's
//! embedded server answers (the same records, built the same way), keeps answering from its
//! last snapshot while the upstream is away, and reports not-ready once that lasts longer
//! than a configured staleness.

mod follow;
mod mirror;

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use follow::{UpstreamError, UpstreamOptions, UpstreamState, channel, follow};
pub use mirror::UpstreamMirror;

/// What `/readyz` reads.
#[derive(Clone)]
struct Health {
    state: watch::Receiver<UpstreamState>,
    stale_after: Duration,
    url: String,
    metrics: std::sync::Arc<prometheus_client::registry::Registry>,
}

/// Serves `/healthz`, `/readyz` and `/metrics` (DNS metrics) until the task is dropped.
pub async fn serve_health(
    listener: TcpListener,
    state: watch::Receiver<UpstreamState>,
    stale_after: Duration,
    url: String,
    dns_metrics: &federator_dns::DnsMetrics,
) -> std::io::Result<()> {
    let mut registry = prometheus_client::registry::Registry::with_prefix("federator");
    dns_metrics.register(&mut registry);
    let health = Health {
        state,
        stale_after,
        url,
        metrics: std::sync::Arc::new(registry),
    };
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health);
    axum::serve(listener, app).await
}

/// Ready once a whole snapshot arrived, until the upstream has been away for longer than
/// the staleness allowed.
async fn readyz(State(health): State<Health>) -> (StatusCode, String) {
    let state = *health.state.borrow();
    readiness(&state, health.stale_after, Instant::now(), &health.url)
}

/// The `/readyz` answer for `state` at `now`.
fn readiness(
    state: &UpstreamState,
    stale_after: Duration,
    now: Instant,
    url: &str,
) -> (StatusCode, String) {
    if !state.whole {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no snapshot from the upstream {url} yet"),
        );
    }
    let away = now.saturating_duration_since(state.since);
    if !state.connected && away > stale_after {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the upstream {url} has been unreachable for {}s (more than {}s); answering from the last snapshot",
                away.as_secs(),
                stale_after.as_secs()
            ),
        );
    }
    (StatusCode::OK, "ok".into())
}

async fn metrics(State(health): State<Health>) -> ([(&'static str, &'static str); 1], String) {
    let mut out = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut out, &health.metrics);
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_from_the_first_snapshot_until_the_upstream_is_away_too_long() {
        let t0 = Instant::now();
        let mut state = UpstreamState {
            whole: false,
            connected: true,
            since: t0,
        };
        let limit = Duration::from_secs(30);
        assert_eq!(
            readiness(&state, limit, t0, "u").0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        state.whole = true;
        assert_eq!(readiness(&state, limit, t0, "u").0, StatusCode::OK);
        state.connected = false;
        assert_eq!(
            readiness(&state, limit, t0 + Duration::from_secs(29), "u").0,
            StatusCode::OK
        );
        let (code, why) = readiness(&state, limit, t0 + Duration::from_secs(31), "http://up");
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(why.contains("http://up") && why.contains("31s"), "{why}");
    }
}
