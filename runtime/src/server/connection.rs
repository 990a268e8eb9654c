//! One WebSocket `/v1/chat` connection, from the upgrade to the close frame.
//!
//! [`chat`] (the upgrade handler) refuses new connections while draining or above
//! `MANGA_MAX_CONNECTIONS`, verifies the bearer token (header or `?token=`) once, and
//! counts the connection in `drain.rs` before the upgrade completes. Then three tasks
//! cooperate per connection:
//! - the reader ([`reader_loop`]) parses and validates client frames, enforces the
//!   message size and per-connection session limits, and queues chat messages;
//! - the worker ([`worker_loop`]) answers queued messages one at a time with
//!   [`crate::pipeline::Pipeline::handle`];
//! - the writer ([`writer_loop`]) serialises [`Outbound`] frames to the socket and sends
//!   pings every `MANGA_PING_INTERVAL_SECS` so the ALB idle timeout never fires on a
//!   quiet chat, and drops clients that stay silent or stop accepting frames.
//!
//! The shared state and the shutdown sequence are in `mod.rs`, the plain HTTP endpoints
//! in `endpoints.rs`, the frames themselves in [`crate::protocol`].

use super::drain::ConnGuard;
use super::AppState;
use crate::pipeline::auth::{AuthError, Principal};
use crate::pipeline::{MessageOutcome, Request};
use crate::protocol::{valid_session_id, ClientFrame, ErrorCode, Outbound, ServerFrame};
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// Messages a connection may queue behind the one being answered.
const QUEUE_DEPTH: usize = 4;
/// Frames buffered towards a slow client before the pipeline waits (counted as delivery).
const OUTBOX_DEPTH: usize = 64;

/// Per-connection socket buffers, sized for the protocol rather than
/// tungstenite's defaults (a 128 KiB read buffer, a 128 KiB write target
/// and an unbounded write buffer, allocated for every connection, idle or
/// not). The read buffer is the chunk each socket read fills (a larger
/// frame grows the message buffer as it arrives, up to
/// `MANGA_MAX_FRAME_BYTES`), allocated per connection up front, so it is
/// kept small. The writer feeds
/// every frame that is ready and flushes once, so the write buffer holds at
/// most one batch, and its bound makes a client that stops reading a write
/// error instead of unbounded memory.
const READ_BUFFER_BYTES: usize = 2 * 1024;
const WRITE_BUFFER_BYTES: usize = 4 * 1024;
const MAX_WRITE_BUFFER_BYTES: usize = 64 * 1024;
/// Frames written per flush at most: several ready tokens go out as one
/// write (one TCP segment where they fit) instead of one syscall each.
const FRAMES_PER_FLUSH: usize = 32;

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

pub(super) async fn chat(
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
    let guard = st.drain.enter(&st.metrics);
    ws.max_message_size(st.limits.max_frame_bytes)
        .max_frame_size(st.limits.max_frame_bytes)
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
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

/// Writes `first` and every frame already waiting (up to
/// [`FRAMES_PER_FLUSH`]) with one flush, within [`WRITE_TIMEOUT`]; returns
/// a close that was waiting behind them, and false when the client is gone
/// or too slow.
async fn send_batch(
    sink: &mut SplitSink<WebSocket, Message>,
    rx: &mut mpsc::Receiver<Outbound>,
    first: String,
) -> (bool, Option<Outbound>) {
    let write = async {
        sink.feed(Message::Text(first.into())).await?;
        let mut after = None;
        for _ in 1..FRAMES_PER_FLUSH {
            match rx.try_recv() {
                Ok(Outbound::Frame(f)) => sink.feed(Message::Text(f.to_json().into())).await?,
                Ok(other) => {
                    after = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        sink.flush().await?;
        Ok::<_, axum::Error>(after)
    };
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(Ok(after)) => (true, after),
        _ => (false, None),
    }
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
                    let (ok, after) = send_batch(&mut sink, &mut rx, f.to_json()).await;
                    if !ok {
                        return;
                    }
                    if let Some(Outbound::Close { code, reason }) = after {
                        let _ = send(&mut sink, Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
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
        // Boxed: the pipeline's future is large, and an idle worker (most
        // of the 10,000 a task holds) should not carry its state inline.
        match Box::pin(st.pipeline.handle(req, &tx)).await {
            MessageOutcome::Error(code) if code.closes_connection() => {
                let _ = tx
                    .send(Outbound::Close {
                        code: 1008,
                        reason: "token expired",
                    })
                    .await;
                return;
            }
            MessageOutcome::ClientGone => return,
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
    let mut shutdown = st.drain.subscribe();
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
