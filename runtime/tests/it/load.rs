//! A CI-sized load smoke over real sockets: a few hundred sessions from
//! `manga-loadgen` (the benchmark's own client, `src/bin/manga-loadgen.rs`)
//! against a server on 127.0.0.1, seconds long. It asserts correctness
//! only (every question answered with `done`, no error, no drop); the
//! latency and memory figures come from `scripts/bench-sessions`, never
//! from a timed assertion.

use serde_json::Value;

use crate::support::{builder, TestServer};

/// Runs `manga-loadgen` against `url` and returns its JSON report.
async fn loadgen(url: String, args: &'static [&'static str]) -> Value {
    let report = std::env::temp_dir().join(format!(
        "manga-loadgen-{}-{}.json",
        std::process::id(),
        fastrand::u64(..)
    ));
    let path = report.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_manga-loadgen"))
            .args(["--url", &url])
            .args(args)
            .arg("--json")
            .arg(&path)
            .output()
    })
    .await
    .expect("join")
    .expect("run manga-loadgen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
    let _ = std::fs::remove_file(&report);
    r
}

/// Correctness of a load run: everyone connected, every question ended in `done`
/// with tokens, no error, no drop.
fn assert_every_answer(r: &Value, sessions: u64) {
    assert_eq!(r["connected"], sessions, "{r}");
    assert_eq!(r["connect_failed"], 0, "{r}");
    assert_eq!(r["dropped"], 0, "{r}");
    assert!(r["messages_sent"].as_u64().unwrap_or(0) > 100, "{r}");
    assert_eq!(
        r["messages_done"], r["messages_sent"],
        "every question ends in done: {r}"
    );
    assert_eq!(r["errors"], serde_json::json!({}), "{r}");
    assert_eq!(
        r["first_token_ms"]["count"], r["messages_done"],
        "every answer streamed tokens: {r}"
    );
}

/// The server of both load tests. No per-answer cap in practice: on a loaded
/// 2-core machine (debug build, other tests and builds alongside) an answer can
/// pass 4 × the streaming budget, and `stream_timeout` would turn these
/// correctness tests into timed ones.
const SERVER_ARGS: &[&str] = &[
    "--max-connections",
    "1000",
    "--session-capacity",
    "2000",
    "--stream-max-secs",
    "120",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_sessions_each_get_every_answer() {
    let server = TestServer::start(builder(SERVER_ARGS)).await;
    let r = loadgen(
        server.ws_url("/v1/chat"),
        &[
            "--sessions",
            "300",
            "--ramp",
            "1",
            "--duration",
            "3",
            "--rate",
            "150",
        ],
    )
    .await;
    assert_every_answer(&r, 300);
    assert_eq!(r["simulated"], false, "{r}");
}

/// A fast timing profile of the same shape as the shipped one (waits of tens of
/// milliseconds, so the test stays seconds long), throttling off.
const FAST_PROFILE: &str = r#"
name: ci-fast
llm:
  model_id: test-model
  first_token_ms: {median: 40, p95: 80}
  output_tokens_per_s: {median: 400, p5: 250}
  output_tokens: {simple_llm: 10, standard_llm: 20, complex: 40}
  throttle_rate: 0
  throttle_ms: {median: 5, p95: 10}
stages:
  memory_read: {median: 2, p95: 4}
  memory_write: {median: 2, p95: 4}
  intent_ml: {median: 5, p95: 10}
  cache: {median: 0.5, p95: 1}
  service_calls: {median: 5, p95: 10}
  retrieval: {median: 5, p95: 10}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_simulated_profile_every_answer_reports_its_simulated_waits() {
    let dir = tempfile_dir();
    let profile = dir.join("profile.yaml");
    std::fs::write(&profile, FAST_PROFILE).expect("write profile");
    let profile_arg = profile.display().to_string();
    let args: Vec<&str> = SERVER_ARGS
        .iter()
        .copied()
        .chain(["--simulate", profile_arg.as_str()])
        .collect();
    let server = TestServer::start(builder(&args)).await;
    let r = loadgen(
        server.ws_url("/v1/chat"),
        &[
            "--sessions",
            "200",
            "--ramp",
            "1",
            "--duration",
            "3",
            "--rate",
            "100",
        ],
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    assert_every_answer(&r, 200);
    assert_eq!(r["simulated"], true, "every done carried simulated_ms: {r}");
    let overhead = &r["orchestrator_overhead"];
    assert_eq!(
        overhead["end_to_end_ms"]["count"], r["messages_done"],
        "one overhead sample per answer: {r}"
    );
    // What was simulated is at most what the customer waited (1 ms of timer
    // resolution per wait aside): overhead is never meaningfully negative.
    assert!(
        overhead["end_to_end_ms"]["p50"].as_f64().unwrap_or(-1.0) > -1.0,
        "{r}"
    );
    // The tier mix reaches the server (complex ones need a follow-up, which few
    // sessions ask in three seconds).
    for tier in ["template", "simple_llm", "standard_llm"] {
        assert!(
            r["answered_by_tier"][tier].as_u64().unwrap_or(0) > 0,
            "{tier}: {r}"
        );
    }
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "manga-sim-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}
