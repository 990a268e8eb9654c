//! `manga-loadgen`: holds N WebSocket sessions against a running
//! `manga-runtime` and sends Poisson-timed questions, measuring what a
//! customer sees over a real socket: time to `start`, to the first `token`
//! and to `done` from the moment the question was written, every gap
//! between tokens, errors by code, and connections held and dropped.
//! Prints a one-screen summary to stderr and a JSON report to stdout (or
//! `--json FILE`).
//!
//! Cheap enough to run beside the server on the same cores: one task per
//! session, no per-message allocation beyond the frame. Sessions are told
//! apart by `X-Forwarded-For` (the runtime's identity with auth off), so the
//! per-user rate limit applies per session as it would per customer.
//!
//!   cargo run --release -p manga-runtime --bin manga-loadgen -- \
//!       --url ws://127.0.0.1:8080/v1/chat --sessions 1000 --rate 100 --duration 30

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
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
    /// Seconds of questions after the ramp (then every session closes).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Questions per second over all sessions (Poisson arrivals; a session
    /// has at most one question in flight).
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Seconds to hold the sessions idle after the ramp, before questions
    /// (for an idle-RSS reading with --server-pid).
    #[arg(long, default_value_t = 0.0)]
    idle: f64,
    /// The server's PID: its RSS is read before the ramp and while idle.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Bearer token sent with every session (auth on).
    #[arg(long)]
    token: Option<String>,
    /// Write the JSON report here instead of stdout.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

const QUESTIONS: &[&str] = &[
    "do you have one piece?",
    "recommend a seinen thriller",
    "what is your return policy",
    "how long does shipping take",
    "is chainsaw man volume 3 in stock?",
    "recommend more like that one",
];

#[derive(Debug, Default)]
struct Samples {
    start_ms: Vec<f64>,
    first_token_ms: Vec<f64>,
    done_ms: Vec<f64>,
    gap_ms: Vec<f64>,
    errors: BTreeMap<String, u64>,
    sent: u64,
    done: u64,
    dropped: u64,
    connect_failed: u64,
    connected: u64,
}

impl Samples {
    fn merge(&mut self, o: Samples) {
        self.start_ms.extend(o.start_ms);
        self.first_token_ms.extend(o.first_token_ms);
        self.done_ms.extend(o.done_ms);
        self.gap_ms.extend(o.gap_ms);
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
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
        max: v.last().copied().unwrap_or(0.0),
    }
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

/// This process's CPU seconds (user + system), from /proc/self/stat.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn exp_delay(mean_s: f64) -> Duration {
    let u = fastrand::f64().max(f64::MIN_POSITIVE);
    Duration::from_secs_f64(-u.ln() * mean_s)
}

async fn session(
    i: usize,
    args: Arc<Args>,
    connect_at: Instant,
    questions_from: Instant,
    questions_until: Instant,
) -> Samples {
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
    let mut ws = match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => ws,
        Err(_) => {
            s.connect_failed += 1;
            return s;
        }
    };
    s.connected += 1;
    tokio::time::sleep_until(questions_from.into()).await;
    let mean = args.sessions as f64 / args.rate.max(0.001);
    loop {
        let next = Instant::now() + exp_delay(mean);
        if next >= questions_until {
            break;
        }
        tokio::time::sleep_until(next.into()).await;
        let text = QUESTIONS[fastrand::usize(..QUESTIONS.len())];
        let frame =
            serde_json::json!({"type": "message", "session_id": format!("load-{i}"), "text": text});
        let sent = Instant::now();
        if ws.send(Message::text(frame.to_string())).await.is_err() {
            s.dropped += 1;
            return s;
        }
        s.sent += 1;
        let mut last_token: Option<Instant> = None;
        loop {
            let msg = match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
                Ok(Some(Ok(m))) => m,
                Ok(_) => {
                    s.dropped += 1;
                    return s;
                }
                Err(_) => {
                    *s.errors.entry("client_timeout".into()).or_default() += 1;
                    break;
                }
            };
            let Message::Text(t) = msg else { continue };
            let now = Instant::now();
            let ms = |a: Instant| a.duration_since(sent).as_secs_f64() * 1000.0;
            let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else {
                continue;
            };
            match v["type"].as_str() {
                Some("start") => s.start_ms.push(ms(now)),
                Some("token") => {
                    match last_token {
                        None => s.first_token_ms.push(ms(now)),
                        Some(prev) => s
                            .gap_ms
                            .push(now.duration_since(prev).as_secs_f64() * 1000.0),
                    }
                    last_token = Some(now);
                }
                Some("done") => {
                    s.done += 1;
                    s.done_ms.push(ms(now));
                    break;
                }
                Some("error") => {
                    let code = v["code"].as_str().unwrap_or("unknown").to_owned();
                    *s.errors.entry(code).or_default() += 1;
                    break;
                }
                _ => {}
            }
        }
    }
    let _ = ws.close(None).await;
    s
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("manga-loadgen: open-file limit not raised: {e}");
    }
    let rss_before = args.server_pid.and_then(rss_kib);
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let ramp = Duration::from_secs_f64(args.ramp.max(0.0));
    let idle_end =
        t0 + ramp + Duration::from_secs_f64(args.idle.max(0.0)) + Duration::from_millis(200);
    let until = idle_end + Duration::from_secs_f64(args.duration.max(0.0));
    let idle_rss = Arc::new(Mutex::new(None));
    if let Some(pid) = args.server_pid {
        let r = idle_rss.clone();
        // Read while every session is connected and nothing is asked yet.
        tokio::spawn(async move {
            tokio::time::sleep_until((idle_end - Duration::from_millis(100)).into()).await;
            *r.lock().await = rss_kib(pid);
        });
    }
    let n = args.sessions.max(1);
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let at = t0 + ramp.mul_f64(i as f64 / n as f64);
        tasks.push(tokio::spawn(session(i, args.clone(), at, idle_end, until)));
    }
    let mut all = Samples::default();
    for t in tasks {
        all.merge(t.await.context("a session task panicked")?);
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds().zip(cpu0).map(|(a, b)| a - b);
    let idle = *idle_rss.lock().await;
    let per_session_kib = match (rss_before, idle) {
        (Some(b), Some(i)) if all.connected > 0 => {
            Some((i.saturating_sub(b)) as f64 / all.connected as f64)
        }
        _ => None,
    };
    let report = serde_json::json!({
        "sessions": args.sessions,
        "connected": all.connected,
        "connect_failed": all.connect_failed,
        "dropped": all.dropped,
        "messages_sent": all.sent,
        "messages_done": all.done,
        "errors": all.errors,
        "start_ms": percentiles(all.start_ms),
        "first_token_ms": percentiles(all.first_token_ms),
        "done_ms": percentiles(all.done_ms),
        "inter_token_gap_ms": percentiles(all.gap_ms),
        "server_rss_kib": { "before": rss_before, "idle": idle, "per_idle_session": per_session_kib },
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
        "manga-loadgen: {} connected ({} failed, {} dropped), {} sent, {} done, errors {:?}; first token p50 {} ms p99 {} ms; gap p99 {} ms; RSS per idle session {} KiB",
        all.connected,
        all.connect_failed,
        all.dropped,
        all.sent,
        all.done,
        report["errors"],
        report["first_token_ms"]["p50"],
        report["first_token_ms"]["p99"],
        report["inter_token_gap_ms"]["p99"],
        per_session_kib.map_or("-".into(), |v| format!("{v:.1}")),
    );
    Ok(())
}
