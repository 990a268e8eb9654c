//! The plain HTTP endpoints: `GET /healthz` (liveness, also while draining),
//! `GET /readyz` (every backend answers `ready()` within 2 s and the server is not
//! draining) and `GET /metrics` (the Prometheus text of [`crate::metrics::Metrics`]).
//! Routed by [`super::router`]; the WebSocket `/v1/chat` is in `connection.rs`.

use super::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub(super) async fn healthz() -> &'static str {
    "ok"
}

pub(super) async fn readyz(State(st): State<Arc<AppState>>) -> Response {
    if st.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "draining"})),
        )
            .into_response();
    }
    let b = st.pipeline.backends();
    let limit = Duration::from_secs(2);
    let check = |name: &'static str,
                 r: Result<
        Result<(), crate::backends::BackendError>,
        tokio::time::error::Elapsed,
    >| {
        match r {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(json!({"backend": name, "error": e.to_string()})),
            Err(_) => Some(json!({"backend": name, "error": "timed out"})),
        }
    };
    let (s, m, c, v, r, l) = tokio::join!(
        tokio::time::timeout(limit, b.sessions.ready()),
        tokio::time::timeout(limit, b.model.ready()),
        tokio::time::timeout(limit, b.cache.ready()),
        tokio::time::timeout(limit, b.services.ready()),
        tokio::time::timeout(limit, b.retriever.ready()),
        tokio::time::timeout(limit, b.llm.ready()),
    );
    let failing: Vec<_> = [
        check("sessions", s),
        check("intent_model", m),
        check("cache", c),
        check("services", v),
        check("retriever", r),
        check(b.llm.name(), l),
    ]
    .into_iter()
    .flatten()
    .collect();
    if failing.is_empty() {
        (
            StatusCode::OK,
            Json(json!({"status": "ready", "llm": b.llm.name()})),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "failing": failing})),
        )
            .into_response()
    }
}

pub(super) async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.metrics.render(),
    )
        .into_response()
}
