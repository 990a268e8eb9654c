//! Simulated backend timing, for load tests only (`MANGA_SIMULATE=PROFILE.yaml`).
//!
//! A load test on one machine cannot call Bedrock, DynamoDB or OpenSearch, and the
//! embedded backends answer in microseconds, so a benchmark against them measures a
//! pipeline with no waits in it: no streams in flight, no timers, no queueing. This
//! module wraps the real backends (embedded or AWS) in decorators that add the waits
//! a timing [`Profile`] describes, so the orchestrator runs under a realistic shape:
//!
//! - [`SimulatedLlm`]: the inner responder's text, unchanged, re-timed: the first
//!   piece after a drawn time to first token, the rest spread evenly over the time
//!   the profile's output tokens take at a drawn tokens-per-second rate; a share of
//!   calls fail like a throttled Bedrock call (`ThrottlingException`), after a drawn
//!   delay. No text is invented: the words are the inner backend's.
//! - [`Delayed`]: every other backend call waits a drawn time first, per stage.
//!
//! Every drawn wait is written to the message's [`Ledger`] (a task-local the
//! pipeline opens per message, [`scoped`]), and `done` carries the totals
//! ([`SimulatedWaits`], `done.simulated_ms`), so a load generator can subtract what
//! was simulated from what it observed and report the orchestrator's own latency.
//!
//! The shipped profile (`runtime/profiles/`) cites its public measurements. The
//! whole module is inert unless `MANGA_SIMULATE` names a profile, and the runtime
//! logs a warning at start when it does.

use super::filters::Filters;
use super::{
    BackendError, CachedAnswer, IntentModel, Llm, Prediction, Recommendation, ResponseCache,
    Retriever, Served, Services, SessionStore, TokenStream,
};
use crate::domain::{Corpus, Order, Passage, Prompt, Scope, Tier, Title, Turn, Volume};
use async_trait::async_trait;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// z of the 95th percentile of the standard normal distribution.
use sizing::assumptions::Z95;

/// A latency distribution in milliseconds: log-normal, given by its median and 95th
/// percentile (a p95 equal to the median is a constant).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Millis {
    pub median: f64,
    pub p95: f64,
}

/// A rate (tokens per second): log-normal, given by its median and 5th percentile
/// (the slow tail is the low one).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub median: f64,
    pub p5: f64,
}

/// Draws from a log-normal with this median and σ (`z` standard normal).
fn lognormal(median: f64, sigma: f64, z: f64) -> f64 {
    median * (sigma * z).exp()
}

/// A standard normal draw (Box–Muller).
fn std_normal() -> f64 {
    let u1 = fastrand::f64().max(f64::MIN_POSITIVE);
    let u2 = fastrand::f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

impl Millis {
    fn sigma(&self) -> f64 {
        (self.p95 / self.median).ln() / Z95
    }

    /// One draw.
    pub fn draw(&self) -> Duration {
        Duration::from_secs_f64(lognormal(self.median, self.sigma(), std_normal()).max(0.0) / 1e3)
    }

    fn check(&self, what: &str, errors: &mut Vec<String>) {
        if !(self.median > 0.0 && self.p95 >= self.median && self.p95.is_finite()) {
            errors.push(format!(
                "{what}: needs 0 < median <= p95 (got median {}, p95 {})",
                self.median, self.p95
            ));
        }
    }
}

impl Rate {
    fn sigma(&self) -> f64 {
        (self.median / self.p5).ln() / Z95
    }

    /// One draw.
    pub fn draw(&self) -> f64 {
        lognormal(self.median, self.sigma(), std_normal())
    }

    fn check(&self, what: &str, errors: &mut Vec<String>) {
        if !(self.p5 > 0.0 && self.median >= self.p5 && self.median.is_finite()) {
            errors.push(format!(
                "{what}: needs 0 < p5 <= median (got median {}, p5 {})",
                self.median, self.p5
            ));
        }
    }
}

/// Output tokens of one answer, per LLM tier.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierTokens {
    pub simple_llm: u32,
    pub standard_llm: u32,
    pub complex: u32,
}

impl TierTokens {
    fn get(&self, tier: Tier) -> u32 {
        match tier {
            Tier::SimpleLlm => self.simple_llm,
            Tier::Complex => self.complex,
            Tier::StandardLlm | Tier::Template => self.standard_llm,
        }
    }
}

/// How the simulated model behaves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmProfile {
    /// The model whose public measurements this is (for the report; not called).
    pub model_id: String,
    /// From the request to the first streamed token.
    pub first_token_ms: Millis,
    /// Output speed after the first token.
    pub output_tokens_per_s: Rate,
    /// Answer length per tier.
    pub output_tokens: TierTokens,
    /// Share of calls that fail as throttled (0..=1).
    pub throttle_rate: f64,
    /// How long a throttled call takes to fail.
    pub throttle_ms: Millis,
}

/// Waits of the other backends, per stage.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageProfile {
    /// Conversation memory read (`SessionStore::load`).
    pub memory_read: Millis,
    /// Turn save (`SessionStore::append`).
    pub memory_write: Millis,
    /// ML intent call (`IntentModel::classify`).
    pub intent_ml: Millis,
    /// Response-cache get and put.
    pub cache: Millis,
    /// Each commerce service call.
    pub service_calls: Millis,
    /// Each retrieval query.
    pub retrieval: Millis,
}

/// A simulated timing profile (a YAML file; see `runtime/profiles/`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// A name for logs and reports.
    pub name: String,
    /// Where each figure comes from (free text, one entry per source).
    #[serde(default)]
    pub sources: Vec<String>,
    pub llm: LlmProfile,
    pub stages: StageProfile,
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("simulation profile {path}: {message}")]
    Read { path: String, message: String },
    #[error("simulation profile {path}: {}", .errors.join("; "))]
    Invalid { path: String, errors: Vec<String> },
}

impl Profile {
    /// Reads and checks a profile file; every problem is reported at once.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ProfileError::Read {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        Profile::parse(&text).map_err(|e| match e {
            ProfileError::Read { message, .. } => ProfileError::Read {
                path: shown.clone(),
                message,
            },
            ProfileError::Invalid { errors, .. } => ProfileError::Invalid {
                path: shown.clone(),
                errors,
            },
        })
    }

    /// Parses and checks profile YAML.
    pub fn parse(text: &str) -> Result<Profile, ProfileError> {
        let p: Profile = serde_saphyr::from_str(text).map_err(|e| ProfileError::Read {
            path: String::new(),
            message: e.to_string(),
        })?;
        let mut errors = Vec::new();
        let l = &p.llm;
        l.first_token_ms.check("llm.first_token_ms", &mut errors);
        l.output_tokens_per_s
            .check("llm.output_tokens_per_s", &mut errors);
        l.throttle_ms.check("llm.throttle_ms", &mut errors);
        if !(0.0..=1.0).contains(&l.throttle_rate) {
            errors.push(format!(
                "llm.throttle_rate: needs 0..=1 (got {})",
                l.throttle_rate
            ));
        }
        let s = &p.stages;
        for (what, m) in [
            ("stages.memory_read", s.memory_read),
            ("stages.memory_write", s.memory_write),
            ("stages.intent_ml", s.intent_ml),
            ("stages.cache", s.cache),
            ("stages.service_calls", s.service_calls),
            ("stages.retrieval", s.retrieval),
        ] {
            m.check(what, &mut errors);
        }
        if errors.is_empty() {
            Ok(p)
        } else {
            Err(ProfileError::Invalid {
                path: String::new(),
                errors,
            })
        }
    }
}

/// What one message waited for in simulation, as `done.simulated_ms` reports it: the
/// length of the union of the simulated waits (parallel waits overlap, so two
/// concurrent 100 ms waits count 100 ms), up to the first token and up to `done`, and
/// the scheduled gap between streamed pieces.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SimulatedWaits {
    pub first_token: f64,
    pub end_to_end: f64,
    /// Present when an LLM answer was streamed on a schedule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_gap: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the first token can be sent.
    BeforeFirstToken,
    /// The stream after its first piece, or the turn save.
    After,
}

/// The simulated waits of one message.
#[derive(Debug, Default)]
pub struct Ledger {
    spans: Vec<(Instant, Instant, Phase)>,
    token_gap: Option<Duration>,
}

/// Length of the union of the intervals.
fn union_ms(mut v: Vec<(Instant, Instant)>) -> f64 {
    v.sort_by_key(|s| s.0);
    let mut total = Duration::ZERO;
    let mut cur: Option<(Instant, Instant)> = None;
    for (a, b) in v {
        match cur {
            Some((ca, cb)) if a <= cb => cur = Some((ca, cb.max(b))),
            Some((ca, cb)) => {
                total += cb - ca;
                cur = Some((a, b));
            }
            None => cur = Some((a, b)),
        }
    }
    if let Some((a, b)) = cur {
        total += b - a;
    }
    total.as_secs_f64() * 1e3
}

impl Ledger {
    /// The totals so far.
    pub fn waits(&self) -> SimulatedWaits {
        let before = self
            .spans
            .iter()
            .filter(|s| s.2 == Phase::BeforeFirstToken)
            .map(|s| (s.0, s.1))
            .collect();
        SimulatedWaits {
            first_token: union_ms(before),
            end_to_end: union_ms(self.spans.iter().map(|s| (s.0, s.1)).collect()),
            token_gap: self.token_gap.map(|g| g.as_secs_f64() * 1e3),
        }
    }
}

tokio::task_local! {
    static LEDGER: RefCell<Ledger>;
}

/// Runs one message's future with a ledger when `on` (no cost otherwise).
pub async fn scoped<F: std::future::Future>(on: bool, f: F) -> F::Output {
    if on {
        LEDGER.scope(RefCell::new(Ledger::default()), f).await
    } else {
        f.await
    }
}

/// The current message's simulated waits, if it runs under [`scoped`].
pub fn current() -> Option<SimulatedWaits> {
    LEDGER.try_with(|l| l.borrow().waits()).ok()
}

fn record(start: Instant, end: Instant, phase: Phase) {
    let _ = LEDGER.try_with(|l| l.borrow_mut().spans.push((start, end, phase)));
}

/// Resolution of tokio's timer wheel: a sleep ends up to this much after its deadline
/// by construction. That rounding belongs to the simulation, not to the orchestrator.
const TIMER_RESOLUTION: Duration = Duration::from_millis(1);

/// When a simulated wait planned to end at `planned` counts as ended, seen at `now`:
/// cut short, it ends now; otherwise at most one timer tick after its plan (a later
/// wake-up is the runtime's scheduling, which is the orchestrator's to answer for).
fn ended(planned: Instant, now: Instant) -> Instant {
    now.min(planned + TIMER_RESOLUTION)
}

/// Records its wait when dropped: see [`ended`].
struct Wait {
    start: Instant,
    planned: Instant,
    phase: Phase,
}

impl Wait {
    fn new(d: Duration, phase: Phase) -> Wait {
        let start = Instant::now();
        Wait {
            start,
            planned: start + d,
            phase,
        }
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        let end = ended(self.planned, Instant::now());
        // A stream dropped before its first piece has no stream part.
        if end > self.start {
            record(self.start, end, self.phase);
        }
    }
}

/// Waits `d` (recorded in the ledger), then runs `f`.
async fn after<T>(d: Duration, phase: Phase, f: impl std::future::Future<Output = T>) -> T {
    let w = Wait::new(d, phase);
    tokio::time::sleep_until(w.planned).await;
    drop(w);
    f.await
}

/// The simulated model: the inner responder's words on the profile's schedule.
#[derive(Debug)]
pub struct SimulatedLlm {
    inner: Arc<dyn Llm>,
    profile: LlmProfile,
}

impl SimulatedLlm {
    pub fn new(inner: Arc<dyn Llm>, profile: LlmProfile) -> SimulatedLlm {
        SimulatedLlm { inner, profile }
    }
}

#[async_trait]
impl Llm for SimulatedLlm {
    fn name(&self) -> &'static str {
        "simulated"
    }

    async fn stream(&self, prompt: &Prompt) -> Result<TokenStream, BackendError> {
        let p = &self.profile;
        if fastrand::f64() < p.throttle_rate {
            return after(p.throttle_ms.draw(), Phase::BeforeFirstToken, async {
                Err(BackendError::Unavailable(
                    "simulated ThrottlingException (MANGA_SIMULATE)".into(),
                ))
            })
            .await;
        }
        let called = Instant::now();
        let first = called + p.first_token_ms.draw();
        // The whole inner answer first (the embedded responder has it at once), so the
        // schedule alone decides when each piece leaves.
        let mut inner = self.inner.stream(prompt).await?;
        let mut pieces = Vec::new();
        while let Some(piece) = inner.next().await {
            pieces.push(piece?);
        }
        let tokens = f64::from(p.output_tokens.get(prompt.tier).max(1));
        let tps = p.output_tokens_per_s.draw().max(1e-3);
        let stream_time = Duration::from_secs_f64(tokens / tps);
        let gap = if pieces.len() > 1 {
            stream_time / (pieces.len() as u32 - 1)
        } else {
            Duration::ZERO
        };
        let last = first + gap * (pieces.len().max(1) as u32 - 1);
        if pieces.len() > 1 {
            let _ = LEDGER.try_with(|l| l.borrow_mut().token_gap = Some(gap));
        }
        // The time to first token is recorded when the first piece leaves (or its
        // future is dropped by the first-token deadline), the rest of the stream when
        // the stream is dropped (done or cut short).
        let mut to_first = Some(Wait {
            start: called,
            planned: first,
            phase: Phase::BeforeFirstToken,
        });
        let stream_wait = Wait {
            start: first,
            planned: last,
            phase: Phase::After,
        };
        let s = futures_util::stream::iter(pieces.into_iter().enumerate()).then(move |(i, w)| {
            let _held = &stream_wait;
            let to_first = to_first.take();
            let at = first + gap * i as u32;
            async move {
                tokio::time::sleep_until(at).await;
                drop(to_first);
                Ok(w)
            }
        });
        Ok(s.boxed())
    }

    async fn ready(&self) -> Result<(), BackendError> {
        self.inner.ready().await
    }
}

/// Any other backend behind a drawn wait per call.
#[derive(Debug)]
pub struct Delayed<T: ?Sized> {
    inner: Arc<T>,
    stages: StageProfile,
}

impl<T: ?Sized> Delayed<T> {
    pub fn new(inner: Arc<T>, stages: StageProfile) -> Delayed<T> {
        Delayed { inner, stages }
    }
}

#[async_trait]
impl SessionStore for Delayed<dyn SessionStore> {
    async fn load(&self, key: &str, max_turns: usize) -> Result<Vec<Turn>, BackendError> {
        let d = self.stages.memory_read.draw();
        after(d, Phase::BeforeFirstToken, self.inner.load(key, max_turns)).await
    }
    async fn append(&self, key: &str, turn: Turn) -> Result<(), BackendError> {
        let d = self.stages.memory_write.draw();
        after(d, Phase::After, self.inner.append(key, turn)).await
    }
    // The inner store's own report of how it served the call passes through.
    async fn load_served(
        &self,
        key: &str,
        max_turns: usize,
    ) -> Result<(Vec<Turn>, Served), BackendError> {
        let d = self.stages.memory_read.draw();
        after(
            d,
            Phase::BeforeFirstToken,
            self.inner.load_served(key, max_turns),
        )
        .await
    }
    async fn append_served(&self, key: &str, turn: Turn) -> Result<Served, BackendError> {
        let d = self.stages.memory_write.draw();
        after(d, Phase::After, self.inner.append_served(key, turn)).await
    }
    async fn ready(&self) -> Result<(), BackendError> {
        self.inner.ready().await
    }
}

#[async_trait]
impl IntentModel for Delayed<dyn IntentModel> {
    async fn classify(&self, text: &str) -> Result<Prediction, BackendError> {
        let d = self.stages.intent_ml.draw();
        after(d, Phase::BeforeFirstToken, self.inner.classify(text)).await
    }
    async fn ready(&self) -> Result<(), BackendError> {
        self.inner.ready().await
    }
}

#[async_trait]
impl ResponseCache for Delayed<dyn ResponseCache> {
    async fn get(&self, key: &str) -> Result<Option<CachedAnswer>, BackendError> {
        let d = self.stages.cache.draw();
        after(d, Phase::BeforeFirstToken, self.inner.get(key)).await
    }
    async fn put(&self, key: &str, answer: CachedAnswer) -> Result<(), BackendError> {
        let d = self.stages.cache.draw();
        after(d, Phase::After, self.inner.put(key, answer)).await
    }
    async fn ready(&self) -> Result<(), BackendError> {
        self.inner.ready().await
    }
}

#[async_trait]
impl Services for Delayed<dyn Services> {
    async fn search_catalog(&self, query: &str, limit: usize) -> Result<Vec<Title>, BackendError> {
        let d = self.stages.service_calls.draw();
        after(
            d,
            Phase::BeforeFirstToken,
            self.inner.search_catalog(query, limit),
        )
        .await
    }
    async fn lookup_title(&self, query: &str) -> Result<Option<Title>, BackendError> {
        let d = self.stages.service_calls.draw();
        after(d, Phase::BeforeFirstToken, self.inner.lookup_title(query)).await
    }
    async fn lookup_volume(
        &self,
        query: &str,
        number: u32,
    ) -> Result<Option<(Title, Option<Volume>)>, BackendError> {
        let d = self.stages.service_calls.draw();
        after(
            d,
            Phase::BeforeFirstToken,
            self.inner.lookup_volume(query, number),
        )
        .await
    }
    async fn order_status(
        &self,
        order_id: &str,
        scope: Scope<'_>,
    ) -> Result<Option<Order>, BackendError> {
        let d = self.stages.service_calls.draw();
        after(
            d,
            Phase::BeforeFirstToken,
            self.inner.order_status(order_id, scope),
        )
        .await
    }
    async fn recommend(
        &self,
        query: &str,
        seen: &[String],
        limit: usize,
    ) -> Result<Recommendation, BackendError> {
        let d = self.stages.service_calls.draw();
        after(
            d,
            Phase::BeforeFirstToken,
            self.inner.recommend(query, seen, limit),
        )
        .await
    }
    async fn ready(&self) -> Result<(), BackendError> {
        self.inner.ready().await
    }
}

#[async_trait]
impl Retriever for Delayed<dyn Retriever> {
    async fn retrieve(
        &self,
        query: &str,
        k: usize,
        corpus: Corpus,
        filters: &Filters,
    ) -> Result<Vec<Passage>, BackendError> {
        let d = self.stages.retrieval.draw();
        after(
            d,
            Phase::BeforeFirstToken,
            self.inner.retrieve(query, k, corpus, filters),
        )
        .await
    }
    async fn ready(&self) -> Result<(), BackendError> {
        self.inner.ready().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROFILE: &str = include_str!("../../profiles/claude-3-5-sonnet-bedrock.yaml");

    #[test]
    fn the_shipped_profile_parses() {
        let p = Profile::parse(PROFILE).expect("shipped profile");
        assert!(p.llm.first_token_ms.median > 0.0);
        assert!(
            !p.sources.is_empty(),
            "the shipped profile cites its sources"
        );
    }

    #[test]
    fn every_bad_figure_is_reported_at_once() {
        let bad = PROFILE
            .replace("throttle_rate: 0.01", "throttle_rate: 2")
            .replace("median: 54", "median: 0");
        let Err(ProfileError::Invalid { errors, .. }) = Profile::parse(&bad) else {
            panic!("accepted a bad profile")
        };
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("llm.throttle_rate")));
        assert!(errors
            .iter()
            .any(|e| e.starts_with("llm.output_tokens_per_s")));
    }

    #[test]
    fn draws_follow_the_median_and_p95() {
        fastrand::seed(7);
        let m = Millis {
            median: 100.0,
            p95: 300.0,
        };
        let mut v: Vec<f64> = (0..20_000).map(|_| m.draw().as_secs_f64() * 1e3).collect();
        v.sort_by(f64::total_cmp);
        let (med, p95) = (v[10_000], v[19_000]);
        assert!((med - 100.0).abs() < 5.0, "median {med}");
        assert!((p95 - 300.0).abs() < 20.0, "p95 {p95}");
        let r = Rate {
            median: 50.0,
            p5: 25.0,
        };
        let mut v: Vec<f64> = (0..20_000).map(|_| r.draw()).collect();
        v.sort_by(f64::total_cmp);
        assert!((v[1_000] - 25.0).abs() < 2.0, "p5 {}", v[1_000]);
    }

    #[test]
    fn parallel_waits_overlap_and_sequential_ones_add() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        // Two concurrent waits of 100 and 60 ms, then one of 50 ms 10 ms later.
        let v = vec![
            (t, t + ms(100)),
            (t, t + ms(60)),
            (t + ms(110), t + ms(160)),
        ];
        assert!((union_ms(v) - 150.0).abs() < 1e-6);
        assert_eq!(union_ms(Vec::new()), 0.0);
    }

    /// A responder that answers with fixed words at once.
    #[derive(Debug)]
    struct Words(&'static [&'static str]);

    #[async_trait]
    impl Llm for Words {
        fn name(&self) -> &'static str {
            "words"
        }
        async fn stream(&self, _: &Prompt) -> Result<TokenStream, BackendError> {
            let v: Vec<Result<String, BackendError>> =
                self.0.iter().map(|w| Ok((*w).to_owned())).collect();
            Ok(futures_util::stream::iter(v).boxed())
        }
    }

    fn fixed(ms: f64) -> Millis {
        Millis {
            median: ms,
            p95: ms,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_llm_keeps_the_inner_words_on_the_profiles_schedule() {
        let profile = LlmProfile {
            model_id: "m".into(),
            first_token_ms: fixed(500.0),
            // 40 tokens at 100 tokens/s: 400 ms from the first piece to the last.
            output_tokens_per_s: Rate {
                median: 100.0,
                p5: 100.0,
            },
            output_tokens: TierTokens {
                simple_llm: 40,
                standard_llm: 75,
                complex: 400,
            },
            throttle_rate: 0.0,
            throttle_ms: fixed(1.0),
        };
        let llm = SimulatedLlm::new(
            Arc::new(Words(&["one ", "two ", "three ", "four ", "five"])),
            profile,
        );
        let prompt = Prompt {
            intent: crate::domain::Intent::ProductQuestion,
            tier: Tier::SimpleLlm,
            user_text: "q".into(),
            history: vec![],
            tools: vec![],
            passages: vec![],
            sources: vec![],
        };
        let (pieces, waits) = scoped(true, async {
            let t0 = Instant::now();
            let mut s = llm.stream(&prompt).await.expect("stream");
            let mut at = Vec::new();
            while let Some(p) = s.next().await {
                at.push((p.expect("piece"), (Instant::now() - t0).as_millis()));
            }
            drop(s);
            (at, current().expect("ledger"))
        })
        .await;
        let words: Vec<&str> = pieces.iter().map(|(w, _)| w.as_str()).collect();
        assert_eq!(
            words,
            ["one ", "two ", "three ", "four ", "five"],
            "the inner text, unchanged"
        );
        let times: Vec<u128> = pieces.iter().map(|(_, t)| *t).collect();
        assert_eq!(
            times,
            [500, 600, 700, 800, 900],
            "first at 500 ms, then every 400 / 4 ms"
        );
        assert_eq!(waits.first_token, 500.0);
        assert_eq!(waits.end_to_end, 900.0);
        assert_eq!(waits.token_gap, Some(100.0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cut_wait_counts_what_it_took() {
        let ledger = scoped(true, async {
            // A 50 ms wait cut by a 20 ms deadline counts 20 ms.
            let slow = after(Duration::from_millis(50), Phase::BeforeFirstToken, async {});
            assert!(tokio::time::timeout(Duration::from_millis(20), slow)
                .await
                .is_err());
            current().expect("ledger")
        })
        .await;
        assert!((ledger.first_token - 20.0).abs() < 1e-6, "{ledger:?}");
        assert_eq!(current(), None, "no ledger outside the scope");
    }
}
