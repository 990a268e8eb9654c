//! A CI-sized load smoke over real sockets: a few hundred sessions from
//! `manga-loadgen` (the benchmark's own client, `src/bin/manga-loadgen.rs`)
//! against a server on 127.0.0.1, seconds long. It asserts correctness
//! only (every question answered with `done`, no error, no drop); the
//! latency and memory figures come from `scripts/bench-sessions`, never
//! from a timed assertion.

use serde_json::Value;

use crate::support::{builder, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_sessions_each_get_every_answer() {
    // No per-answer cap in practice: on a loaded 2-core machine (debug build, other
    // tests and builds alongside) an answer can pass 4 × the streaming budget, and
    // `stream_timeout` would turn this correctness test into a timed one.
    let server = TestServer::start(builder(&[
        "--max-connections",
        "1000",
        "--session-capacity",
        "2000",
        "--stream-max-secs",
        "120",
    ]))
    .await;
    let report = std::env::temp_dir().join(format!("manga-loadgen-{}.json", std::process::id()));
    let url = server.ws_url("/v1/chat");
    let path = report.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_manga-loadgen"))
            .args(["--url", &url])
            .args([
                "--sessions",
                "300",
                "--ramp",
                "1",
                "--duration",
                "3",
                "--rate",
                "150",
            ])
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
    assert_eq!(r["connected"], 300, "{r}");
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
