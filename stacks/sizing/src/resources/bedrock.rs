//! Amazon Bedrock: tokens per minute at peak against the account quota, and
//! the token bill.
//!
//! Bedrock capacity is not provisioned here, but its quota is a capacity all
//! the same: past it requests are throttled and first-token latency is lost
//! to retries. Exceeding it is a warning rather than an error because the fix
//! (a quota increase or provisioned throughput) happens outside the stacks.

use serde::Serialize;

use crate::cost::{round_cents, SECONDS_PER_MONTH};
use crate::error::Findings;

use super::{round4, Assessment, Binding, Ctx};

/// The Bedrock usage at peak.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BedrockPlan {
    /// Model id.
    pub model_id: String,
    /// Input plus output tokens per minute at peak.
    pub tokens_per_minute: f64,
    /// The configured quota.
    pub tokens_per_minute_quota: u64,
    /// Whether peak demand exceeds the quota.
    pub quota_exceeded: bool,
    /// Streams open at once at peak (Little's law).
    pub streams_in_flight: f64,
    /// Assumed first-token p95 of the model, ms.
    pub first_token_p95_ms: f64,
    /// Binding constraint, utilisation, cost and notes.
    pub assessment: Assessment,
}

/// Checks the quota and prices the tokens.
pub(crate) fn size(ctx: &Ctx<'_>, findings: &mut Findings) -> BedrockPlan {
    let r = ctx.rates;
    let quota = ctx.input.llm.tokens_per_minute_quota;
    // u64 → f64 loses precision only beyond 2^53 tokens per minute.
    let quota_f = quota as f64;
    let utilisation = r.tokens_per_minute / quota_f.max(1.0);
    let exceeded = r.tokens_per_minute > quota_f;
    if exceeded {
        findings.warn(
            "bedrock",
            format!(
                "{:.0} tokens per minute at peak exceed the quota of {quota} ({:.1}×): requests will be throttled; request a quota increase or buy provisioned throughput",
                r.tokens_per_minute, utilisation
            ),
        );
    }
    let cost = match ctx.prices.bedrock(&ctx.model.model_id) {
        Ok(p) => round_cents(
            (r.average_input_tokens_per_s * p.input_per_1k_tokens
                + r.average_output_tokens_per_s * p.output_per_1k_tokens)
                / 1000.0
                * SECONDS_PER_MONTH,
        ),
        Err(e) => {
            findings.errors.push(e);
            0.0
        }
    };
    let notes = vec![
        format!(
            "{:.1} LLM messages/s at peak; {:.0} streams in flight",
            r.llm_messages_per_s, r.streams_in_flight
        ),
        "token cost at the average rate, on-demand prices, no prompt caching".into(),
    ];
    BedrockPlan {
        model_id: ctx.model.model_id.clone(),
        tokens_per_minute: round4(r.tokens_per_minute),
        tokens_per_minute_quota: quota,
        quota_exceeded: exceeded,
        streams_in_flight: round4(r.streams_in_flight),
        first_token_p95_ms: ctx.model.first_token_p95_ms,
        assessment: Assessment::new(Binding::TokensPerMinute, utilisation, cost, false, notes),
    }
}
