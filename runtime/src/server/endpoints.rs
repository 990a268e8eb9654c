//! The plain HTTP endpoints: `GET /` (the "try it in a browser" chat page,
//! `runtime/static/chat.html`), `GET /healthz` (liveness, also while draining),
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

/// The chat page: one self-contained file, compiled into the binary so the image needs
/// no static directory.
const CHAT_PAGE: &str = include_str!("../../static/chat.html");

/// Only what the page uses: its own inline style and script, allowed by hash rather than
/// `'unsafe-inline'` so an injected element could not run (the page also renders server
/// text as text only), and WebSockets to its own origin (`'self'` covers `ws:`/`wss:` to
/// the page's host and port in CSP level 3). `form-action 'none'`: a form that submitted
/// natively (script not running) would put the question in the page URL.
///
/// The hashes are the base64 SHA-256 of the exact text between `<style>` and `</style>`,
/// and between `<script>` and `</script>`, in chat.html: after editing the page,
/// recompute them (tests/it/browser.rs fails on a stale hash and prints the value
/// Chromium expects).
const CHAT_CSP: &str = concat!(
    "default-src 'none'; ",
    "style-src 'sha256-QA05O3xtnazbSTBmQDE+C1/xGpBefKPpXXsNeX2iCDg='; ",
    "script-src 'sha256-D2hE5aB711VzLxCYspdydySeXIDLk0XAUxU1ym3O6QA='; ",
    "connect-src 'self'; ",
    // The empty `data:,` icon: without one the browser fetches /favicon.ico (a 404).
    "img-src data:; ",
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
);

pub(super) async fn index() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CHAT_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            // Revalidate so a new deployment's page is not mixed with an old cached one.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        CHAT_PAGE,
    )
        .into_response()
}

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
