//! Stage 6: the response. The template tier is answered directly by
//! [`crate::backends::extractive::compose`]; LLM tiers stream from the [`Llm`] under two
//! deadlines:
//!
//! - first token within `first_token`, else the grounded fallback answer
//!   (`llm_fallback`) — the customer always gets something useful;
//! - every next token within the inter-token deadline (also `first_token`: a gap longer
//!   than the time we allow for the first token means the backend has stalled), else the
//!   stream ends with an `error` frame `stream_stalled`. Gaps longer than
//!   `stream_jitter` count as jitter budget misses; the whole answer is capped at
//!   `MANGA_STREAM_MAX_SECS` (`stream_timeout`).
//!
//! Every piece goes through the output guardrails ([`super::guardrails`]) and out via
//! [`super::deliver`].

use super::guardrails::{Guardrails, StreamFilter};
use super::{deliver, fetch::Fetched, Outbox, Run, Settings};
use crate::backends::extractive::compose;
use crate::backends::{BackendError, CachedAnswer, CutShort, Llm};
use crate::domain::{Intent, Prompt, SourceRef, Tier, ToolResult, Turn};
use crate::metrics::{Degradation, Stage};
use futures_util::StreamExt;
use tokio::time::Instant;

/// Prefix of the fallback answer, so the customer knows why it reads like a list.
pub const FALLBACK_PREFIX: &str =
    "Our assistant is busy, so here is a quick answer from the catalog. ";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Complete,
    Fallback,
    Stalled,
    TimedOut,
    LlmFailed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// What the client received (after redaction).
    pub text: String,
    pub finish: Finish,
}

/// Builds the prompt and its citation list: tool results first, then passages.
pub fn prompt(
    intent: Intent,
    tier: Tier,
    text: &str,
    history: Vec<Turn>,
    fetched: Fetched,
) -> Prompt {
    let mut sources: Vec<SourceRef> = Vec::new();
    let mut add = |id: String, title: &str| {
        if !sources.iter().any(|s| s.id == id) {
            sources.push(SourceRef {
                id,
                title: title.to_string(),
            });
        }
    };
    for tool in &fetched.tools {
        match tool {
            ToolResult::OrderLookup { order: Some(o), .. } => {
                add(format!("order:{}", o.id), &format!("Order {}", o.id))
            }
            ToolResult::TitleLookup { title: Some(t) }
            | ToolResult::VolumeLookup { title: t, .. } => {
                add(format!("catalog:{}", t.id), &t.title)
            }
            ToolResult::CatalogSearch { titles, .. }
            | ToolResult::Recommendations { titles, .. } => {
                for t in titles {
                    add(format!("catalog:{}", t.id), &t.title);
                }
            }
            _ => {}
        }
    }
    for p in &fetched.passages {
        add(p.source_id.clone(), &p.title);
    }
    Prompt {
        intent,
        tier,
        user_text: text.to_string(),
        history,
        tools: fetched.tools,
        passages: fetched.passages,
        sources,
    }
}

/// Sends a whole text as one token frame through the guardrails.
async fn send_whole(
    text: &str,
    guardrails: &Guardrails,
    out: &Outbox,
    run: &mut Run<'_>,
) -> String {
    let mut filter = guardrails.filter();
    let g0 = Instant::now();
    let mut safe = filter.push(text);
    safe.push_str(&filter.flush());
    run.add(Stage::Guardrails, g0.elapsed());
    if filter.redacted() {
        run.degrade(Degradation::GuardrailRedacted);
    }
    let mut delivered = String::new();
    deliver::token(out, run, safe, &mut delivered).await;
    delivered
}

pub async fn cached(
    hit: &CachedAnswer,
    guardrails: &Guardrails,
    out: &Outbox,
    run: &mut Run<'_>,
) -> Reply {
    Reply {
        text: send_whole(&hit.text, guardrails, out, run).await,
        finish: Finish::Complete,
    }
}

pub async fn reply(
    llm: &dyn Llm,
    tier: Tier,
    prompt: &Prompt,
    guardrails: &Guardrails,
    settings: &Settings,
    out: &Outbox,
    run: &mut Run<'_>,
) -> Reply {
    if !tier.uses_llm() {
        return Reply {
            text: send_whole(&compose(prompt), guardrails, out, run).await,
            finish: Finish::Complete,
        };
    }
    stream(llm, prompt, guardrails, settings, out, run).await
}

async fn fallback(
    prompt: &Prompt,
    guardrails: &Guardrails,
    out: &Outbox,
    run: &mut Run<'_>,
) -> Reply {
    run.degrade(Degradation::LlmFallback);
    let text = format!("{FALLBACK_PREFIX}{}", compose(prompt));
    Reply {
        text: send_whole(&text, guardrails, out, run).await,
        finish: Finish::Fallback,
    }
}

async fn stream(
    llm: &dyn Llm,
    prompt: &Prompt,
    guardrails: &Guardrails,
    settings: &Settings,
    out: &Outbox,
    run: &mut Run<'_>,
) -> Reply {
    let first_budget = run.budget(Stage::FirstToken);
    let deadline = Instant::now() + first_budget;
    // A stream permit of this task, then opening the stream and its first
    // token, all within the first-token deadline: a task at its stream cap
    // answers with the fallback instead of queueing customers without bound.
    let Ok(Ok(permit)) = tokio::time::timeout_at(deadline, settings.llm_streams.acquire()).await
    else {
        run.llm_first_token_missed = true;
        run.degrade(Degradation::LlmBusy);
        crate::warn_limited!(
            "every LLM stream permit was taken until the first-token deadline; sending fallback"
        );
        return fallback(prompt, guardrails, out, run).await;
    };
    let opened = tokio::time::timeout_at(deadline, async {
        let mut s = llm.stream(prompt).await?;
        let first = s.next().await;
        Ok::<_, crate::backends::BackendError>((s, first))
    })
    .await;
    let (mut tokens, first) = match opened {
        Ok(Ok((s, Some(Ok(first))))) => (s, first),
        Err(_) => {
            run.llm_first_token_missed = true;
            crate::warn_limited!(
                llm = llm.name(),
                "no first token within budget; sending fallback"
            );
            return fallback(prompt, guardrails, out, run).await;
        }
        Ok(other) => {
            match other {
                Err(e) | Ok((_, Some(Err(e)))) => {
                    crate::warn_limited!(llm = llm.name(), error = %e, "LLM failed before the first token")
                }
                _ => crate::warn_limited!(llm = llm.name(), "LLM returned an empty stream"),
            }
            return fallback(prompt, guardrails, out, run).await;
        }
    };
    // Held until the stream ends (dropped with this function's locals); the gauge is
    // what the service scales on (`LlmStreamsInFlight`).
    let _permit = permit;
    let _in_flight = run.metrics().llm_stream_started();
    run.streamed = true;

    let stall = first_budget;
    let guard_budget = run.budget(Stage::Guardrails);
    let stream_start = Instant::now();
    let hard_deadline = stream_start + settings.stream_max;
    let mut filter: StreamFilter<'_> = guardrails.filter();
    let mut text = String::new();
    let mut delivered_any = false;
    let mut last_token = stream_start;
    let mut piece = Some(first);
    let mut finish = Finish::Complete;
    loop {
        if let Some(p) = piece.take() {
            let g0 = Instant::now();
            let ready = filter.push(&p);
            run.add(Stage::Guardrails, g0.elapsed());
            if !ready.is_empty() {
                deliver::token(out, run, ready, &mut text).await;
                delivered_any = true;
            }
        }
        // Before anything reached the client, a held-back partial word is released once
        // the guardrails budget is spent, so redaction never delays the first token long.
        let holding = !delivered_any && filter.has_pending();
        let wake = if holding {
            last_token + guard_budget.min(stall)
        } else {
            last_token + stall
        };
        match tokio::time::timeout_at(wake.min(hard_deadline), tokens.next()).await {
            Ok(Some(Ok(p))) => {
                last_token = Instant::now();
                piece = Some(p);
            }
            Ok(None) => break,
            // The model ended early and said why: what it streamed stands.
            Ok(Some(Err(BackendError::Cut(cut)))) => {
                run.degrade(match cut {
                    CutShort::Length => Degradation::AnswerTruncated,
                    CutShort::Filtered => Degradation::GuardrailRedacted,
                });
                break;
            }
            Ok(Some(Err(e))) => {
                crate::warn_limited!(llm = llm.name(), error = %e, "LLM failed mid-stream");
                finish = Finish::LlmFailed;
                break;
            }
            Err(_) => {
                let now = Instant::now();
                if now >= hard_deadline {
                    finish = Finish::TimedOut;
                    break;
                }
                if holding && now < last_token + stall {
                    let g0 = Instant::now();
                    let ready = filter.flush_words();
                    run.add(Stage::Guardrails, g0.elapsed());
                    // What is still held is a number that may grow into PII:
                    // it waits for the next token (or the end); from here on
                    // only the stall deadline applies.
                    deliver::token(out, run, ready, &mut text).await;
                    delivered_any = true;
                    continue;
                }
                run.stalled = true;
                finish = Finish::Stalled;
                break;
            }
        }
    }
    // Whatever is still held is released, also before an error frame: it was produced.
    let g0 = Instant::now();
    let rest = filter.flush();
    run.add(Stage::Guardrails, g0.elapsed());
    deliver::token(out, run, rest, &mut text).await;
    if filter.redacted() {
        run.degrade(Degradation::GuardrailRedacted);
    }
    run.record(
        Stage::Streaming,
        stream_start.elapsed(),
        finish == Finish::TimedOut,
    );
    Reply { text, finish }
}
