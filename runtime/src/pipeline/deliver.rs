//! Stage 8: delivery and save. Sends frames to the connection's writer (time spent
//! waiting on a slow client counts as `delivery`), ends each message with exactly one
//! `done` or `error`, saves the turn to the [`SessionStore`] and stores cacheable
//! answers in the [`ResponseCache`].
//!
//! The turn is saved before `done` is sent, under its own deadline
//! (`MANGA_SAVE_TIMEOUT_MS`, not a stage budget), while the writer finishes
//! putting the last tokens on the socket: a customer who has seen `done` can
//! reconnect to any task and find the turn, and a save that failed is in
//! `done.degraded` as `save_skipped` (one saved on the store's fallback path as
//! `memory_fallback`). A client that left mid-message does not
//! stop the save ([`super::Outbox`]). The turn carries the message id and the
//! receipt time, so a retried write stores it once.
//!
//! Before `done` (or an `error` after tokens), a barrier waits for the writer
//! to flush what is queued; then `first_token` (receipt to the first token
//! frame on the socket) and `stream_jitter` (the longest gap between two token
//! writes) are read from the message's [`crate::protocol::WriteClock`]: the
//! times the customer sees, not the upstream model's.

use super::intent::Classified;
use super::respond::{Finish, Reply};
use super::{MessageOutcome, Outbox, Request, Run};
use crate::backends::{CachedAnswer, ResponseCache, Served, SessionStore};
use crate::domain::{epoch_micros, SourceRef, Turn};
use crate::metrics::{Degradation, Stage};
use crate::protocol::{ErrorCode, Outbound, ServerFrame};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// How long `done` waits for the writer to flush what is queued before it. The
/// writer gives up on a client after its own write timeout (10 s), which
/// answers the barrier by dropping it; this bound only guards against a writer
/// that neither writes nor stops.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(15);

/// Queues one frame; a gone client is not an error here (see [`Outbox`]).
pub async fn send(out: &Outbox, run: &mut Run<'_>, frame: ServerFrame) {
    let start = Instant::now();
    out.send(Outbound::Frame(Box::new(frame))).await;
    run.add(Stage::Delivery, start.elapsed());
}

/// Sends a `token` frame (skipped when empty) and appends it to `delivered`.
pub async fn token(out: &Outbox, run: &mut Run<'_>, text: String, delivered: &mut String) {
    if text.is_empty() {
        return;
    }
    delivered.push_str(&text);
    run.sent_tokens = true;
    let frame = ServerFrame::Token {
        message_id: run.message_id.clone(),
        text,
    };
    send(out, run, frame).await
}

pub async fn start(out: &Outbox, run: &mut Run<'_>, req: &Request, c: &Classified) {
    let frame = ServerFrame::Start {
        message_id: run.message_id.clone(),
        session_id: req.session_id.clone(),
        intent: c.intent,
        tier: c.tier,
        intent_source: c.source,
        confidence: (c.confidence * 1000.0).round() / 1000.0,
    };
    send(out, run, frame).await
}

/// Waits until the writer has flushed every queued token, then records the
/// customer-side `first_token` and `stream_jitter` from the message's clock.
async fn settle(out: &Outbox, run: &mut Run<'_>) {
    if !run.sent_tokens {
        return;
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    if out.send(Outbound::Barrier(tx)).await {
        // An error means the writer stopped (client gone): nothing more will be written.
        let _ = tokio::time::timeout(SETTLE_TIMEOUT, rx).await;
    }
    if let Some(first) = run.clock.first_token() {
        let missed = run.llm_first_token_missed;
        run.record(Stage::FirstToken, first, missed);
    }
    if run.streamed {
        let (gap, stalled) = (run.clock.max_gap(), run.stalled);
        run.record(Stage::StreamJitter, gap, stalled);
    }
}

/// Ends the message with an `error` frame.
pub async fn fail(
    out: &Outbox,
    run: &mut Run<'_>,
    code: ErrorCode,
    message: &str,
    retry_after: Option<Duration>,
) -> MessageOutcome {
    settle(out, run).await;
    run.close();
    run.metrics().error(code);
    let frame = ServerFrame::Error {
        message_id: Some(run.message_id.clone()),
        code,
        message: message.to_string(),
        retry_after_ms: retry_after
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)),
    };
    send(out, run, frame).await;
    if out.is_gone() {
        MessageOutcome::ClientGone
    } else {
        MessageOutcome::Error(code)
    }
}

/// Where to save the turn, and the cache entry to fill (cacheable intents only).
#[derive(Debug)]
pub struct Save<'a> {
    pub sessions: &'a dyn SessionStore,
    pub session_key: &'a str,
    /// The save's own deadline.
    pub timeout: Duration,
    pub cache: Option<(&'a dyn ResponseCache, &'a str)>,
}

#[allow(clippy::too_many_arguments)] // one call site, reads as the stage's inputs
pub async fn finish(
    out: &Outbox,
    run: &mut Run<'_>,
    req: &Request,
    c: &Classified,
    sources: Vec<SourceRef>,
    reply: Reply,
    cache_hit: bool,
    save: Save<'_>,
) -> MessageOutcome {
    let failure = match reply.finish {
        Finish::Stalled => Some((
            ErrorCode::StreamStalled,
            "the answer stream stalled; please ask again",
        )),
        Finish::TimedOut => Some((
            ErrorCode::StreamTimeout,
            "the answer took too long and was cut off",
        )),
        Finish::LlmFailed => Some((
            ErrorCode::LlmError,
            "the answer service failed mid-answer; please ask again",
        )),
        Finish::Complete | Finish::Fallback => None,
    };
    if let Some((code, message)) = failure {
        // The customer is told to ask again; a cut-off answer is not kept as context.
        return fail(out, run, code, message, None).await;
    }

    let turn = Turn {
        id: req.message_id.clone(),
        at_us: epoch_micros(
            SystemTime::now()
                .checked_sub(req.received.elapsed())
                .unwrap_or_else(SystemTime::now),
        ),
        user: req.text.clone(),
        assistant: reply.text.clone(),
        intent: c.intent,
        title_ids: sources
            .iter()
            .filter_map(|s| s.id.strip_prefix("catalog:").map(str::to_string))
            .collect(),
    };
    // Input the guardrails blocked (prompt injection, a blocked topic) is
    // never stored: it would be replayed to the LLM as history with the
    // customer's next message.
    let blocked = run.degraded().contains(&Degradation::InputBlocked);
    // `Some(how it was served)` once saved (or deliberately not saved), `None` if
    // the save failed or timed out.
    let saving = async {
        if blocked {
            return Some(Served::Primary);
        }
        match tokio::time::timeout(
            save.timeout,
            save.sessions.append_served(save.session_key, turn),
        )
        .await
        {
            Ok(Ok(served)) => Some(served),
            Ok(Err(e)) => {
                crate::warn_limited!(error = %e, "saving the turn failed");
                None
            }
            Err(_) => {
                crate::warn_limited!(
                    timeout_ms = save.timeout.as_millis() as u64,
                    "saving the turn timed out"
                );
                None
            }
        }
    };
    let (saved, ()) = tokio::join!(saving, settle(out, run));
    match saved {
        None => run.degrade(Degradation::SaveSkipped),
        Some(Served::Fallback) => run.degrade(Degradation::MemoryFallback),
        Some(Served::Primary) => {}
    }
    run.close();
    let done = ServerFrame::Done {
        message_id: run.message_id.clone(),
        timings_ms: run.timings_ms(),
        cache_hit,
        sources: sources.clone(),
        degraded: run.degraded().to_vec(),
        simulated_ms: crate::backends::simulated::current(),
    };
    send(out, run, done).await;

    let degraded = run.degraded().iter().any(|d| d.affects_answer());
    if let (Some((cache, key)), Finish::Complete, false, false) =
        (save.cache, reply.finish, cache_hit, degraded)
    {
        let answer = CachedAnswer {
            text: reply.text,
            sources,
        };
        let budget = run.budget(Stage::Delivery);
        if !matches!(
            tokio::time::timeout(budget, cache.put(key, answer)).await,
            Ok(Ok(()))
        ) {
            tracing::debug!("response cache store skipped");
        }
    }
    if out.is_gone() {
        MessageOutcome::ClientGone
    } else {
        MessageOutcome::Done { cache_hit }
    }
}
