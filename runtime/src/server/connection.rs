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

use super::drain::{ConnGuard, UserGuard};
use super::AppState;
use crate::pipeline::auth::{AuthError, Principal};
use crate::pipeline::{MessageOutcome, Outbox, Request};
use crate::protocol::{
    valid_session_id, ClientFrame, ErrorCode, Outbound, ReconnectReason, ServerFrame, WriteClock,
};
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

/// Messages a connection may queue behind the one being answered. Queued
/// boxed, like frames ([`Outbound::Frame`]): a tokio channel allocates its
/// first block of 32 slots when created, so every idle connection pays for
/// 32 slots of each of its two queues.
const QUEUE_DEPTH: usize = 4;
/// `retry_after_ms` of the `reconnect` frame is drawn from 0..=this, per connection.
pub const RECONNECT_SPREAD_MS: u64 = 2_000;
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
    // Counted before the upgrade completes, so a drain that starts in between
    // still waits, and atomically with the check, so concurrent upgrades
    // cannot overshoot the limit.
    let Some(guard) = st.drain.try_enter(st.limits.max_connections, &st.metrics) else {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many connections").into_response();
    };
    let start = tokio::time::Instant::now();
    let auth = st
        .authenticator
        .verify(bearer_token(&headers, &query), &peer_id(&headers, addr))
        .await;
    st.metrics
        .observe(crate::metrics::Stage::Auth, start.elapsed(), false);
    // Per user only for authenticated callers: with auth off the server is
    // bound to loopback, and every caller is this machine.
    let user = match &auth {
        Ok(p) if p.expires_at.is_some() => {
            match st
                .users
                .try_enter(&p.subject, st.limits.max_connections_per_user)
            {
                Some(u) => Some(u),
                None => {
                    st.metrics.error(ErrorCode::ConnectionLimit);
                    let body = format!(
                        "at most {} connections per user",
                        st.limits.max_connections_per_user
                    );
                    return (StatusCode::TOO_MANY_REQUESTS, body).into_response();
                }
            }
        }
        _ => None,
    };
    let conn_id = st.next_conn.fetch_add(1, Ordering::Relaxed);
    ws.max_message_size(st.limits.max_frame_bytes)
        .max_frame_size(st.limits.max_frame_bytes)
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .on_upgrade(move |socket| connection(socket, st, auth, conn_id, (guard, user)))
}

fn error_frame(
    message_id: Option<String>,
    code: ErrorCode,
    message: impl Into<String>,
) -> Outbound {
    Outbound::Frame(Box::new(ServerFrame::error(message_id, code, message)))
}

async fn connection(
    socket: WebSocket,
    st: Arc<AppState>,
    auth: Result<Principal, AuthError>,
    conn_id: u64,
    // Released last: the connection counts until its turn is saved.
    _guards: (ConnGuard, Option<UserGuard>),
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
    let outbox = Outbox::new(tx.clone());
    let (work_tx, work_rx) = mpsc::channel::<Box<Request>>(QUEUE_DEPTH);
    let worker = tokio::spawn(worker_loop(st.clone(), work_rx, outbox.clone()));
    let conn = ConnCtx {
        principal: &principal,
        conn_id,
        last_seen: &last_seen,
        writer_done: &writer_done,
    };
    let end = reader_loop(&mut stream, &st, &conn, &work_tx, &tx).await;
    drop(work_tx);
    match end {
        ReaderEnd::ClientGone | ReaderEnd::TooBig => {
            // The messages accepted are finished and saved, unheard, so the
            // customer finds them after reconnecting.
            outbox.mark_gone();
            if end == ReaderEnd::TooBig {
                let _ = tx
                    .send(Outbound::Close {
                        code: 1009,
                        reason: "message too big",
                    })
                    .await;
            }
            let _ = worker.await;
        }
        ReaderEnd::Shutdown => {
            // Finish the answer in flight; queued messages get `shutting_down`; then
            // tell the client to go elsewhere, each after its own short random pause
            // so thousands of clients do not reconnect in the same instant.
            let _ = worker.await;
            let reconnect = ServerFrame::Reconnect {
                reason: ReconnectReason::Draining,
                retry_after_ms: fastrand::u64(..=RECONNECT_SPREAD_MS),
            };
            let _ = tx.send(Outbound::Frame(Box::new(reconnect))).await;
            let _ = tx
                .send(Outbound::Close {
                    code: 1001,
                    reason: "server shutting down",
                })
                .await;
        }
    }
    drop(outbox);
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

/// What the writer keeps per connection beyond the socket: the clock of the
/// message being answered (see [`crate::protocol::WriteClock`]).
#[derive(Debug, Default)]
struct WriterState {
    clock: Option<Arc<WriteClock>>,
}

impl WriterState {
    /// Bookkeeping outbounds; returns the ones that are written or close.
    fn absorb(&mut self, o: Outbound) -> Option<Outbound> {
        match o {
            Outbound::Track(c) => {
                self.clock = Some(c);
                None
            }
            // Everything queued before the barrier has been written and
            // flushed by the time it is taken from the queue.
            Outbound::Barrier(done) => {
                let _ = done.send(());
                None
            }
            other => Some(other),
        }
    }
}

/// Writes `first` and every frame already waiting (up to
/// [`FRAMES_PER_FLUSH`]) with one flush, within [`WRITE_TIMEOUT`], then
/// stamps the message's clock if tokens went out; returns a close that was
/// waiting behind them, and false when the client is gone or too slow.
async fn send_batch(
    sink: &mut SplitSink<WebSocket, Message>,
    rx: &mut mpsc::Receiver<Outbound>,
    state: &mut WriterState,
    first: Box<ServerFrame>,
) -> (bool, Option<Outbound>) {
    let mut tokens = matches!(*first, ServerFrame::Token { .. });
    let mut barriers = Vec::new();
    let write = async {
        sink.feed(Message::Text(first.to_json().into())).await?;
        let mut after = None;
        let mut frames = 1;
        while frames < FRAMES_PER_FLUSH {
            match rx.try_recv() {
                Ok(Outbound::Frame(f)) => {
                    tokens |= matches!(*f, ServerFrame::Token { .. });
                    sink.feed(Message::Text(f.to_json().into())).await?;
                    frames += 1;
                }
                // Answered after the flush below: it waits for these frames.
                Ok(Outbound::Barrier(b)) => barriers.push(b),
                Ok(Outbound::Track(c)) => {
                    // A new message starts inside this batch: stamp the old
                    // one's tokens now, as written no later than this flush.
                    if tokens {
                        sink.flush().await?;
                        if let Some(clock) = &state.clock {
                            clock.written(tokio::time::Instant::now());
                        }
                        tokens = false;
                    }
                    state.clock = Some(c);
                }
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
    let r = tokio::time::timeout(WRITE_TIMEOUT, write).await;
    if let (Ok(Ok(_)), true, Some(clock)) = (&r, tokens, &state.clock) {
        clock.written(tokio::time::Instant::now());
    }
    match r {
        Ok(Ok(after)) => {
            for b in barriers {
                let _ = b.send(());
            }
            (true, after)
        }
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
    let mut state = WriterState::default();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    loop {
        tokio::select! {
            biased;
            out = rx.recv() => match out.map(|o| state.absorb(o)) {
                Some(None) => {}
                Some(Some(Outbound::Frame(f))) => {
                    let (ok, after) = send_batch(&mut sink, &mut rx, &mut state, f).await;
                    if !ok {
                        return;
                    }
                    if let Some(Outbound::Close { code, reason }) = after {
                        let _ = send(&mut sink, Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                        return;
                    }
                }
                Some(Some(Outbound::Close { code, reason })) => {
                    let _ = send(&mut sink, Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                    return;
                }
                // absorb() keeps tracks and barriers to itself.
                Some(Some(Outbound::Track(_) | Outbound::Barrier(_))) => {}
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

async fn worker_loop(st: Arc<AppState>, mut rx: mpsc::Receiver<Box<Request>>, out: Outbox) {
    // Every message the reader accepted is answered and saved, also after
    // the client left (the queue holds at most QUEUE_DEPTH); the loop ends
    // when the reader has stopped and the queue is empty.
    while let Some(req) = rx.recv().await {
        if st.is_draining() {
            st.metrics.error(ErrorCode::ShuttingDown);
            let frame = error_frame(
                Some(req.message_id),
                ErrorCode::ShuttingDown,
                "server is shutting down; reconnect",
            );
            out.send(frame).await;
            continue;
        }
        // Boxed: the pipeline's future is large, and an idle worker (most
        // of the 10,000 a task holds) should not carry its state inline.
        match Box::pin(st.pipeline.handle(*req, &out)).await {
            MessageOutcome::Error(code) if code.closes_connection() => {
                out.send(Outbound::Close {
                    code: 1008,
                    reason: "token expired",
                })
                .await;
                return;
            }
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
    work_tx: &mpsc::Sender<Box<Request>>,
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
        let received = tokio::time::Instant::now();
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
                Ok(ClientFrame::Ping) => Some(Outbound::Frame(Box::new(ServerFrame::Pong))),
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
                        // Unique across tasks and restarts: it keys the saved turn.
                        let message_id = format!("m{}-{conn_id}-{seq}", st.instance);
                        let req = Request {
                            message_id: message_id.clone(),
                            session_id,
                            text,
                            principal: principal.clone(),
                            received,
                        };
                        match work_tx.try_send(Box::new(req)) {
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
