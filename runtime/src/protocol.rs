//! The JSON frames of the `/v1/chat` WebSocket protocol (documented in
//! `runtime/README.md`). [`crate::server`] parses [`ClientFrame`]s and writes
//! [`ServerFrame`]s; [`crate::pipeline`] produces the per-message frames.
//!
//! Per message the server sends `start`, zero or more `token`, then exactly one terminal
//! frame: `done` or `error`. Error codes are stable strings; clients switch on them.

use crate::domain::{Intent, SourceRef, Tier};
use crate::metrics::Degradation;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Frames a client may send.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// A chat message. `session_id` names the conversation (1–64 chars of `[A-Za-z0-9_.-]`).
    Message { session_id: String, text: String },
    /// Application-level keep-alive for clients that cannot see WebSocket pings.
    Ping,
}

/// Where the intent came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentSource {
    Rules,
    Model,
    /// The model was not confident or not available in time; the rules' best guess.
    RulesFallback,
    /// The input guardrails classified the message (injection, blocked topic).
    Guardrails,
}

/// Frames the server sends.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Start {
        message_id: String,
        session_id: String,
        intent: Intent,
        tier: Tier,
        intent_source: IntentSource,
        confidence: f32,
    },
    Token {
        message_id: String,
        text: String,
    },
    Done {
        message_id: String,
        /// Milliseconds per stage that ran (stage names as on `/metrics`), plus `end_to_end`.
        timings_ms: BTreeMap<&'static str, f64>,
        cache_hit: bool,
        sources: Vec<SourceRef>,
        degraded: Vec<Degradation>,
        /// Load tests only (`MANGA_SIMULATE`): the simulated waits in this message,
        /// so a load generator can subtract them from what it observed.
        #[serde(skip_serializing_if = "Option::is_none")]
        simulated_ms: Option<crate::backends::simulated::SimulatedWaits>,
    },
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
        code: ErrorCode,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    Pong,
    /// The server is draining (the load balancer deregistered this task, or it got
    /// SIGTERM): reconnect after `retry_after_ms` and another task answers. Sent once per
    /// connection, after the answer in flight finished and queued messages got
    /// `shutting_down`, right before the close (1001).
    Reconnect {
        reason: ReconnectReason,
        retry_after_ms: u64,
    },
}

/// Why the server asks for a reconnect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconnectReason {
    Draining,
}

impl ServerFrame {
    pub fn error(message_id: Option<String>, code: ErrorCode, message: impl Into<String>) -> Self {
        ServerFrame::Error {
            message_id,
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    pub fn to_json(&self) -> String {
        // Serialising these plain structs cannot fail (no maps with non-string keys, no
        // custom serializers); fall back to a fixed error frame rather than panic.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"internal","message":"serialisation failed"}"#.to_string()
        })
    }
}

/// Stable error codes. `closes_connection` says whether the server closes the WebSocket
/// after sending the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, unknown `type`, missing/invalid field, binary frame, empty text.
    BadRequest,
    /// Frame larger than `MANGA_MAX_MESSAGE_BYTES`.
    MessageTooLarge,
    /// Missing or invalid token (connection closed with 1008).
    Unauthorized,
    /// The token expired during the connection (connection closed with 1008).
    TokenExpired,
    /// Per-user token bucket empty; `retry_after_ms` says when to retry.
    RateLimited,
    /// More distinct session ids than `MANGA_MAX_SESSIONS_PER_CONNECTION`.
    SessionLimit,
    /// Too many messages queued on this connection; wait for `done`.
    Busy,
    /// The LLM stopped producing tokens within the inter-token deadline.
    StreamStalled,
    /// The answer exceeded `MANGA_STREAM_MAX_SECS`.
    StreamTimeout,
    /// The LLM failed mid-stream.
    LlmError,
    /// The server is draining; reconnect (another task will answer).
    ShuttingDown,
    /// The upgrade was refused (HTTP 429): the user already holds
    /// `MANGA_MAX_CONNECTIONS_PER_USER` connections on this task. Counted on
    /// `/metrics`; never sent as a frame.
    ConnectionLimit,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 13] = [
        ErrorCode::BadRequest,
        ErrorCode::MessageTooLarge,
        ErrorCode::Unauthorized,
        ErrorCode::TokenExpired,
        ErrorCode::RateLimited,
        ErrorCode::SessionLimit,
        ErrorCode::Busy,
        ErrorCode::StreamStalled,
        ErrorCode::StreamTimeout,
        ErrorCode::LlmError,
        ErrorCode::ShuttingDown,
        ErrorCode::ConnectionLimit,
        ErrorCode::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::MessageTooLarge => "message_too_large",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::SessionLimit => "session_limit",
            ErrorCode::Busy => "busy",
            ErrorCode::StreamStalled => "stream_stalled",
            ErrorCode::StreamTimeout => "stream_timeout",
            ErrorCode::LlmError => "llm_error",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::ConnectionLimit => "connection_limit",
            ErrorCode::Internal => "internal",
        }
    }

    pub fn closes_connection(self) -> bool {
        matches!(self, ErrorCode::Unauthorized | ErrorCode::TokenExpired)
    }
}

/// Validates a session id: short, URL-safe, so it can be used as a store key as is.
pub fn valid_session_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// What a connection's writer task sends: frames in order, then possibly a close.
///
/// The writer ([`crate::server`]'s socket writer, or [`collect`] in-process)
/// also keeps the customer's clock: it stamps the [`WriteClock`] of the
/// message being answered each time token frames reach the socket, and
/// answers a [`Outbound::Barrier`] once everything queued before it is
/// written, so `first_token` and `stream_jitter` are timed from message
/// receipt to frame written rather than at the upstream model.
#[derive(Debug)]
pub enum Outbound {
    /// Boxed: a channel allocates its slots up front (tokio: blocks of 32),
    /// and an idle connection should pay for 32 pointers, not 32 frames.
    Frame(Box<ServerFrame>),
    /// From now on, token frames belong to the message this clock times.
    Track(std::sync::Arc<WriteClock>),
    /// Answered once every frame queued before it has been written and flushed.
    Barrier(tokio::sync::oneshot::Sender<()>),
    /// Close the WebSocket with this code (1000 normal, 1001 going away, 1008 policy).
    Close { code: u16, reason: &'static str },
}

/// When one message's token frames reached the socket, in nanoseconds since
/// the message was received (0 = not yet). Written by the connection's
/// writer, read by the pipeline after a [`Outbound::Barrier`]; atomics so
/// neither waits on the other.
#[derive(Debug)]
pub struct WriteClock {
    received: tokio::time::Instant,
    first_ns: std::sync::atomic::AtomicU64,
    last_ns: std::sync::atomic::AtomicU64,
    max_gap_ns: std::sync::atomic::AtomicU64,
}

impl WriteClock {
    pub fn new(received: tokio::time::Instant) -> WriteClock {
        WriteClock {
            received,
            first_ns: Default::default(),
            last_ns: Default::default(),
            max_gap_ns: Default::default(),
        }
    }

    /// Token frames of this message were just written (one call per flush).
    pub fn written(&self, now: tokio::time::Instant) {
        use std::sync::atomic::Ordering::Relaxed;
        // At least 1 ns, so a write in the instant of receipt (paused test
        // time) still counts as written.
        let ns = u64::try_from(now.saturating_duration_since(self.received).as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        if self.first_ns.load(Relaxed) == 0 {
            self.first_ns.store(ns, Relaxed);
        } else {
            let gap = ns.saturating_sub(self.last_ns.load(Relaxed));
            self.max_gap_ns.fetch_max(gap, Relaxed);
        }
        self.last_ns.store(ns, Relaxed);
    }

    /// Receipt to the first token frame on the socket, if one was written.
    pub fn first_token(&self) -> Option<std::time::Duration> {
        match self.first_ns.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            ns => Some(std::time::Duration::from_nanos(ns)),
        }
    }

    /// The longest gap between two consecutive token writes.
    pub fn max_gap(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.max_gap_ns.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// An in-process writer for tests and benchmarks: takes frames until every
/// sender is dropped, stamping clocks and answering barriers as the socket
/// writer does, and returns the frames.
pub async fn collect(mut rx: tokio::sync::mpsc::Receiver<Outbound>) -> Vec<ServerFrame> {
    let mut frames = Vec::new();
    let mut clock: Option<std::sync::Arc<WriteClock>> = None;
    while let Some(o) = rx.recv().await {
        match o {
            Outbound::Frame(f) => {
                if let (ServerFrame::Token { .. }, Some(c)) = (&*f, &clock) {
                    c.written(tokio::time::Instant::now());
                }
                frames.push(*f);
            }
            Outbound::Track(c) => clock = Some(c),
            Outbound::Barrier(done) => {
                let _ = done.send(());
            }
            Outbound::Close { .. } => {}
        }
    }
    frames
}
