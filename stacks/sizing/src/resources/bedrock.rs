//! Amazon Bedrock: requests and tokens per minute at peak against the
//! account quotas, and the token bill.
//!
//! Bedrock capacity is not provisioned here, but its quotas are a capacity
//! all the same: past them requests are throttled and first-token latency is
//! lost to retries. How tokens count (Amazon Bedrock User Guide, "Token
//! burndown", https://docs.aws.amazon.com/bedrock/latest/userguide/quotas-token-burndown.html):
//! at the start of a request the quota is reserved for its input tokens plus
//! `max_tokens`, and what the request finally uses is input + output ×
//! the model's burndown rate (1 for Claude 3.5 Sonnet, 5 for Claude 3.7
//! Sonnet and later). The check is on the reservation, which is what
//! throttles; the bill is on what is used. A quota above 80 % used at peak is
//! a warning (the band leaves room for the peak's own variation), above 100 %
//! a warning that requests will be throttled: the fix (a quota increase or
//! provisioned throughput) happens outside the stacks.

use serde::Serialize;

use crate::cost::{round_cents, SECONDS_PER_MONTH};
use crate::error::Findings;

use super::{round4, Assessment, Binding, Ctx};

/// Share of a quota at peak above which sizing warns.
const WARNING_BAND: f64 = 0.8;

/// The Bedrock usage at peak.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BedrockPlan {
    /// Model id.
    pub model_id: String,
    /// Quota tokens per minute used at peak: input + output × burndown.
    pub tokens_per_minute: f64,
    /// Quota tokens per minute reserved at peak: input + max_tokens per request.
    pub reserved_tokens_per_minute: f64,
    /// The configured quota.
    pub tokens_per_minute_quota: u64,
    /// Requests per minute at peak.
    pub requests_per_minute: f64,
    /// The configured requests-per-minute quota, if given.
    pub requests_per_minute_quota: Option<u64>,
    /// Whether peak demand exceeds a quota.
    pub quota_exceeded: bool,
    /// Bedrock end-of-life date of the model, if known.
    pub end_of_life: Option<String>,
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
    let llm = &ctx.input.llm;
    let model = ctx.model;
    let profiles = ctx.a.tiers.all();
    let tiers = r.tier_messages_per_s.values();
    let per_minute = |f: &dyn Fn(&crate::assumptions::TierProfile) -> f64| -> f64 {
        (0..4)
            .filter(|i| profiles[*i].uses_llm())
            .map(|i| tiers[i] * f(profiles[i]) * 60.0)
            .sum()
    };
    let used = per_minute(&|p| p.input_tokens + p.output_tokens * model.output_burndown);
    let reserved = per_minute(&|p| p.input_tokens + f64::from(llm.max_tokens));
    let rpm = r.llm_messages_per_s * 60.0;
    let quota = llm.tokens_per_minute_quota;
    // u64 → f64 loses precision only beyond 2^53 tokens per minute.
    let tpm_util = reserved / (quota as f64).max(1.0);
    let rpm_util = llm
        .requests_per_minute_quota
        .map(|q| rpm / (q as f64).max(1.0));
    let utilisation = tpm_util.max(rpm_util.unwrap_or(0.0));
    let exceeded = utilisation > 1.0;
    let band = |what: &str, need: f64, quota: u64, util: f64, findings: &mut Findings| {
        if util > 1.0 {
            findings.warn(
                "bedrock",
                format!(
                    "{need:.0} {what} at peak exceed the quota of {quota} ({util:.2}×): requests will be throttled; request a quota increase or buy provisioned throughput"
                ),
            );
        } else if util >= WARNING_BAND {
            findings.warn(
                "bedrock",
                format!(
                    "{need:.0} {what} at peak use {:.0}% of the quota of {quota}: above the {:.0}% band, a peak a little higher is throttled",
                    util * 100.0,
                    WARNING_BAND * 100.0
                ),
            );
        }
    };
    band(
        "tokens per minute reserved (input + max_tokens per request)",
        reserved,
        quota,
        tpm_util,
        findings,
    );
    match (llm.requests_per_minute_quota, rpm_util) {
        (Some(q), Some(u)) => band("requests per minute", rpm, q, u, findings),
        _ => findings.warn(
            "bedrock",
            format!(
                "{rpm:.0} requests per minute at peak against no llm.requests_per_minute_quota: give the account's quota (mangactl preflight reads it)"
            ),
        ),
    }
    if let Some(eol) = &model.end_of_life {
        findings.warn(
            "bedrock",
            format!(
                "{} reaches end of life on Bedrock on {eol} (assumptions bedrock.models); choose a current model",
                model.model_id
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
            "{:.1} LLM messages/s at peak ({rpm:.0}/min); {:.0} streams in flight",
            r.llm_messages_per_s, r.streams_in_flight
        ),
        format!(
            "{reserved:.0} tokens/min reserved at peak (input + max_tokens {}), {used:.0} used (output × burndown {})",
            llm.max_tokens, model.output_burndown
        ),
        "token cost at the average rate, on-demand prices, no prompt caching".into(),
    ];
    BedrockPlan {
        model_id: ctx.model.model_id.clone(),
        tokens_per_minute: round4(used),
        reserved_tokens_per_minute: round4(reserved),
        tokens_per_minute_quota: quota,
        requests_per_minute: round4(rpm),
        requests_per_minute_quota: llm.requests_per_minute_quota,
        quota_exceeded: exceeded,
        end_of_life: model.end_of_life.clone(),
        streams_in_flight: round4(r.streams_in_flight),
        first_token_p95_ms: model.first_token_p95_ms,
        assessment: Assessment::new(Binding::TokensPerMinute, utilisation, cost, false, notes),
    }
}
