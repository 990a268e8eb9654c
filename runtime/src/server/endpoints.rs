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
    "script-src 'sha256-CsxW4tvEq8V1U/Iy1gwKKO0d3xpYNrldVGRZuFN0npI='; ",
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

/// One probe of every backend: the names of those that failed. The reasons
/// go to the log, not to the unauthenticated `/readyz` response.
#[derive(Debug, Clone)]
pub(super) struct Readiness {
    failing: Vec<&'static str>,
    at: tokio::time::Instant,
}

/// Asks every backend `ready()` at once, each within [`PROBE_LIMIT`].
async fn probe(st: &AppState) -> Readiness {
    let b = st.pipeline.backends();
    let (s, m, c, v, r, l) = tokio::join!(
        tokio::time::timeout(PROBE_LIMIT, b.sessions.ready()),
        tokio::time::timeout(PROBE_LIMIT, b.model.ready()),
        tokio::time::timeout(PROBE_LIMIT, b.cache.ready()),
        tokio::time::timeout(PROBE_LIMIT, b.services.ready()),
        tokio::time::timeout(PROBE_LIMIT, b.retriever.ready()),
        tokio::time::timeout(PROBE_LIMIT, b.llm.ready()),
    );
    let failing = [
        ("sessions", s),
        ("intent_model", m),
        ("cache", c),
        ("services", v),
        ("retriever", r),
        (b.llm.name(), l),
    ]
    .into_iter()
    .filter_map(|(name, r)| {
        let error = match r {
            Ok(Ok(())) => return None,
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} s", PROBE_LIMIT.as_secs()),
        };
        crate::warn_limited!(backend = name, error, "readiness probe failed");
        Some(name)
    })
    .collect();
    Readiness {
        failing,
        at: tokio::time::Instant::now(),
    }
}

/// Probes the backends every `every` while the state lives, publishing each
/// result for `/readyz`; started by [`super::serve`].
pub(super) async fn probe_loop(st: std::sync::Weak<AppState>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(st) = st.upgrade() else { return };
        let r = probe(&st).await;
        st.readiness.send_replace(Some(Arc::new(r)));
    }
}

/// Writes the per-task gauges (sessions, LLM streams in flight) every `every`, for the
/// service's target tracking (`emf::render_gauges`).
pub(super) async fn gauge_loop(st: std::sync::Weak<AppState>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(st) = st.upgrade() else { return };
        st.metrics.emit_gauges();
    }
}

/// Per probe and backend.
const PROBE_LIMIT: Duration = Duration::from_secs(2);

/// Answers from the last background probe (no backend call per request, so
/// load balancer checks and anonymous callers cannot load the backends);
/// only before the first probe has finished does a request wait for it.
pub(super) async fn readyz(State(st): State<Arc<AppState>>) -> Response {
    if st.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "draining"})),
        )
            .into_response();
    }
    let mut rx = st.readiness.subscribe();
    let first = tokio::time::timeout(PROBE_LIMIT * 2, rx.wait_for(Option::is_some)).await;
    let last = match first {
        Ok(Ok(r)) => r.clone(),
        _ => None,
    };
    let Some(last) = last else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "starting"})),
        )
            .into_response();
    };
    let age_ms = u64::try_from(last.at.elapsed().as_millis()).unwrap_or(u64::MAX);
    let llm = st.pipeline.backends().llm.name();
    if last.failing.is_empty() {
        (
            StatusCode::OK,
            Json(json!({"status": "ready", "llm": llm, "probed_ms_ago": age_ms})),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "failing": last.failing, "probed_ms_ago": age_ms})),
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
