//! The HTTP side: `GET /healthz` (liveness), `GET /readyz` (backends reachable, not
//! draining), `GET /metrics` (Prometheus text) and the WebSocket `/v1/chat`.
//!
//! Per WebSocket connection three tasks cooperate:
//! - the reader (this module) parses and validates client frames, enforces the message
//!   size and per-connection session limits, and queues chat messages;
//! - the worker answers queued messages one at a time with
//!   [`crate::pipeline::Pipeline::handle`];
//! - the writer serialises [`Outbound`] frames to the socket and sends pings every
//!   `MANGA_PING_INTERVAL_SECS` so the ALB idle timeout never fires on a quiet chat.
//!
//! Shutdown ([`serve`]): on the signal, `/readyz` turns 503, the listener stops
//! accepting, readers stop taking new messages, in-flight answers finish, queued ones get
//! `shutting_down`, each socket is closed with 1001, and the process waits up to
//! `MANGA_DRAIN_TIMEOUT_SECS` for all of that.

use crate::metrics::Metrics;
use crate::pipeline::auth::{AuthError, Authenticator, Principal};
use crate::pipeline::{Outcome, Pipeline, Request};
use crate::protocol::{valid_session_id, ClientFrame, ErrorCode, Outbound, ServerFrame};
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Notify};

/// Connection-level limits (from [`crate::config::Config`]).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_message_bytes: usize,
    pub max_frame_bytes: usize,
    pub max_sessions_per_connection: usize,
    pub max_connections: usize,
    pub ping_interval: Duration,
    pub drain_timeout: Duration,
}

/// Messages a connection may queue behind the one being answered.
const QUEUE_DEPTH: usize = 4;
/// Frames buffered towards a slow client before the pipeline waits (counted as delivery).
const OUTBOX_DEPTH: usize = 64;

#[derive(Debug)]
pub struct AppState {
    pub pipeline: Arc<Pipeline>,
    pub authenticator: Arc<Authenticator>,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    draining: AtomicBool,
    shutdown_tx: watch::Sender<bool>,
    tracker: Arc<ConnTracker>,
    next_conn: AtomicU64,
}

impl AppState {
    pub fn new(
        pipeline: Arc<Pipeline>,
        authenticator: Arc<Authenticator>,
        limits: Limits,
    ) -> AppState {
        let metrics = pipeline.metrics().clone();
        AppState {
            pipeline,
            authenticator,
            metrics,
            limits,
            draining: AtomicBool::new(false),
            shutdown_tx: watch::channel(false).0,
            tracker: Arc::new(ConnTracker::default()),
            next_conn: AtomicU64::new(1),
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Starts the drain: readiness fails, readers stop, streams finish.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.shutdown_tx.send_replace(true);
    }

    pub fn open_connections(&self) -> usize {
        self.tracker.active.load(Ordering::SeqCst)
    }
}

/// Counts live WebSocket connections so shutdown can wait for them; axum's own graceful
/// shutdown does not track upgraded connections.
#[derive(Debug, Default)]
struct ConnTracker {
    active: AtomicUsize,
    idle: Notify,
}

#[derive(Debug)]
struct ConnGuard {
    tracker: Arc<ConnTracker>,
    metrics: Arc<Metrics>,
}

impl ConnTracker {
    fn enter(self: &Arc<Self>, metrics: &Arc<Metrics>) -> ConnGuard {
        self.active.fetch_add(1, Ordering::SeqCst);
        metrics.connection_opened();
        ConnGuard {
            tracker: self.clone(),
            metrics: metrics.clone(),
        }
    }

    async fn wait_idle(&self, limit: Duration) -> bool {
        let wait = async {
            loop {
                // Register before checking, so a wake-up between the two is not lost.
                let notified = self.idle.notified();
                if self.active.load(Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.metrics.connection_closed();
        if self.tracker.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.tracker.idle.notify_waiters();
        }
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/chat", get(chat))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then drains (see the module docs).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let st = state.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutdown requested; draining");
        st.begin_drain();
    };
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(signal)
        .await?;
    let open = state.open_connections();
    if open > 0 {
        tracing::info!(open, "waiting for WebSocket connections to finish");
    }
    if !state.tracker.wait_idle(state.limits.drain_timeout).await {
        tracing::warn!(
            open = state.open_connections(),
            "drain timeout reached; closing remaining connections"
        );
    }
    tracing::info!("shutdown complete");
    Ok(())
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(st): State<Arc<AppState>>) -> Response {
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

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.metrics.render(),
    )
        .into_response()
}

/// Token from `Authorization: Bearer …`, else `?token=` / `?access_token=` (browsers
/// cannot set headers on a WebSocket handshake).
fn bearer_token<'a>(headers: &'a HeaderMap, query: &'a HashMap<String, String>) -> Option<&'a str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .or_else(|| {
            query
                .get("token")
                .or_else(|| query.get("access_token"))
                .map(String::as_str)
        })
        .filter(|t| !t.is_empty())
}

/// Client address for anonymous (auth off) callers: first X-Forwarded-For hop behind the
/// ALB, else the socket peer.
fn peer_id(headers: &HeaderMap, addr: SocketAddr) -> String {
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| addr.ip().to_string())
}

async fn chat(
    State(st): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if st.is_draining() {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining").into_response();
    }
    if st.open_connections() >= st.limits.max_connections {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many connections").into_response();
    }
    let start = tokio::time::Instant::now();
    let auth = st
        .authenticator
        .verify(bearer_token(&headers, &query), &peer_id(&headers, addr));
    st.metrics
        .observe(crate::metrics::Stage::Auth, start.elapsed(), false);
    let conn_id = st.next_conn.fetch_add(1, Ordering::Relaxed);
    // Entered before the upgrade completes so a drain that starts in between still waits.
    let guard = st.tracker.enter(&st.metrics);
    ws.max_message_size(st.limits.max_frame_bytes)
        .max_frame_size(st.limits.max_frame_bytes)
        .on_upgrade(move |socket| connection(socket, st, auth, conn_id, guard))
}

fn error_frame(
    message_id: Option<String>,
    code: ErrorCode,
    message: impl Into<String>,
) -> Outbound {
    Outbound::Frame(ServerFrame::error(message_id, code, message))
}

async fn connection(
    socket: WebSocket,
    st: Arc<AppState>,
    auth: Result<Principal, AuthError>,
    conn_id: u64,
    _guard: ConnGuard,
) {
    let (sink, mut stream) = socket.split();
    let (tx, rx) = mpsc::channel::<Outbound>(OUTBOX_DEPTH);
    let last_seen = Arc::new(LastSeen::new());
    let writer_done = Arc::new(Notify::new());
    let writer = tokio::spawn(writer_loop(
        sink,
        rx,
        st.limits.ping_interval,
        last_seen.clone(),
        writer_done.clone(),
    ));
    let principal = match auth {
        Ok(p) => p,
        Err(e) => {
            st.metrics.error(e.code());
            let _ = tx.send(error_frame(None, e.code(), e.to_string())).await;
            let _ = tx
                .send(Outbound::Close {
                    code: 1008,
                    reason: "unauthorized",
                })
                .await;
            drop(tx);
            let _ = writer.await;
            return;
        }
    };
    let (work_tx, work_rx) = mpsc::channel::<Request>(QUEUE_DEPTH);
    let worker = tokio::spawn(worker_loop(st.clone(), work_rx, tx.clone()));
    let conn = ConnCtx {
        principal: &principal,
        conn_id,
        last_seen: &last_seen,
        writer_done: &writer_done,
    };
    let end = reader_loop(&mut stream, &st, &conn, &work_tx, &tx).await;
    drop(work_tx);
    match end {
        ReaderEnd::ClientGone => worker.abort(),
        ReaderEnd::TooBig => {
            worker.abort();
            let _ = tx
                .send(Outbound::Close {
                    code: 1009,
                    reason: "message too big",
                })
                .await;
        }
        ReaderEnd::Shutdown => {
            // Finish the answer in flight; queued messages get `shutting_down`.
            let _ = worker.await;
            let _ = tx
                .send(Outbound::Close {
                    code: 1001,
                    reason: "server shutting down",
                })
                .await;
        }
    }
    drop(tx);
    let _ = writer.await;
    tracing::debug!(conn_id, "connection closed");
}

/// A client that takes longer than this to accept one frame is treated as gone, so a
/// reader that stopped reading cannot pin a worker and its backend calls forever.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Silence (no frame, no pong) for this many ping intervals closes the connection: the
/// peer is dead even if TCP has not noticed yet.
const IDLE_PINGS: u32 = 3;

/// When the client was last heard from (ms since the connection started).
#[derive(Debug)]
struct LastSeen {
    origin: tokio::time::Instant,
    ms: AtomicU64,
}

impl LastSeen {
    fn new() -> LastSeen {
        LastSeen {
            origin: tokio::time::Instant::now(),
            ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.ms.store(ms, Ordering::Relaxed);
    }

    fn silent_for(&self) -> Duration {
        self.origin
            .elapsed()
            .saturating_sub(Duration::from_millis(self.ms.load(Ordering::Relaxed)))
    }
}

/// Wakes the reader when the writer stops (dead or slow client), on every exit path.
#[derive(Debug)]
struct NotifyOnDrop(Arc<Notify>);

impl Drop for NotifyOnDrop {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

/// Sends one message within [`WRITE_TIMEOUT`]; false when the client is gone or too slow.
async fn send(sink: &mut SplitSink<WebSocket, Message>, m: Message) -> bool {
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, sink.send(m)).await,
        Ok(Ok(()))
    )
}

async fn writer_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Outbound>,
    ping_every: Duration,
    last_seen: Arc<LastSeen>,
    done: Arc<Notify>,
) {
    let _done = NotifyOnDrop(done);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    loop {
        tokio::select! {
            biased;
            out = rx.recv() => match out {
                Some(Outbound::Frame(f)) => {
                    if !send(&mut sink, Message::Text(f.to_json().into())).await {
                        return;
                    }
                }
                Some(Outbound::Close { code, reason }) => {
                    let _ = send(&mut sink, Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                    return;
                }
                None => {
                    let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.close()).await;
                    return;
                }
            },
            _ = ping.tick() => {
                if last_seen.silent_for() > ping_every * IDLE_PINGS {
                    let close = CloseFrame { code: 1000, reason: "idle".into() };
                    let _ = send(&mut sink, Message::Close(Some(close))).await;
                    return;
                }
                if !send(&mut sink, Message::Ping(Bytes::new())).await {
                    return;
                }
            }
        }
    }
}

async fn worker_loop(
    st: Arc<AppState>,
    mut rx: mpsc::Receiver<Request>,
    tx: mpsc::Sender<Outbound>,
) {
    while let Some(req) = rx.recv().await {
        if st.is_draining() {
            st.metrics.error(ErrorCode::ShuttingDown);
            let frame = error_frame(
                Some(req.message_id),
                ErrorCode::ShuttingDown,
                "server is shutting down; reconnect",
            );
            if tx.send(frame).await.is_err() {
                return;
            }
            continue;
        }
        match st.pipeline.handle(req, &tx).await {
            Outcome::Error(code) if code.closes_connection() => {
                let _ = tx
                    .send(Outbound::Close {
                        code: 1008,
                        reason: "token expired",
                    })
                    .await;
                return;
            }
            Outcome::ClientGone => return,
            _ => {}
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReaderEnd {
    ClientGone,
    Shutdown,
    /// A frame above `MANGA_MAX_FRAME_BYTES`.
    TooBig,
}

/// Per-connection context the reader needs.
#[derive(Debug)]
struct ConnCtx<'a> {
    principal: &'a Principal,
    conn_id: u64,
    last_seen: &'a LastSeen,
    writer_done: &'a Notify,
}

async fn reader_loop(
    stream: &mut SplitStream<WebSocket>,
    st: &AppState,
    conn: &ConnCtx<'_>,
    work_tx: &mpsc::Sender<Request>,
    tx: &mpsc::Sender<Outbound>,
) -> ReaderEnd {
    let (principal, conn_id) = (conn.principal, conn.conn_id);
    let mut shutdown = st.shutdown_tx.subscribe();
    let mut sessions: HashSet<String> = HashSet::new();
    let mut seq: u64 = 0;
    let reject = |code: ErrorCode, id: Option<String>, msg: String| {
        st.metrics.error(code);
        error_frame(id, code, msg)
    };
    loop {
        if *shutdown.borrow_and_update() {
            return ReaderEnd::Shutdown;
        }
        let next = tokio::select! {
            _ = shutdown.changed() => return ReaderEnd::Shutdown,
            // The writer gave up on this client (idle, too slow, or the socket failed).
            _ = conn.writer_done.notified() => return ReaderEnd::ClientGone,
            m = stream.next() => m,
        };
        conn.last_seen.touch();
        let text = match next {
            // tungstenite reports an over-limit frame as a read error ("Space limit
            // exceeded: Message too long"); tell the client why with close code 1009.
            Some(Err(e))
                if e.to_string().contains("too long")
                    || e.to_string().contains("limit exceeded") =>
            {
                return ReaderEnd::TooBig;
            }
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return ReaderEnd::ClientGone,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue, // pongs are automatic
            Some(Ok(Message::Binary(_))) => {
                let f = reject(
                    ErrorCode::BadRequest,
                    None,
                    "binary frames are not supported; send JSON text".into(),
                );
                if tx.send(f).await.is_err() {
                    return ReaderEnd::ClientGone;
                }
                continue;
            }
            Some(Ok(Message::Text(t))) => t,
        };
        let reply = if text.len() > st.limits.max_message_bytes {
            Some(reject(
                ErrorCode::MessageTooLarge,
                None,
                format!(
                    "message is {} bytes; the limit is {}",
                    text.len(),
                    st.limits.max_message_bytes
                ),
            ))
        } else {
            match serde_json::from_str::<ClientFrame>(text.as_str()) {
                Err(e) => Some(reject(
                    ErrorCode::BadRequest,
                    None,
                    format!("invalid frame: {e}"),
                )),
                Ok(ClientFrame::Ping) => Some(Outbound::Frame(ServerFrame::Pong)),
                Ok(ClientFrame::Message { session_id, text }) => {
                    if !valid_session_id(&session_id) {
                        Some(reject(
                            ErrorCode::BadRequest,
                            None,
                            "session_id must be 1-64 chars of [A-Za-z0-9_.-]".into(),
                        ))
                    } else if text.trim().is_empty() {
                        Some(reject(
                            ErrorCode::BadRequest,
                            None,
                            "text must not be empty".into(),
                        ))
                    } else if !sessions.contains(&session_id)
                        && sessions.len() >= st.limits.max_sessions_per_connection
                    {
                        Some(reject(
                            ErrorCode::SessionLimit,
                            None,
                            format!(
                                "at most {} sessions per connection",
                                st.limits.max_sessions_per_connection
                            ),
                        ))
                    } else {
                        sessions.insert(session_id.clone());
                        seq += 1;
                        let message_id = format!("m{conn_id}-{seq}");
                        let req = Request {
                            message_id: message_id.clone(),
                            session_id,
                            text,
                            principal: principal.clone(),
                        };
                        match work_tx.try_send(req) {
                            Ok(()) => None,
                            Err(mpsc::error::TrySendError::Full(_)) => Some(reject(
                                ErrorCode::Busy,
                                Some(message_id),
                                "too many messages in flight; wait for done".into(),
                            )),
                            Err(mpsc::error::TrySendError::Closed(_)) => {
                                return ReaderEnd::ClientGone
                            }
                        }
                    }
                }
            }
        };
        if let Some(frame) = reply {
            if tx.send(frame).await.is_err() {
                return ReaderEnd::ClientGone;
            }
        }
    }
}
