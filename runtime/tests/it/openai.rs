//! The OpenAI-compatible backend against a fake SSE server on 127.0.0.1, directly and
//! through a WebSocket conversation.

use crate::support::{builder, TestServer};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use manga_runtime::backends::openai::OpenAiCompatible;
use manga_runtime::backends::Llm;
use manga_runtime::domain::{Intent, Prompt, SourceRef, Tier};
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// Serves `/v1/chat/completions` as SSE and records the request bodies.
async fn fake_server(seen: Arc<Mutex<Vec<Value>>>) -> String {
    let chat = move |Json(body): Json<Value>| {
        let seen = seen.clone();
        async move {
            if let Ok(mut s) = seen.lock() {
                s.push(body);
            }
            let chunks = ["Hello", " from", " the", " model [1]"];
            let mut sse =
                String::from("data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n");
            for c in chunks {
                sse.push_str(&format!(
                    "data: {{\"choices\":[{{\"delta\":{{\"content\":{}}}}}]}}\n\n",
                    serde_json::to_string(c).expect("json")
                ));
            }
            sse.push_str("data: [DONE]\n\n");
            ([("content-type", "text/event-stream")], sse).into_response()
        }
    };
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route(
            "/v1/models",
            get(|| async { Json(serde_json::json!({"data": []})) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/v1")
}

#[tokio::test]
async fn streams_sse_tokens_and_sends_grounded_context() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let base = fake_server(seen.clone()).await;
    let llm = OpenAiCompatible::new(&base, "test-model", None, 64).expect("client");
    llm.ready().await.expect("GET /models");
    let prompt = Prompt {
        intent: Intent::ProductSearch,
        tier: Tier::StandardLlm,
        user_text: "do you have one piece".into(),
        history: vec![],
        tools: vec![],
        passages: vec![],
        sources: vec![SourceRef {
            id: "catalog:one-piece".into(),
            title: "One Piece".into(),
        }],
    };
    let tokens: Vec<String> = llm
        .stream(&prompt)
        .await
        .expect("stream")
        .map(|t| t.expect("token"))
        .collect()
        .await;
    assert_eq!(tokens.concat(), "Hello from the model [1]");
    let body = seen.lock().expect("lock")[0].clone();
    assert_eq!(body["stream"], true);
    assert_eq!(body["model"], "test-model");
    let system = body["messages"][0]["content"]
        .as_str()
        .expect("system prompt");
    assert!(system.contains("[1] One Piece"), "{system}");
    assert_eq!(body["messages"][1]["content"], "do you have one piece");
}

#[tokio::test]
async fn websocket_answer_through_the_openai_backend() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let base = fake_server(seen).await;
    let s = TestServer::start(builder(&["--llm", "openai", "--openai-base-url", &base])).await;
    let ready: Value = serde_json::from_str(
        &reqwest::get(s.url("/readyz"))
            .await
            .expect("readyz")
            .text()
            .await
            .expect("body"),
    )
    .expect("json");
    assert_eq!(ready["llm"], "openai");
    let mut c = s.connect().await;
    let a = c.ask("o", "do you have one piece?").await;
    assert_eq!(a.start()["tier"], "standard_llm");
    assert_eq!(a.text(), "Hello from the model [1]");
    assert_eq!(a.last()["type"], "done");
    assert_eq!(a.last()["sources"][0]["id"], "catalog:one-piece");
}

#[tokio::test]
async fn unreachable_llm_server_makes_readyz_fail_and_answers_fall_back() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let base = format!("http://127.0.0.1:{port}/v1");
    let s = TestServer::start(builder(&["--llm", "openai", "--openai-base-url", &base])).await;
    let r = reqwest::get(s.url("/readyz")).await.expect("readyz");
    assert_eq!(r.status(), 503);
    let mut c = s.connect().await;
    let a = c.ask("o", "do you have one piece?").await;
    assert_eq!(a.last()["type"], "done");
    assert_eq!(a.last()["degraded"][0], "llm_fallback");
    assert!(a.text().contains("One Piece by Eiichiro Oda"));
}

/// Flags when the server side of a response body is dropped (the client went away).
struct DropFlag(Arc<std::sync::atomic::AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_dropped_stream_releases_a_server_that_never_finishes() {
    let released = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = released.clone();
    // One token, then silence for ever: a hung model server.
    let chat = move || {
        let flag = flag.clone();
        async move {
            let guard = DropFlag(flag);
            let first = futures_util::stream::once(async {
                Ok::<_, std::io::Error>(axum::body::Bytes::from_static(
                    b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n",
                ))
            });
            let hang = futures_util::stream::pending();
            let body = first.chain(hang).map(move |c| {
                let _keep = &guard;
                c
            });
            (
                [("content-type", "text/event-stream")],
                axum::body::Body::from_stream(body),
            )
                .into_response()
        }
    };
    let app = Router::new().route("/v1/chat/completions", post(chat));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let llm = OpenAiCompatible::new(&format!("http://{addr}/v1"), "m", None, 16).expect("client");
    let prompt = Prompt {
        intent: Intent::ProductSearch,
        tier: Tier::StandardLlm,
        user_text: "hi".into(),
        history: vec![],
        tools: vec![],
        passages: vec![],
        sources: vec![],
    };
    let mut s = llm.stream(&prompt).await.expect("stream");
    assert_eq!(s.next().await.expect("a token").expect("ok"), "Hi");
    assert!(!released.load(std::sync::atomic::Ordering::SeqCst));
    // The pipeline gives up (its inter-token deadline) and drops the stream.
    drop(s);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !released.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reader still holds the hung response"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
