//! Per-stage latency histograms and budget-miss counters, plus a few service counters,
//! rendered as Prometheus text on `GET /metrics` by [`crate::server`]; optionally the
//! same per-message timings as CloudWatch EMF log lines ([`crate::emf`]).
//!
//! Lock-free atomics in fixed arrays indexed by [`Stage`], [`Degradation`] and
//! [`ErrorCode`]: recording sits on the hot path of every message
//! ([`crate::pipeline`]), and the label sets are closed, so no registry crate is needed.

use crate::domain::{Intent, Tier};
use crate::emf::{EmfSink, StageSample};
use crate::protocol::ErrorCode;
use serde::Serialize;
use sizing::LatencyBudgets;
pub use sizing::Stage;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// How an answer was degraded instead of failing; listed in `done.degraded`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Degradation {
    /// Session store missed its deadline or failed: answered without history.
    MemorySkipped,
    /// ML intent model missed its deadline or failed: used the rules' best guess.
    IntentModelSkipped,
    /// Response cache missed its deadline or failed: computed the answer.
    CacheSkipped,
    /// Some service calls missed the deadline or failed: answered with the rest.
    ServicesPartial,
    /// Retrieval missed its deadline or failed: answered without passages.
    RetrievalSkipped,
    /// LLM produced no first token in time (or failed before it): fallback answer.
    LlmFallback,
    /// Every LLM stream permit of the task was taken until the first-token
    /// deadline (`MANGA_MAX_LLM_STREAMS`): fallback answer, the model not asked.
    LlmBusy,
    /// The model hit its token limit or context window: the answer is cut short.
    AnswerTruncated,
    /// Guardrails (ours, or the model provider's filter) redacted, removed or
    /// stopped part of the answer.
    GuardrailRedacted,
    /// The user message tripped the input guardrails (prompt injection, blocked topic).
    InputBlocked,
    /// Saving the turn to the session store missed its deadline or failed.
    SaveSkipped,
    /// The session store served the history read or the turn save from its
    /// fallback (DAX unreachable: DynamoDB directly); the call succeeded, so the
    /// answer is whole, but memory ran on its slower path.
    MemoryFallback,
}

impl Degradation {
    /// Whether the answer itself is worse than a full one (missing
    /// context, passages, results, the model's answer, or shaped by the
    /// guardrails): such an answer is never stored in the shared response
    /// cache, where it would be served to every customer for the cache's
    /// lifetime. A skipped cache read or save, or memory served by its
    /// fallback, does not change the answer.
    pub fn affects_answer(self) -> bool {
        !matches!(
            self,
            Degradation::CacheSkipped | Degradation::SaveSkipped | Degradation::MemoryFallback
        )
    }
}

impl Degradation {
    pub const ALL: [Degradation; 12] = [
        Degradation::MemorySkipped,
        Degradation::IntentModelSkipped,
        Degradation::CacheSkipped,
        Degradation::ServicesPartial,
        Degradation::RetrievalSkipped,
        Degradation::LlmFallback,
        Degradation::LlmBusy,
        Degradation::AnswerTruncated,
        Degradation::GuardrailRedacted,
        Degradation::InputBlocked,
        Degradation::SaveSkipped,
        Degradation::MemoryFallback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Degradation::MemorySkipped => "memory_skipped",
            Degradation::IntentModelSkipped => "intent_model_skipped",
            Degradation::CacheSkipped => "cache_skipped",
            Degradation::ServicesPartial => "services_partial",
            Degradation::RetrievalSkipped => "retrieval_skipped",
            Degradation::LlmFallback => "llm_fallback",
            Degradation::LlmBusy => "llm_busy",
            Degradation::AnswerTruncated => "answer_truncated",
            Degradation::GuardrailRedacted => "guardrail_redacted",
            Degradation::InputBlocked => "input_blocked",
            Degradation::SaveSkipped => "save_skipped",
            Degradation::MemoryFallback => "memory_fallback",
        }
    }
}

/// Upper bounds (seconds) of the latency histogram buckets: fine below 10 ms where the
/// memory and cache budgets live, coarse up to the end-to-end budget.
const BUCKETS: [f64; 17] = [
    0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 1.0,
    2.0, 5.0,
];

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        // Buckets are rendered cumulatively, so only the first matching bucket is counted.
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

#[derive(Debug)]
pub struct Metrics {
    budgets: LatencyBudgets,
    stages: [Histogram; Stage::COUNT],
    misses: [AtomicU64; Stage::COUNT],
    degraded: [AtomicU64; Degradation::ALL.len()],
    errors: [AtomicU64; ErrorCode::ALL.len()],
    messages: [[AtomicU64; Tier::ALL.len()]; Intent::ALL.len()],
    cache_hits: AtomicU64,
    connections_active: AtomicI64,
    connections_total: AtomicU64,
    llm_streams_active: AtomicI64,
    emf: Option<EmfSink>,
    /// Session calls made on DynamoDB directly because DAX was unreachable.
    dax_fallbacks: Option<std::sync::Arc<crate::backends::aws::dax::DaxFallbacks>>,
}

/// One LLM stream in flight, counted in `manga_llm_streams_active` until dropped.
#[derive(Debug)]
pub struct StreamInFlight<'a>(&'a AtomicI64);

impl Drop for StreamInFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn new(budgets: LatencyBudgets) -> Metrics {
        Metrics {
            budgets,
            stages: Default::default(),
            misses: Default::default(),
            degraded: Default::default(),
            errors: Default::default(),
            messages: Default::default(),
            cache_hits: AtomicU64::new(0),
            connections_active: AtomicI64::new(0),
            connections_total: AtomicU64::new(0),
            llm_streams_active: AtomicI64::new(0),
            emf: None,
            dax_fallbacks: None,
        }
    }

    /// Also emits every message's stage timings as CloudWatch EMF lines to `sink`.
    pub fn with_emf(mut self, sink: EmfSink) -> Metrics {
        self.emf = Some(sink);
        self
    }

    /// One message's stages (those that ran) to the EMF sink, if enabled.
    pub fn emit_message(&self, message_id: &str, samples: &[StageSample]) {
        if let Some(emf) = &self.emf {
            emf.emit(message_id, samples);
        }
    }

    /// Renders the DAX session store's fallback counts (`manga_dax_fallbacks_total`).
    pub fn with_dax_fallbacks(
        mut self,
        f: std::sync::Arc<crate::backends::aws::dax::DaxFallbacks>,
    ) -> Metrics {
        self.dax_fallbacks = Some(f);
        self
    }

    pub fn emf_enabled(&self) -> bool {
        self.emf.is_some()
    }

    pub fn budgets(&self) -> &LatencyBudgets {
        &self.budgets
    }

    /// Records one stage duration; returns true when it missed its budget. A stage that
    /// was cut off by its deadline (`timed_out`) always counts as a miss, even if the
    /// timer fired exactly on the budget.
    pub fn observe(&self, stage: Stage, d: Duration, timed_out: bool) -> bool {
        self.stages[stage.index()].observe(d);
        let missed = timed_out || d > stage.budget(&self.budgets);
        if missed {
            self.misses[stage.index()].fetch_add(1, Ordering::Relaxed);
        }
        missed
    }

    /// Counts a budget miss without a duration sample (e.g. one jittery token gap among many).
    pub fn miss(&self, stage: Stage) {
        self.misses[stage.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn budget_misses(&self, stage: Stage) -> u64 {
        self.misses[stage.index()].load(Ordering::Relaxed)
    }

    pub fn stage_count(&self, stage: Stage) -> u64 {
        self.stages[stage.index()].count.load(Ordering::Relaxed)
    }

    pub fn degraded(&self, d: Degradation) {
        self.degraded[d as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn degraded_count(&self, d: Degradation) -> u64 {
        self.degraded[d as usize].load(Ordering::Relaxed)
    }

    pub fn error(&self, code: ErrorCode) {
        self.errors[code as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn error_count(&self, code: ErrorCode) -> u64 {
        self.errors[code as usize].load(Ordering::Relaxed)
    }

    pub fn message(&self, intent: Intent, tier: Tier) {
        self.messages[intent.index()][tier as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn cache_hit(&self) {
        self.cache_hits.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_opened(&self) {
        self.connections_active.fetch_add(1, Ordering::Relaxed);
        self.connections_total.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        self.connections_active.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn connections_active(&self) -> i64 {
        self.connections_active.load(Ordering::Relaxed)
    }

    /// Counts one LLM stream in flight until the guard is dropped.
    pub fn llm_stream_started(&self) -> StreamInFlight<'_> {
        self.llm_streams_active.fetch_add(1, Ordering::Relaxed);
        StreamInFlight(&self.llm_streams_active)
    }

    pub fn llm_streams_active(&self) -> i64 {
        self.llm_streams_active.load(Ordering::Relaxed)
    }

    /// The per-task gauges the service scales on (connected sessions, LLM streams in
    /// flight), as one EMF line, if EMF is on ([`crate::emf::render_gauges`]).
    pub fn emit_gauges(&self) {
        if let Some(emf) = &self.emf {
            emf.emit_gauges(
                self.connections_active().max(0),
                self.llm_streams_active().max(0),
            );
        }
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut o = String::with_capacity(16 * 1024);
        // `write!` into a String cannot fail; the results are ignored on purpose.
        o.push_str("# HELP manga_stage_duration_seconds Time spent in each pipeline stage.\n");
        o.push_str("# TYPE manga_stage_duration_seconds histogram\n");
        for stage in Stage::MEASURED {
            let h = &self.stages[stage.index()];
            let name = stage.key();
            let mut cumulative = 0;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += h.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    o,
                    "manga_stage_duration_seconds_bucket{{stage=\"{name}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let count = h.count.load(Ordering::Relaxed);
            let sum = h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(
                o,
                "manga_stage_duration_seconds_bucket{{stage=\"{name}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                o,
                "manga_stage_duration_seconds_sum{{stage=\"{name}\"}} {sum}"
            );
            let _ = writeln!(
                o,
                "manga_stage_duration_seconds_count{{stage=\"{name}\"}} {count}"
            );
        }
        o.push_str("# HELP manga_stage_budget_miss_total Stage executions that exceeded their latency budget.\n");
        o.push_str("# TYPE manga_stage_budget_miss_total counter\n");
        for stage in Stage::MEASURED {
            let _ = writeln!(
                o,
                "manga_stage_budget_miss_total{{stage=\"{}\"}} {}",
                stage.key(),
                self.budget_misses(stage)
            );
        }
        o.push_str("# HELP manga_stage_budget_seconds Latency budget of each stage.\n");
        o.push_str("# TYPE manga_stage_budget_seconds gauge\n");
        for stage in Stage::MEASURED {
            let _ = writeln!(
                o,
                "manga_stage_budget_seconds{{stage=\"{}\"}} {}",
                stage.key(),
                stage.budget(&self.budgets).as_secs_f64()
            );
        }
        o.push_str("# HELP manga_degraded_total Answers degraded instead of failed, by reason.\n");
        o.push_str("# TYPE manga_degraded_total counter\n");
        for d in Degradation::ALL {
            let _ = writeln!(
                o,
                "manga_degraded_total{{reason=\"{}\"}} {}",
                d.as_str(),
                self.degraded_count(d)
            );
        }
        o.push_str("# HELP manga_errors_total Error frames sent, by code.\n");
        o.push_str("# TYPE manga_errors_total counter\n");
        for c in ErrorCode::ALL {
            let _ = writeln!(
                o,
                "manga_errors_total{{code=\"{}\"}} {}",
                c.as_str(),
                self.error_count(c)
            );
        }
        o.push_str("# HELP manga_messages_total Chat messages answered, by intent and tier.\n");
        o.push_str("# TYPE manga_messages_total counter\n");
        for intent in Intent::ALL {
            for tier in Tier::ALL {
                let n = self.messages[intent.index()][tier as usize].load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        o,
                        "manga_messages_total{{intent=\"{}\",tier=\"{}\"}} {n}",
                        intent.as_str(),
                        tier.as_str()
                    );
                }
            }
        }
        o.push_str("# HELP manga_cache_hits_total Answers served from the response cache.\n");
        o.push_str("# TYPE manga_cache_hits_total counter\n");
        let _ = writeln!(
            o,
            "manga_cache_hits_total {}",
            self.cache_hits.load(Ordering::Relaxed)
        );
        if let Some(f) = &self.dax_fallbacks {
            o.push_str("# HELP manga_dax_fallbacks_total Session calls made on DynamoDB directly because DAX was unreachable (a degradation: DAX's cached session head may be stale until its TTL).\n");
            o.push_str("# TYPE manga_dax_fallbacks_total counter\n");
            for (op, n) in [("load", &f.load), ("append", &f.append)] {
                let _ = writeln!(
                    o,
                    "manga_dax_fallbacks_total{{operation=\"{op}\"}} {}",
                    n.load(Ordering::Relaxed)
                );
            }
        }
        o.push_str("# HELP manga_connections_active Open WebSocket connections.\n");
        o.push_str("# TYPE manga_connections_active gauge\n");
        let _ = writeln!(o, "manga_connections_active {}", self.connections_active());
        o.push_str("# HELP manga_llm_streams_active LLM streams in flight (permit held).\n");
        o.push_str("# TYPE manga_llm_streams_active gauge\n");
        let _ = writeln!(o, "manga_llm_streams_active {}", self.llm_streams_active());
        if let Some(emf) = &self.emf {
            o.push_str("# HELP manga_emf_dropped_total Messages whose EMF lines were dropped (log writer behind).\n");
            o.push_str("# TYPE manga_emf_dropped_total counter\n");
            let _ = writeln!(o, "manga_emf_dropped_total {}", emf.dropped());
        }
        o.push_str("# HELP manga_connections_total WebSocket connections accepted.\n");
        o.push_str("# TYPE manga_connections_total counter\n");
        let _ = writeln!(
            o,
            "manga_connections_total {}",
            self.connections_total.load(Ordering::Relaxed)
        );
        o
    }
}
