//! The staged chat pipeline: one module per stage, composed in [`Pipeline::handle`],
//! which reads top to bottom in the order of the seed latency budget:
//!
//! 1. [`auth`] — token expiry and per-user rate limit (the JWT itself is verified once
//!    per connection by [`crate::server`] with the same [`auth::Authenticator`]);
//! 2. [`context`] — conversation memory via `SessionStore`;
//! 3. [`intent`] — rules first, the `IntentModel` when the rules are not confident;
//! 4. [`cache`] — `ResponseCache` for template and FAQ answers;
//! 5. [`fetch`] — `Services` calls in parallel with `Retriever`;
//! 6. [`respond`] — template answer, or an `Llm` stream under first-token and
//!    inter-token deadlines;
//! 7. [`guardrails`] — input screening and streaming output redaction;
//! 8. [`deliver`] — frames to the client; the turn saved (own deadline), then `done` with
//!    the customer-side timings.
//!
//! Every stage runs under its budget from [`sizing::LatencyBudgets`] and degrades
//! rather than fails (see [`crate::metrics::Degradation`]). Timings use
//! `tokio::time::Instant` so tests can drive them with `tokio::time::pause()`.

pub mod auth;
pub mod cache;
pub mod context;
pub mod deliver;
pub mod fetch;
pub mod guardrails;
pub mod intent;
pub mod respond;

use crate::backends::{IntentModel, Llm, ResponseCache, Retriever, Services, SessionStore};
use crate::emf::StageSample;
use crate::metrics::{Degradation, Metrics, Stage};
use crate::protocol::WriteClock;
use crate::protocol::{ErrorCode, Outbound};
use sizing::LatencyBudgets;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

/// Where a message's frames go (the connection's writer task in [`crate::server`]).
///
/// A client that goes away mid-message does not stop the message: frames are
/// dropped from then on ([`Outbox::is_gone`]), but the answer is completed and
/// its turn saved, so the customer finds it in the conversation when they
/// reconnect, on this task or another.
#[derive(Debug, Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Outbound>,
    gone: Arc<AtomicBool>,
}

impl Outbox {
    pub fn new(tx: mpsc::Sender<Outbound>) -> Outbox {
        Outbox {
            tx,
            gone: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The client is gone (its reader ended, or the writer stopped).
    pub fn mark_gone(&self) {
        self.gone.store(true, Ordering::Relaxed);
    }

    pub fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Relaxed) || self.tx.is_closed()
    }

    /// Queues `o` for the writer; false (and gone from now on) when the
    /// client is gone.
    pub async fn send(&self, o: Outbound) -> bool {
        if self.is_gone() {
            return false;
        }
        if self.tx.send(o).await.is_err() {
            self.mark_gone();
            return false;
        }
        true
    }
}

/// The backends the pipeline talks to, all behind traits.
#[derive(Debug, Clone)]
pub struct Backends {
    pub sessions: Arc<dyn SessionStore>,
    pub model: Arc<dyn IntentModel>,
    pub cache: Arc<dyn ResponseCache>,
    pub services: Arc<dyn Services>,
    pub retriever: Arc<dyn Retriever>,
    pub llm: Arc<dyn Llm>,
}

/// Pipeline knobs that are not latency budgets.
#[derive(Debug, Clone)]
pub struct Settings {
    pub history_turns: usize,
    pub rules_confidence: f32,
    /// Hard cap on one streamed answer.
    pub stream_max: Duration,
    /// Deadline of the turn save (its own: no stage budget cuts it short).
    pub save_timeout: Duration,
    /// LLM streams in flight on this task (`MANGA_MAX_LLM_STREAMS`).
    pub llm_streams: Arc<Semaphore>,
    /// Intent-model calls in flight on this task (`MANGA_MAX_MODEL_CALLS`).
    pub model_calls: Arc<Semaphore>,
    /// The question's constraints (genre, demographic, volume, price) with the catalog's
    /// vocabulary; applied by retrieval as filters ([`fetch`]).
    pub filters: Arc<crate::backends::filters::FilterParser>,
    /// Backends run under a simulated timing profile (`MANGA_SIMULATE`): each message
    /// keeps a ledger of its simulated waits and `done` reports them.
    pub simulated: bool,
}

/// One chat message to answer.
#[derive(Debug, Clone)]
pub struct Request {
    /// Unique across tasks (it identifies the saved turn).
    pub message_id: String,
    pub session_id: String,
    pub text: String,
    pub principal: auth::Principal,
    /// When the frame was read off the socket: the customer's clock starts here.
    pub received: Instant,
}

impl Request {
    /// A request received now.
    pub fn new(
        message_id: impl Into<String>,
        session_id: impl Into<String>,
        text: impl Into<String>,
        principal: auth::Principal,
    ) -> Request {
        Request {
            message_id: message_id.into(),
            session_id: session_id.into(),
            text: text.into(),
            principal,
            received: Instant::now(),
        }
    }
}

/// How a message ended (also visible to the client as `done` or `error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageOutcome {
    Done {
        cache_hit: bool,
    },
    Error(ErrorCode),
    /// The connection went away mid-message.
    ClientGone,
}

#[derive(Debug)]
pub struct Pipeline {
    backends: Backends,
    budgets: LatencyBudgets,
    metrics: Arc<Metrics>,
    settings: Settings,
    rules: intent::IntentRules,
    limiter: auth::RateLimiter,
    guardrails: guardrails::Guardrails,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot build the pipeline: {0}")]
pub struct PipelineError(String);

impl Pipeline {
    pub fn new(
        backends: Backends,
        metrics: Arc<Metrics>,
        settings: Settings,
        limiter: auth::RateLimiter,
    ) -> Result<Pipeline, PipelineError> {
        Ok(Pipeline {
            backends,
            budgets: *metrics.budgets(),
            metrics,
            settings,
            rules: intent::IntentRules::new().map_err(|e| PipelineError(e.to_string()))?,
            limiter,
            guardrails: guardrails::Guardrails::new().map_err(|e| PipelineError(e.to_string()))?,
        })
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn backends(&self) -> &Backends {
        &self.backends
    }

    pub fn rules(&self) -> &intent::IntentRules {
        &self.rules
    }

    /// Answers one message, sending `start`, `token`s and `done` (or an `error`) to `out`.
    pub async fn handle(&self, req: Request, out: &Outbox) -> MessageOutcome {
        crate::backends::simulated::scoped(self.settings.simulated, self.answer(req, out)).await
    }

    async fn answer(&self, mut req: Request, out: &Outbox) -> MessageOutcome {
        let b = &self.backends;
        let mut run = Run::new(
            &self.metrics,
            &self.budgets,
            req.message_id.clone(),
            req.received,
        );
        // The writer times this message's token frames from here on.
        out.send(Outbound::Track(run.clock.clone())).await;

        // PII the customer typed (card, phone, e-mail) never reaches a model, the cache
        // or the session store.
        let (text, redacted) = self.guardrails.redact(&req.text);
        if redacted {
            req.text = text;
            run.degrade(Degradation::GuardrailRedacted);
        }

        // 1. Auth (token still valid) and per-user rate limit.
        if let Err(e) = auth::admit(&self.limiter, &req.principal, &mut run) {
            return deliver::fail(out, &mut run, e.code(), &e.to_string(), e.retry_after()).await;
        }

        // 2. Conversation context; a slow store means answering without history.
        let session_key = req.principal.session_key(&req.session_id);
        let history = context::load(
            &*b.sessions,
            &session_key,
            self.settings.history_turns,
            &mut run,
        )
        .await;

        // 3. Intent: input guardrails, rules, then the model if the rules are unsure.
        let screened = self.guardrails.screen_input(&req.text);
        let intent = intent::classify(
            &self.rules,
            &*b.model,
            &self.settings.model_calls,
            &req.text,
            screened,
            &history,
            self.settings.rules_confidence,
            &mut run,
        )
        .await;
        self.metrics.message(intent.intent, intent.tier);
        deliver::start(out, &mut run, &req, &intent).await;

        let save = deliver::Save {
            sessions: &*b.sessions,
            session_key: &session_key,
            timeout: self.settings.save_timeout,
            cache: None,
        };

        // 4. Response cache (template and FAQ answers only); a slow cache is skipped.
        let cache_key = cache::key(intent.intent, &req.text);
        if let Some(hit) = cache::lookup(&*b.cache, cache_key.as_deref(), &mut run).await {
            let reply = respond::cached(&hit, &self.guardrails, out, &mut run).await;
            return deliver::finish(out, &mut run, &req, &intent, hit.sources, reply, true, save)
                .await;
        }

        // 5. Service calls in parallel with retrieval, each under its own deadline.
        let fetched = fetch::gather(
            &*b.services,
            &*b.retriever,
            &intent,
            &req.text,
            req.principal.scope(),
            &history,
            &self.settings.filters.parse(&req.text),
            &self.guardrails,
            &mut run,
        )
        .await;

        // 6 + 7. Template answer or LLM stream, through the output guardrails.
        let prompt = respond::prompt(intent.intent, intent.tier, &req.text, history, fetched);
        let reply = respond::reply(
            &*b.llm,
            intent.tier,
            &prompt,
            &self.guardrails,
            &self.settings,
            out,
            &mut run,
        )
        .await;

        // 8. Save the turn, `done` with timings, then cache cacheable answers.
        let save = deliver::Save {
            cache: cache_key.as_deref().map(|k| (&*b.cache, k)),
            ..save
        };
        deliver::finish(
            out,
            &mut run,
            &req,
            &intent,
            prompt.sources,
            reply,
            false,
            save,
        )
        .await
    }
}

/// Per-message bookkeeping: stage timings for `done`, degradations, metrics.
#[derive(Debug)]
pub struct Run<'a> {
    metrics: &'a Metrics,
    budgets: &'a LatencyBudgets,
    pub message_id: String,
    started: Instant,
    timings: [Option<Duration>; Stage::COUNT],
    /// Which stages missed their budget, for the EMF `BudgetMiss` metric.
    missed: [bool; Stage::COUNT],
    degraded: Vec<Degradation>,
    closed: bool,
    /// When this message's token frames reached the socket (stamped by the writer).
    pub clock: Arc<WriteClock>,
    /// Whether any token frame was queued (so there is a first token to time).
    pub sent_tokens: bool,
    /// The answer was an LLM stream (inter-token gaps are its jitter).
    pub streamed: bool,
    /// The LLM missed its own first-token deadline (the fallback was sent).
    pub llm_first_token_missed: bool,
    /// The stream stalled (a gap beyond the inter-token deadline).
    pub stalled: bool,
}

/// Stages whose time is spread over many small steps (every token); they are summed per
/// message and observed once when the message ends.
const ACCUMULATED: [Stage; 2] = [Stage::Guardrails, Stage::Delivery];

impl<'a> Run<'a> {
    /// `received`: when the message came off the socket; end-to-end and
    /// first-token times start there.
    pub fn new(
        metrics: &'a Metrics,
        budgets: &'a LatencyBudgets,
        message_id: String,
        received: Instant,
    ) -> Self {
        Run {
            metrics,
            budgets,
            message_id,
            started: received,
            timings: [None; Stage::COUNT],
            missed: [false; Stage::COUNT],
            degraded: Vec::new(),
            closed: false,
            clock: Arc::new(WriteClock::new(received)),
            sent_tokens: false,
            streamed: false,
            llm_first_token_missed: false,
            stalled: false,
        }
    }

    pub fn budget(&self, stage: Stage) -> Duration {
        stage.budget(self.budgets)
    }

    pub fn budgets(&self) -> &LatencyBudgets {
        self.budgets
    }

    pub fn metrics(&self) -> &'a Metrics {
        self.metrics
    }

    /// Records a one-shot stage; returns true if it missed its budget.
    pub fn record(&mut self, stage: Stage, d: Duration, timed_out: bool) -> bool {
        self.timings[stage.index()] = Some(d);
        let missed = self.metrics.observe(stage, d, timed_out);
        self.missed[stage.index()] = missed;
        missed
    }

    /// Adds time to an accumulated stage (guardrails, delivery).
    pub fn add(&mut self, stage: Stage, d: Duration) {
        let t = self.timings[stage.index()].get_or_insert(Duration::ZERO);
        *t += d;
    }

    pub fn degrade(&mut self, d: Degradation) {
        if !self.degraded.contains(&d) {
            self.degraded.push(d);
            self.metrics.degraded(d);
        }
    }

    pub fn degraded(&self) -> &[Degradation] {
        &self.degraded
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Observes the accumulated stages and the end-to-end time, once, and emits the
    /// message's EMF lines when enabled.
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        for stage in ACCUMULATED {
            if let Some(d) = self.timings[stage.index()] {
                self.missed[stage.index()] = self.metrics.observe(stage, d, false);
            }
        }
        let total = self.started.elapsed();
        self.timings[Stage::EndToEnd.index()] = Some(total);
        self.missed[Stage::EndToEnd.index()] = self.metrics.observe(Stage::EndToEnd, total, false);
        if self.metrics.emf_enabled() {
            let samples: Vec<StageSample> = Stage::MEASURED
                .iter()
                .filter_map(|s| {
                    self.timings[s.index()].map(|latency| StageSample {
                        stage: *s,
                        latency,
                        missed: self.missed[s.index()],
                        budget: s.budget(self.budgets),
                    })
                })
                .collect();
            self.metrics.emit_message(&self.message_id, &samples);
        }
    }

    /// Milliseconds per stage that ran, for the `done` frame.
    pub fn timings_ms(&self) -> BTreeMap<&'static str, f64> {
        Stage::MEASURED
            .iter()
            .filter_map(|s| {
                self.timings[s.index()].map(|d| (s.key(), (d.as_secs_f64() * 1e6).round() / 1e3))
            })
            .collect()
    }
}

/// Runs `fut` under `deadline`, records the stage, and returns `None` on timeout.
pub async fn timed<F: std::future::Future>(
    run: &mut Run<'_>,
    stage: Stage,
    fut: F,
) -> Option<F::Output> {
    let deadline = run.budget(stage);
    let start = Instant::now();
    let r = tokio::time::timeout(deadline, fut).await;
    run.record(stage, start.elapsed(), r.is_err());
    r.ok()
}
