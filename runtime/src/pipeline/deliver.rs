//! Stage 8: delivery and save. Sends frames to the connection's writer (time spent
//! waiting on a slow client counts as `delivery`), ends each message with exactly one
//! `done` or `error`, then saves the turn to the [`SessionStore`] and stores cacheable
//! answers in the [`ResponseCache`]. Saving happens after `done` so the customer never
//! waits for it, but before the next message of the connection is processed, so
//! follow-up questions see it.

use super::intent::Classified;
use super::respond::{Finish, Reply};
use super::{MessageOutcome, Outbox, Request, Run};
use crate::backends::{CachedAnswer, ResponseCache, SessionStore};
use crate::domain::{SourceRef, Turn};
use crate::metrics::{Degradation, Stage};
use crate::protocol::{ErrorCode, Outbound, ServerFrame};
use std::time::Duration;
use tokio::time::Instant;

/// The client's connection is gone; stop working on its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

pub async fn send(out: &Outbox, run: &mut Run<'_>, frame: ServerFrame) -> Result<(), Gone> {
    let start = Instant::now();
    let r = out.send(Outbound::Frame(frame)).await;
    run.add(Stage::Delivery, start.elapsed());
    r.map_err(|_| Gone)
}

/// Sends a `token` frame (skipped when empty) and appends it to `delivered`.
pub async fn token(
    out: &Outbox,
    run: &mut Run<'_>,
    text: String,
    delivered: &mut String,
) -> Result<(), Gone> {
    if text.is_empty() {
        return Ok(());
    }
    delivered.push_str(&text);
    let frame = ServerFrame::Token {
        message_id: run.message_id.clone(),
        text,
    };
    send(out, run, frame).await
}

pub async fn start(
    out: &Outbox,
    run: &mut Run<'_>,
    req: &Request,
    c: &Classified,
) -> Result<(), Gone> {
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

/// Ends the message with an `error` frame.
pub async fn fail(
    out: &Outbox,
    run: &mut Run<'_>,
    code: ErrorCode,
    message: &str,
    retry_after: Option<Duration>,
) -> MessageOutcome {
    run.close();
    run.metrics().error(code);
    let frame = ServerFrame::Error {
        message_id: Some(run.message_id.clone()),
        code,
        message: message.to_string(),
        retry_after_ms: retry_after
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)),
    };
    match send(out, run, frame).await {
        Ok(()) => MessageOutcome::Error(code),
        Err(Gone) => MessageOutcome::ClientGone,
    }
}

/// Where to save the turn, and the cache entry to fill (cacheable intents only).
#[derive(Debug)]
pub struct Save<'a> {
    pub sessions: &'a dyn SessionStore,
    pub session_key: &'a str,
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
    match reply.finish {
        Finish::ClientGone => return run.abandon(),
        Finish::Stalled => {
            return fail(
                out,
                run,
                ErrorCode::StreamStalled,
                "the answer stream stalled; please ask again",
                None,
            )
            .await;
        }
        Finish::TimedOut => {
            return fail(
                out,
                run,
                ErrorCode::StreamTimeout,
                "the answer took too long and was cut off",
                None,
            )
            .await;
        }
        Finish::LlmFailed => {
            return fail(
                out,
                run,
                ErrorCode::LlmError,
                "the answer service failed mid-answer; please ask again",
                None,
            )
            .await;
        }
        Finish::Complete | Finish::Fallback => {}
    }
    run.close();
    let done = ServerFrame::Done {
        message_id: run.message_id.clone(),
        timings_ms: run.timings_ms(),
        cache_hit,
        sources: sources.clone(),
        degraded: run.degraded().to_vec(),
    };
    if send(out, run, done).await.is_err() {
        return MessageOutcome::ClientGone;
    }

    let budget = run.budget(Stage::Delivery);
    let turn = Turn {
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
    if !blocked {
        match tokio::time::timeout(budget, save.sessions.append(save.session_key, turn)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "saving the turn failed");
                run.degrade(Degradation::SaveSkipped);
            }
            Err(_) => run.degrade(Degradation::SaveSkipped),
        }
    }
    let degraded = run.degraded().iter().any(|d| d.affects_answer());
    if let (Some((cache, key)), Finish::Complete, false, false) =
        (save.cache, reply.finish, cache_hit, degraded)
    {
        let answer = CachedAnswer {
            text: reply.text,
            sources,
        };
        if !matches!(
            tokio::time::timeout(budget, cache.put(key, answer)).await,
            Ok(Ok(()))
        ) {
            tracing::debug!("response cache store skipped");
        }
    }
    MessageOutcome::Done { cache_hit }
}
