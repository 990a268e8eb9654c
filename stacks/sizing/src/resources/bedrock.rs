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

/// The Bedrock usage at peak, over every model the environment invokes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BedrockPlan {
    /// Each model with the tiers it answers, its demand and quotas.
    pub models: Vec<ModelUsage>,
    /// Quota tokens per minute used at peak, all models.
    pub tokens_per_minute: f64,
    /// Quota tokens per minute reserved at peak, all models.
    pub reserved_tokens_per_minute: f64,
    /// Requests per minute at peak, all models.
    pub requests_per_minute: f64,
    /// Whether peak demand exceeds a quota of any model.
    pub quota_exceeded: bool,
    /// Streams open at once at peak (Little's law).
    pub streams_in_flight: f64,
    /// Binding constraint, utilisation, cost and notes.
    pub assessment: Assessment,
}

/// One model's share of the Bedrock demand at peak.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelUsage {
    /// The id the runtime invokes (a model id or inference profile id).
    pub model_id: String,
    /// The tiers that use it.
    pub tiers: Vec<String>,
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
    /// Whether peak demand exceeds one of its quotas.
    pub quota_exceeded: bool,
    /// Bedrock end-of-life date of the model, if known.
    pub end_of_life: Option<String>,
    /// Assumed first-token p95 of the model, ms.
    pub first_token_p95_ms: f64,
    /// Its tokens at the average rate, USD per month.
    pub monthly_cost_usd: f64,
}

/// Checks each model's quotas and prices its tokens.
pub(crate) fn size(ctx: &Ctx<'_>, findings: &mut Findings) -> BedrockPlan {
    let r = ctx.rates;
    let llm = &ctx.input.llm;
    let profiles = ctx.a.tiers.all();
    let peak = r.tier_messages_per_s.values();
    let mix = &ctx.input.targets.tier_mix;
    let shares = [mix.template, mix.simple_llm, mix.standard_llm, mix.complex];
    let total_share: f64 = shares.iter().sum::<f64>().max(1e-9);
    let mut models = Vec::new();
    let mut utilisation = 0.0_f64;
    let mut cost_total = 0.0;
    for choice in llm.models() {
        // The tiers of this model, by index in the tier mix's order.
        let idx: Vec<usize> = choice
            .tiers
            .iter()
            .filter_map(|t| crate::input::LLM_TIERS.iter().position(|x| x == t))
            .map(|i| i + 1)
            .filter(|i| profiles[*i].uses_llm())
            .collect();
        let model = ctx.tier_models[idx.first().copied().unwrap_or(0)];
        let per_minute = |f: &dyn Fn(&crate::assumptions::TierProfile) -> f64| -> f64 {
            idx.iter().map(|i| peak[*i] * f(profiles[*i]) * 60.0).sum()
        };
        let used = per_minute(&|p| p.input_tokens + p.output_tokens * model.output_burndown);
        let reserved = per_minute(&|p| p.input_tokens + f64::from(llm.max_tokens));
        let rpm: f64 = idx.iter().map(|i| peak[*i] * 60.0).sum();
        let quota = choice.tokens_per_minute_quota;
        let id = choice.model_id.as_str();
        // u64 → f64 loses precision only beyond 2^53 tokens per minute.
        let tpm_util = reserved / (quota as f64).max(1.0);
        let rpm_util = choice
            .requests_per_minute_quota
            .map(|q| rpm / (q as f64).max(1.0));
        let util = if idx.is_empty() {
            0.0
        } else {
            tpm_util.max(rpm_util.unwrap_or(0.0))
        };
        if !idx.is_empty() {
            let band = |what: &str, need: f64, quota: u64, util: f64, findings: &mut Findings| {
                if util > 1.0 {
                    findings.warn(
                        "bedrock",
                        format!(
                            "{id}: {need:.0} {what} at peak exceed the quota of {quota} ({util:.2}×): requests will be throttled; request a quota increase or buy provisioned throughput"
                        ),
                    );
                } else if util >= WARNING_BAND {
                    findings.warn(
                        "bedrock",
                        format!(
                            "{id}: {need:.0} {what} at peak use {:.0}% of the quota of {quota}: above the {:.0}% band, a peak a little higher is throttled",
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
            match (choice.requests_per_minute_quota, rpm_util) {
                (Some(q), Some(u)) => band("requests per minute", rpm, q, u, findings),
                _ => findings.warn(
                    "bedrock",
                    format!(
                        "{id}: {rpm:.0} requests per minute at peak against no requests_per_minute_quota: give the account's quota (mangactl preflight reads it)"
                    ),
                ),
            }
            if let Some(eol) = &model.end_of_life {
                findings.warn(
                    "bedrock",
                    format!(
                        "{id} reaches end of life on Bedrock on {eol} (assumptions bedrock.models); choose a current model"
                    ),
                );
            }
        }
        // Tokens at the average rate: the tiers' share of the average.
        let (avg_in, avg_out) = idx.iter().fold((0.0, 0.0), |(i, o), t| {
            let w = shares[*t] / total_share;
            (
                i + r.average_messages_per_s * w * profiles[*t].input_tokens,
                o + r.average_messages_per_s * w * profiles[*t].output_tokens,
            )
        });
        let cost = match ctx.prices.bedrock(&model.model_id) {
            Ok(p) => round_cents(
                (avg_in * p.input_per_1k_tokens + avg_out * p.output_per_1k_tokens) / 1000.0
                    * SECONDS_PER_MONTH,
            ),
            Err(e) => {
                findings.errors.push(e);
                0.0
            }
        };
        cost_total += cost;
        utilisation = utilisation.max(util);
        models.push(ModelUsage {
            model_id: choice.model_id.clone(),
            tiers: choice.tiers.iter().map(|t| (*t).to_owned()).collect(),
            tokens_per_minute: round4(used),
            reserved_tokens_per_minute: round4(reserved),
            tokens_per_minute_quota: quota,
            requests_per_minute: round4(rpm),
            requests_per_minute_quota: choice.requests_per_minute_quota,
            quota_exceeded: util > 1.0,
            end_of_life: model.end_of_life.clone(),
            first_token_p95_ms: model.first_token_p95_ms,
            monthly_cost_usd: cost,
        });
    }
    // A model no tier uses any more (every tier has its own) is the
    // runtime's default only: it carries no demand and is not reported.
    models.retain(|m| !m.tiers.is_empty());
    let sum = |f: fn(&ModelUsage) -> f64| models.iter().map(f).sum::<f64>();
    let (used, reserved, rpm) = (
        sum(|m| m.tokens_per_minute),
        sum(|m| m.reserved_tokens_per_minute),
        sum(|m| m.requests_per_minute),
    );
    let mut notes = vec![format!(
        "{:.1} LLM messages/s at peak ({rpm:.0}/min); {:.0} streams in flight",
        r.llm_messages_per_s, r.streams_in_flight
    )];
    for m in &models {
        notes.push(format!(
            "{} ({}): {:.0} tokens/min reserved at peak (input + max_tokens {}), {:.0} used, {:.0} requests/min",
            m.model_id,
            m.tiers.join(", "),
            m.reserved_tokens_per_minute,
            llm.max_tokens,
            m.tokens_per_minute,
            m.requests_per_minute
        ));
    }
    notes.push("token cost at the average rate, on-demand prices, no prompt caching".into());
    BedrockPlan {
        quota_exceeded: models.iter().any(|m| m.quota_exceeded),
        models,
        tokens_per_minute: round4(used),
        reserved_tokens_per_minute: round4(reserved),
        requests_per_minute: round4(rpm),
        streams_in_flight: round4(r.streams_in_flight),
        assessment: Assessment::new(
            Binding::TokensPerMinute,
            utilisation,
            round_cents(cost_total),
            false,
            notes,
        ),
    }
}
