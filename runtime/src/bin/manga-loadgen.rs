//! `manga-loadgen`: holds N WebSocket sessions against a running
//! `manga-runtime` and sends Poisson-timed questions in the seed's tier mix,
//! measuring what a customer sees over a real socket: time to `start`, to the
//! first `token` and to `done` from the moment the question was written, every
//! gap between tokens, errors by code, degradations, and connections held and
//! dropped; per tier (as the server classified the question) and overall.
//!
//! Against a server running a simulated timing profile (`MANGA_SIMULATE`), each
//! `done` carries the waits that were simulated (`simulated_ms`), and the report
//! adds the orchestrator's own latency: observed minus simulated, for the first
//! token and end to end, and each inter-token gap minus its scheduled gap.
//!
//! With `--server-pid` it reads the server's RSS (before the ramp, with every
//! session idle, and each second under load) and its CPU seconds over the
//! question phase, so CPU per message and memory per session come from one run.
//! Its own CPU share is reported too: it runs beside the server on the same cores.
//!
//! Cheap enough to run beside the server: one task per session, token frames
//! recognised by their prefix without a JSON parse. Sessions are told apart by
//! `X-Forwarded-For` (the runtime's identity with auth off), so the per-user rate
//! limit applies per session as it would per customer.
//!
//!   cargo run --release -p manga-runtime --bin manga-loadgen -- \
//!       --url ws://127.0.0.1:8080/v1/chat --sessions 1000 --rate 100 --duration 30

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Parser)]
#[command(
    name = "manga-loadgen",
    about = "Hold N chat sessions and measure what customers see"
)]
struct Args {
    /// The chat endpoint.
    #[arg(long, default_value = "ws://127.0.0.1:8080/v1/chat")]
    url: String,
    /// Sessions held open.
    #[arg(long, default_value_t = 100)]
    sessions: usize,
    /// Seconds over which the sessions connect.
    #[arg(long, default_value_t = 5.0)]
    ramp: f64,
    /// Seconds of questions after the ramp (then every session closes once its
    /// question in flight is answered).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Questions per second over all sessions (Poisson arrivals; a session
    /// has at most one question in flight).
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Tier mix in percent, `template=35,simple_llm=25,standard_llm=30,complex=10`
    /// (the seed's, as in environments/prod.yaml `targets.tier_mix`). A complex
    /// question is a follow-up, so a session's first question is drawn from the
    /// other tiers.
    #[arg(
        long,
        default_value = "template=35,simple_llm=25,standard_llm=30,complex=10"
    )]
    mix: String,
    /// Seconds to hold the sessions idle after the ramp, before questions
    /// (for an idle-RSS reading with --server-pid).
    #[arg(long, default_value_t = 0.0)]
    idle: f64,
    /// The server's PID: its RSS and CPU are read from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Bearer token sent with every session (auth on).
    #[arg(long)]
    token: Option<String>,
    /// Write the JSON report here instead of stdout.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

/// The tiers in the order of the mix.
const TIERS: [&str; 4] = ["template", "simple_llm", "standard_llm", "complex"];

/// Questions per tier, as the runtime's rules classify them (`complex` ones lean on
/// an earlier turn, so they only count as complex after one).
const QUESTIONS: [&[&str]; 4] = [
    &[
        "what is your return policy",
        "how long does shipping take",
        "hello there",
        "can i pay with paypal",
    ],
    &[
        "where is my order MA-100042?",
        "is chainsaw man volume 3 in stock?",
        "how much is one piece volume 1?",
    ],
    &[
        "do you have one piece?",
        "recommend a seinen thriller",
        "show me manga like naruto",
    ],
    &[
        "recommend more like that one",
        "anything similar to that one but darker?",
    ],
];

fn parse_mix(s: &str) -> anyhow::Result<[f64; 4]> {
    let mut mix = [0.0; 4];
    for part in s.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = part
            .split_once('=')
            .with_context(|| format!("--mix: `{part}` is not tier=percent"))?;
        let i = TIERS
            .iter()
            .position(|t| *t == k.trim())
            .with_context(|| format!("--mix: unknown tier `{k}` (tiers: {})", TIERS.join(", ")))?;
        mix[i] = v
            .trim()
            .parse()
            .with_context(|| format!("--mix: `{v}` is not a number"))?;
    }
    let total: f64 = mix.iter().sum();
    if total <= 0.0 || mix.iter().any(|m| *m < 0.0) {
        bail!("--mix: percentages must be >= 0 and not all 0");
    }
    Ok(mix.map(|m| m / total))
}

/// Tier weights for a session's next question. A complex question is a follow-up
/// and needs an earlier turn, so it is drawn only in sessions that have one, with its
/// weight raised by the share of questions that have one (`follow_ups`), so that the
/// overall mix stays the one asked for; the other tiers keep their proportions.
fn draw_tier(mix: &[f64; 4], follow_ups: f64, has_history: bool) -> usize {
    let complex = if has_history && follow_ups > 0.0 {
        (mix[3] / follow_ups).min(1.0)
    } else {
        0.0
    };
    let others: f64 = mix[..3].iter().sum();
    let mut u = fastrand::f64();
    if u < complex {
        return 3;
    }
    u = (u - complex) / (1.0 - complex).max(f64::MIN_POSITIVE) * others;
    for (i, m) in mix[..3].iter().enumerate() {
        if u < *m {
            return i;
        }
        u -= m;
    }
    2
}

/// Share of questions asked in a session that already had one, for Poisson arrivals
/// with `q` questions per session on average: 1 − P(N ≥ 1) / E[N].
fn follow_up_share(q: f64) -> f64 {
    if q <= 0.0 {
        0.0
    } else {
        1.0 - (1.0 - (-q).exp()) / q
    }
}

#[derive(Debug, Default)]
struct Series {
    start_ms: Vec<f64>,
    first_token_ms: Vec<f64>,
    done_ms: Vec<f64>,
}

impl Series {
    fn merge(&mut self, o: Series) {
        self.start_ms.extend(o.start_ms);
        self.first_token_ms.extend(o.first_token_ms);
        self.done_ms.extend(o.done_ms);
    }
}

#[derive(Debug, Default)]
struct Samples {
    all: Series,
    /// By the tier the server put the question in (`start.tier`).
    tiers: BTreeMap<String, Series>,
    gap_ms: Vec<f64>,
    /// Observed minus simulated (only against a simulated server).
    first_token_overhead_ms: Vec<f64>,
    end_to_end_overhead_ms: Vec<f64>,
    gap_added_ms: Vec<f64>,
    gap_added_with_holds_ms: Vec<f64>,
    /// The same, as the server timed it (`done.timings_ms`, from the frame read off
    /// the socket to the token written): without the network and this generator.
    first_token_overhead_in_server_ms: Vec<f64>,
    end_to_end_overhead_in_server_ms: Vec<f64>,
    simulated_done: u64,
    errors: BTreeMap<String, u64>,
    degraded: BTreeMap<String, u64>,
    asked_tier: [u64; 4],
    sent: u64,
    done: u64,
    dropped: u64,
    connect_failed: u64,
    connected: u64,
}

impl Samples {
    fn merge(&mut self, o: Samples) {
        self.all.merge(o.all);
        for (k, v) in o.tiers {
            self.tiers.entry(k).or_default().merge(v);
        }
        self.gap_ms.extend(o.gap_ms);
        self.first_token_overhead_ms
            .extend(o.first_token_overhead_ms);
        self.end_to_end_overhead_ms.extend(o.end_to_end_overhead_ms);
        self.gap_added_ms.extend(o.gap_added_ms);
        self.gap_added_with_holds_ms
            .extend(o.gap_added_with_holds_ms);
        self.first_token_overhead_in_server_ms
            .extend(o.first_token_overhead_in_server_ms);
        self.end_to_end_overhead_in_server_ms
            .extend(o.end_to_end_overhead_in_server_ms);
        self.simulated_done += o.simulated_done;
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
        for (k, v) in o.degraded {
            *self.degraded.entry(k).or_default() += v;
        }
        for i in 0..4 {
            self.asked_tier[i] += o.asked_tier[i];
        }
        self.sent += o.sent;
        self.done += o.done;
        self.dropped += o.dropped;
        self.connect_failed += o.connect_failed;
        self.connected += o.connected;
    }
}

#[derive(Debug, Serialize)]
struct Percentiles {
    count: usize,
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

fn percentiles(mut v: Vec<f64>) -> Percentiles {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| {
        if v.is_empty() {
            0.0
        } else {
            let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
            (v[i] * 1000.0).round() / 1000.0
        }
    };
    Percentiles {
        count: v.len(),
        p50: at(0.50),
        p95: at(0.95),
        p99: at(0.99),
        max: v.last().map_or(0.0, |m| (m * 1000.0).round() / 1000.0),
    }
}

fn series_json(s: Series) -> Value {
    serde_json::json!({
        "start_ms": percentiles(s.start_ms),
        "first_token_ms": percentiles(s.first_token_ms),
        "done_ms": percentiles(s.done_ms),
    })
}

/// VmRSS of `pid` in KiB, from /proc.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU seconds (user + system) of a process, from /proc/PID/stat (`self` for this one).
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on Linux for every architecture this runs on.
    Some(ticks / 100.0)
}

/// Words in a token frame's text (at least 1), without a full JSON parse: the text is
/// the frame's last string field.
fn words_in_token_frame(frame: &str) -> usize {
    let text = frame
        .rsplit_once(r#""text":""#)
        .map_or(frame, |(_, t)| t.trim_end_matches("\"}"));
    text.split_whitespace().count().max(1)
}

fn exp_delay(mean_s: f64) -> Duration {
    let u = fastrand::f64().max(f64::MIN_POSITIVE);
    Duration::from_secs_f64(-u.ln() * mean_s)
}

struct Shared {
    args: Args,
    mix: [f64; 4],
    /// Share of questions with an earlier turn in their session ([`follow_up_share`]).
    follow_ups: f64,
    /// Questions asked and not yet answered, over all sessions.
    in_flight: AtomicI64,
}

async fn session(
    i: usize,
    sh: Arc<Shared>,
    connect_at: Instant,
    questions_from: Instant,
    questions_until: Instant,
) -> Samples {
    let args = &sh.args;
    let mut s = Samples::default();
    tokio::time::sleep_until(connect_at.into()).await;
    let mut req = match args.url.as_str().into_client_request() {
        Ok(r) => r,
        Err(_) => {
            s.connect_failed += 1;
            return s;
        }
    };
    let ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    if let Ok(v) = ip.parse() {
        req.headers_mut().insert("x-forwarded-for", v);
    }
    if let Some(t) = &args.token {
        if let Ok(v) = format!("Bearer {t}").parse() {
            req.headers_mut().insert("authorization", v);
        }
    }
    // A client buffer sized for token frames (tungstenite's default read buffer is
    // 128 KiB per connection: 1.3 GB at 10K sessions), and no Nagle delay on the
    // questions, as a browser's WebSocket sends them.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let mut ws = match tokio_tungstenite::connect_async_with_config(req, Some(config), true).await {
        Ok((ws, _)) => ws,
        Err(_) => {
            s.connect_failed += 1;
            return s;
        }
    };
    s.connected += 1;
    tokio::time::sleep_until(questions_from.into()).await;
    let mean = args.sessions as f64 / args.rate.max(0.001);
    let mut answered = 0u32;
    // First question at a uniform offset (the arrivals are already spread), the rest
    // Poisson.
    let mut next = questions_from + exp_delay(mean);
    loop {
        if next >= questions_until {
            break;
        }
        tokio::time::sleep_until(next.into()).await;
        let tier = draw_tier(&sh.mix, sh.follow_ups, answered > 0);
        let qs = QUESTIONS[tier];
        let text = qs[fastrand::usize(..qs.len())];
        s.asked_tier[tier] += 1;
        let frame =
            serde_json::json!({"type": "message", "session_id": format!("load-{i}"), "text": text});
        let sent = Instant::now();
        if ws.send(Message::text(frame.to_string())).await.is_err() {
            s.dropped += 1;
            return s;
        }
        sh.in_flight.fetch_add(1, Ordering::Relaxed);
        s.sent += 1;
        let mut last_token: Option<Instant> = None;
        let mut first_token_ms: Option<f64> = None;
        // (gap before a token frame, pieces it carries: one per word, as the runtime
        // streams and the guardrails release whole words).
        let mut gaps: Vec<(f64, usize)> = Vec::new();
        let mut server_tier = String::from("unknown");
        let mut start_ms = None;
        let ended = loop {
            let msg = match tokio::time::timeout(Duration::from_secs(60), ws.next()).await {
                Ok(Some(Ok(m))) => m,
                Ok(_) => {
                    s.dropped += 1;
                    sh.in_flight.fetch_sub(1, Ordering::Relaxed);
                    return s;
                }
                Err(_) => {
                    *s.errors.entry("client_timeout".into()).or_default() += 1;
                    break None;
                }
            };
            let Message::Text(t) = msg else { continue };
            let now = Instant::now();
            let ms = |a: Instant| a.duration_since(sent).as_secs_f64() * 1000.0;
            // Token frames are most of the traffic: recognised without parsing.
            if t.as_str().starts_with(r#"{"type":"token""#) {
                match last_token {
                    None => first_token_ms = Some(ms(now)),
                    Some(prev) => gaps.push((
                        now.duration_since(prev).as_secs_f64() * 1000.0,
                        words_in_token_frame(t.as_str()),
                    )),
                }
                last_token = Some(now);
                continue;
            }
            let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else {
                continue;
            };
            match v["type"].as_str() {
                Some("start") => {
                    start_ms = Some(ms(now));
                    if let Some(t) = v["tier"].as_str() {
                        server_tier = t.to_owned();
                    }
                }
                Some("done") => break Some((ms(now), v)),
                Some("error") => {
                    let code = v["code"].as_str().unwrap_or("unknown").to_owned();
                    *s.errors.entry(code).or_default() += 1;
                    break None;
                }
                _ => {}
            }
        };
        sh.in_flight.fetch_sub(1, Ordering::Relaxed);
        if let Some((done_ms, v)) = ended {
            s.done += 1;
            answered += 1;
            let t = s.tiers.entry(server_tier).or_default();
            for series in [&mut s.all, t] {
                series.done_ms.push(done_ms);
                series.start_ms.extend(start_ms);
                series.first_token_ms.extend(first_token_ms);
            }
            for d in v["degraded"].as_array().into_iter().flatten() {
                if let Some(d) = d.as_str() {
                    *s.degraded.entry(d.to_owned()).or_default() += 1;
                }
            }
            let sim = &v["simulated_ms"];
            if let (Some(sim_ft), Some(sim_e2e)) =
                (sim["first_token"].as_f64(), sim["end_to_end"].as_f64())
            {
                s.simulated_done += 1;
                if let Some(ft) = first_token_ms {
                    s.first_token_overhead_ms.push(ft - sim_ft);
                }
                s.end_to_end_overhead_ms.push(done_ms - sim_e2e);
                let server = &v["timings_ms"];
                if let Some(ft) = server["first_token"].as_f64() {
                    s.first_token_overhead_in_server_ms.push(ft - sim_ft);
                }
                if let Some(e2e) = server["end_to_end"].as_f64() {
                    s.end_to_end_overhead_in_server_ms.push(e2e - sim_e2e);
                }
                if let Some(g) = sim["token_gap"].as_f64() {
                    // Against the schedule of the pieces each frame carries, and as the
                    // customer sees it (a piece the guardrails held for the next one,
                    // a number that may still grow, arrives one gap late).
                    s.gap_added_ms
                        .extend(gaps.iter().map(|(x, k)| x - g * *k as f64));
                    s.gap_added_with_holds_ms
                        .extend(gaps.iter().map(|(x, _)| x - g));
                }
            }
        }
        s.gap_ms.extend(gaps.iter().map(|(x, _)| *x));
        next = Instant::now() + exp_delay(mean);
    }
    let _ = ws.close(None).await;
    s
}

#[derive(Debug, Default)]
struct LoadReadings {
    rss_peak_kib: Option<u64>,
    in_flight_max: i64,
    in_flight_sum: i64,
    ticks: i64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mix = parse_mix(&args.mix)?;
    let follow_ups = follow_up_share(args.rate * args.duration / args.sessions.max(1) as f64);
    let sh = Arc::new(Shared {
        args,
        mix,
        follow_ups,
        in_flight: AtomicI64::new(0),
    });
    let args = &sh.args;
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("manga-loadgen: open-file limit not raised: {e}");
    }
    let pid = args.server_pid;
    let rss_before = pid.and_then(rss_kib);
    let cpu0 = cpu_seconds("self");
    let t0 = Instant::now();
    let ramp = Duration::from_secs_f64(args.ramp.max(0.0));
    let idle_end =
        t0 + ramp + Duration::from_secs_f64(args.idle.max(0.0)) + Duration::from_millis(200);
    let until = idle_end + Duration::from_secs_f64(args.duration.max(0.0));
    let idle_rss = Arc::new(Mutex::new(None));
    let phase = Arc::new(Mutex::new(None::<(f64, f64, Instant)>));
    if let Some(pid) = pid {
        let r = idle_rss.clone();
        let ph = phase.clone();
        let own = pid.to_string();
        // Read while every session is connected and nothing is asked yet; then the
        // server's and this process's CPU at the start of the questions.
        tokio::spawn(async move {
            tokio::time::sleep_until((idle_end - Duration::from_millis(100)).into()).await;
            *r.lock().await = rss_kib(pid);
            tokio::time::sleep_until(idle_end.into()).await;
            if let (Some(server), Some(me)) = (cpu_seconds(&own), cpu_seconds("self")) {
                *ph.lock().await = Some((server, me, Instant::now()));
            }
        });
    }
    let readings = Arc::new(Mutex::new(LoadReadings::default()));
    {
        let rd = readings.clone();
        let sh = sh.clone();
        // Once a second under load: the server's RSS and the questions in flight.
        tokio::spawn(async move {
            tokio::time::sleep_until(idle_end.into()).await;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let mut r = rd.lock().await;
                if let Some(kib) = pid.and_then(rss_kib) {
                    r.rss_peak_kib = Some(r.rss_peak_kib.unwrap_or(0).max(kib));
                }
                let n = sh.in_flight.load(Ordering::Relaxed);
                r.in_flight_max = r.in_flight_max.max(n);
                r.in_flight_sum += n;
                r.ticks += 1;
            }
        });
    }
    let n = args.sessions.max(1);
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let at = t0 + ramp.mul_f64(i as f64 / n as f64);
        tasks.push(tokio::spawn(session(i, sh.clone(), at, idle_end, until)));
    }
    let mut all = Samples::default();
    for t in tasks {
        all.merge(t.await.context("a session task panicked")?);
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds("self").zip(cpu0).map(|(a, b)| a - b);
    let idle = *idle_rss.lock().await;
    let per_idle_session_kib = match (rss_before, idle) {
        (Some(b), Some(i)) if all.connected > 0 => {
            Some((i.saturating_sub(b)) as f64 / all.connected as f64)
        }
        _ => None,
    };
    // The question phase: from its start to the last answer.
    let questions = match (*phase.lock().await, pid) {
        (Some((server0, me0, at)), Some(pid)) => {
            let secs = at.elapsed().as_secs_f64();
            let server = cpu_seconds(&pid.to_string()).map(|c| c - server0);
            let me = cpu_seconds("self").map(|c| c - me0);
            Some((secs, server, me))
        }
        _ => None,
    };
    let rd = readings.lock().await;
    let per_session_under_load_kib = match (rss_before, rd.rss_peak_kib) {
        (Some(b), Some(p)) if all.connected > 0 => {
            Some(p.saturating_sub(b) as f64 / all.connected as f64)
        }
        _ => None,
    };
    let server_cpu = questions.map(|(secs, server, me)| {
        let per_msg = server
            .filter(|_| all.done > 0)
            .map(|c| c * 1000.0 / all.done as f64);
        serde_json::json!({
            "question_phase_s": secs,
            "server_cpu_s": server,
            "server_cpu_share": server.map(|c| c / secs),
            "loadgen_cpu_share": me.map(|c| c / secs),
            "server_cpu_ms_per_message": per_msg,
        })
    });
    let asked: BTreeMap<&str, u64> = TIERS.iter().copied().zip(all.asked_tier).collect();
    let answered_by_tier: BTreeMap<String, usize> = all
        .tiers
        .iter()
        .map(|(k, v)| (k.clone(), v.done_ms.len()))
        .collect();
    let simulated = all.simulated_done > 0;
    let tiers: BTreeMap<String, Value> = std::mem::take(&mut all.tiers)
        .into_iter()
        .map(|(k, v)| (k, series_json(v)))
        .collect();
    let first_token_ms = percentiles(std::mem::take(&mut all.all.first_token_ms));
    let gap_ms = percentiles(std::mem::take(&mut all.gap_ms));
    let overhead = simulated.then(|| {
        serde_json::json!({
            "first_token_ms": percentiles(std::mem::take(&mut all.first_token_overhead_ms)),
            "end_to_end_ms": percentiles(std::mem::take(&mut all.end_to_end_overhead_ms)),
            "inter_token_gap_added_ms": percentiles(std::mem::take(&mut all.gap_added_ms)),
            "inter_token_gap_added_with_guardrail_holds_ms":
                percentiles(std::mem::take(&mut all.gap_added_with_holds_ms)),
            "first_token_in_server_ms":
                percentiles(std::mem::take(&mut all.first_token_overhead_in_server_ms)),
            "end_to_end_in_server_ms":
                percentiles(std::mem::take(&mut all.end_to_end_overhead_in_server_ms)),
        })
    });
    let report = serde_json::json!({
        "sessions": args.sessions,
        "rate_per_s": args.rate,
        "connected": all.connected,
        "connect_failed": all.connect_failed,
        "dropped": all.dropped,
        "messages_sent": all.sent,
        "messages_done": all.done,
        "errors": all.errors,
        "degraded": all.degraded,
        "asked_by_tier": asked,
        "answered_by_tier": answered_by_tier,
        "start_ms": percentiles(std::mem::take(&mut all.all.start_ms)),
        "first_token_ms": first_token_ms,
        "done_ms": percentiles(std::mem::take(&mut all.all.done_ms)),
        "inter_token_gap_ms": gap_ms,
        "tiers": tiers,
        "simulated": simulated,
        "orchestrator_overhead": overhead,
        "in_flight": {
            "max": rd.in_flight_max,
            "mean": if rd.ticks > 0 { rd.in_flight_sum as f64 / rd.ticks as f64 } else { 0.0 },
        },
        "server_rss_kib": {
            "before": rss_before,
            "idle": idle,
            "peak_under_load": rd.rss_peak_kib,
            "per_idle_session": per_idle_session_kib,
            "per_session_under_load": per_session_under_load_kib,
        },
        "server_cpu": server_cpu,
        "follow_up_share": follow_ups,
        "loadgen_cpu_share": cpu.map(|c| c / wall),
        "wall_s": wall,
    });
    let text = serde_json::to_string_pretty(&report)?;
    match &args.json {
        Some(p) => {
            std::fs::write(p, text + "\n").with_context(|| format!("writing {}", p.display()))?
        }
        None => println!("{text}"),
    }
    eprintln!(
        "manga-loadgen: {} connected ({} failed, {} dropped), {} sent, {} done, errors {}; first token p50 {} ms p95 {} ms; done p95 {} ms; gap p99 {} ms; overhead first token p99 {} ms, end to end p99 {} ms, added gap p95 {} ms; RSS per session idle {} KiB, under load {} KiB; server CPU {} ms/message",
        all.connected,
        all.connect_failed,
        all.dropped,
        all.sent,
        all.done,
        report["errors"],
        report["first_token_ms"]["p50"],
        report["first_token_ms"]["p95"],
        report["done_ms"]["p95"],
        report["inter_token_gap_ms"]["p99"],
        report["orchestrator_overhead"]["first_token_ms"]["p99"],
        report["orchestrator_overhead"]["end_to_end_ms"]["p99"],
        report["orchestrator_overhead"]["inter_token_gap_added_ms"]["p95"],
        per_idle_session_kib.map_or("-".into(), |v| format!("{v:.1}")),
        per_session_under_load_kib.map_or("-".into(), |v| format!("{v:.1}")),
        report["server_cpu"]["server_cpu_ms_per_message"]
            .as_f64()
            .map_or("-".into(), |v| format!("{v:.3}")),
    );
    Ok(())
}
