//! Arrival rates derived from the traffic targets.
//!
//! Everything downstream is sized from these rates, so they are computed once
//! here and carried in the plan: an engineer reading `mangactl size` can check
//! the arithmetic (messages/s, per-tier rates, streams in flight) before
//! trusting any capacity built on it. All rates are at peak unless named
//! `average_*`.

use serde::Serialize;

use crate::assumptions::{Assumptions, BedrockModel, TierProfile};
use crate::erlang::littles_law;
use crate::input::SizingInput;

/// One value per response tier.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PerTier {
    /// Template or cached answers.
    pub template: f64,
    /// Short LLM answers.
    pub simple_llm: f64,
    /// RAG LLM answers.
    pub standard_llm: f64,
    /// Complex multi-turn answers.
    pub complex: f64,
}

impl PerTier {
    fn from_fn(mut f: impl FnMut(usize) -> f64) -> Self {
        PerTier {
            template: f(0),
            simple_llm: f(1),
            standard_llm: f(2),
            complex: f(3),
        }
    }

    /// The values in tier-mix order.
    pub fn values(&self) -> [f64; 4] {
        [
            self.template,
            self.simple_llm,
            self.standard_llm,
            self.complex,
        ]
    }

    /// Sum over tiers.
    pub fn total(&self) -> f64 {
        self.values().iter().sum()
    }
}

/// Rates the resources are sized from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rates {
    /// Open sessions (WebSocket connections) at peak.
    pub concurrent_sessions: u32,
    /// Messages per second at peak.
    pub messages_per_s: f64,
    /// Messages per second averaged over the day (peak / peak_factor).
    pub average_messages_per_s: f64,
    /// Messages per second per tier at peak.
    pub tier_messages_per_s: PerTier,
    /// Messages per second that call the LLM at peak.
    pub llm_messages_per_s: f64,
    /// Intent classifications the rules cannot settle, per second at peak.
    pub intent_ml_per_s: f64,
    /// Redis reads per second at peak.
    pub cache_reads_per_s: f64,
    /// Redis writes (cache fills) per second at peak.
    pub cache_writes_per_s: f64,
    /// Conversation-memory reads per second at peak.
    pub memory_reads_per_s: f64,
    /// Conversation-memory writes per second at peak.
    pub memory_writes_per_s: f64,
    /// Vector-search queries per second at peak.
    pub retrieval_queries_per_s: f64,
    /// LLM streams open at once at peak, per tier (Little's law).
    pub streams_in_flight_by_tier: PerTier,
    /// LLM streams open at once at peak.
    pub streams_in_flight: f64,
    /// Bedrock input plus output tokens per minute at peak.
    pub tokens_per_minute: f64,
    /// Bedrock input tokens per second, averaged over the day.
    pub average_input_tokens_per_s: f64,
    /// Bedrock output tokens per second, averaged over the day.
    pub average_output_tokens_per_s: f64,
}

/// Computes every rate from the traffic targets and tier profiles.
///
/// - messages/s = sessions × messages/session/min ÷ 60 × peak_factor
/// - tier rate = messages/s × tier share
/// - ML-intent rate = messages/s × (1 − rules_confident_share): every message
///   runs the rules; the ones they cannot settle go to the model
/// - streams in flight (Little's law) = Σ tier rate × (mean first token +
///   mean stream duration)
pub fn arrival_rates(input: &SizingInput, a: &Assumptions, models: &[&BedrockModel; 4]) -> Rates {
    let t = &input.targets.traffic;
    let average = f64::from(t.concurrent_sessions) * t.messages_per_session_per_minute / 60.0;
    let peak = average * t.peak_factor;
    let mix = &input.targets.tier_mix;
    let shares = [mix.template, mix.simple_llm, mix.standard_llm, mix.complex];
    let profiles: [&TierProfile; 4] = a.tiers.all();

    let tier = PerTier::from_fn(|i| peak * shares[i] / 100.0);
    let llm = PerTier::from_fn(|i| {
        if profiles[i].uses_llm() {
            tier.values()[i]
        } else {
            0.0
        }
    })
    .total();
    let streams = PerTier::from_fn(|i| {
        let p = profiles[i];
        if p.uses_llm() {
            let m = models[i];
            let seconds = (m.first_token_mean_ms() + m.stream_mean_ms(p.output_tokens)) / 1000.0;
            littles_law(tier.values()[i], seconds)
        } else {
            0.0
        }
    });
    let tokens_per_s: f64 = (0..4)
        .map(|i| tier.values()[i] * (profiles[i].input_tokens + profiles[i].output_tokens))
        .sum();
    let avg_tier = |i: usize| average * shares[i] / 100.0;
    let avg_in: f64 = (0..4).map(|i| avg_tier(i) * profiles[i].input_tokens).sum();
    let avg_out: f64 = (0..4)
        .map(|i| avg_tier(i) * profiles[i].output_tokens)
        .sum();
    let retrieval: f64 = (0..4)
        .map(|i| tier.values()[i] * profiles[i].retrieval_queries)
        .sum();

    Rates {
        concurrent_sessions: t.concurrent_sessions,
        messages_per_s: peak,
        average_messages_per_s: average,
        tier_messages_per_s: tier,
        llm_messages_per_s: llm,
        intent_ml_per_s: peak * (1.0 - t.rules_confident_share),
        cache_reads_per_s: peak * a.redis.reads_per_message.v(),
        cache_writes_per_s: peak * (1.0 - t.cache_hit_ratio) * a.redis.writes_per_miss.v(),
        memory_reads_per_s: peak * a.dynamodb.reads_per_message.v(),
        memory_writes_per_s: peak * a.dynamodb.writes_per_message.v(),
        retrieval_queries_per_s: retrieval,
        streams_in_flight: streams.total(),
        streams_in_flight_by_tier: streams,
        tokens_per_minute: tokens_per_s * 60.0,
        average_input_tokens_per_s: avg_in,
        average_output_tokens_per_s: avg_out,
    }
}
