//! The embedders: [`TitanEmbedder`] against a local HTTP double that speaks Bedrock's
//! `InvokeModel` request and response documents for Titan Text Embeddings V2, and the
//! local all-MiniLM-L6-v2 model's behaviour (paraphrases closer than unrelated text).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use manga_runtime::backends::aws::static_config;
use manga_runtime::backends::aws::titan::{TitanEmbedder, TITAN_V2};
use manga_runtime::backends::embed::{dot, Embedder};
use manga_runtime::backends::minilm::{self, MiniLmEmbedder};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: HeaderMap,
    body: Value,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// `POST /model/{modelId}/invoke`: a Titan V2 response for the request's `inputText`
/// and `dimensions` (a deterministic, un-normalised vector), or 400 like Bedrock's
/// `ValidationException` for a dimension the model does not offer.
async fn fake_invoke(
    State(log): State<Log>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let req: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    log.lock().expect("log").push(Seen {
        path: uri.path().to_string(),
        headers,
        body: req.clone(),
    });
    let dims = req["dimensions"].as_u64().unwrap_or(1024) as usize;
    let text = req["inputText"].as_str().unwrap_or_default();
    if ![256, 512, 1024].contains(&dims) || text.is_empty() {
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .header(
                "x-amzn-errortype",
                "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/",
            )
            .header("content-type", "application/json")
            .body(Body::from(r#"{"message":"Malformed input request"}"#))
            .expect("response");
    }
    let mut v = vec![0.0f64; dims];
    for (i, b) in text.bytes().enumerate() {
        v[(usize::from(b) * 31 + i) % dims] += 2.0;
    }
    let doc = json!({
        "embedding": v,
        "inputTextTokenCount": text.split_whitespace().count(),
        "embeddingsByType": {"float": v},
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(doc.to_string()))
        .expect("response")
}

async fn start_fake_bedrock() -> (String, Log) {
    let log: Log = Arc::default();
    let app = axum::Router::new()
        .route("/model/{model}/invoke", axum::routing::post(fake_invoke))
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), log)
}

#[tokio::test]
async fn titan_embeddings_speak_invoke_model() {
    let (endpoint, log) = start_fake_bedrock().await;
    let sdk = static_config(&endpoint, "us-east-1");
    let titan = TitanEmbedder::new(&sdk, TITAN_V2, 512).expect("titan");
    assert_eq!(titan.dimensions(), 512);
    assert_eq!(titan.model_id(), "amazon.titan-embed-text-v2:0/512");
    let texts = vec!["one piece".to_string(), "return policy".to_string()];
    let v = titan.embed(&texts).await.expect("embeddings");
    assert_eq!(v.len(), 2);
    for e in &v {
        assert_eq!(e.len(), 512);
        assert!((dot(e, e) - 1.0).abs() < 1e-4, "unit length");
    }
    assert!(
        dot(&v[0], &v[1]) < 0.999,
        "different texts, different vectors"
    );
    let seen = log.lock().expect("log").clone();
    assert_eq!(seen.len(), 2, "one InvokeModel per text");
    // The model id is a path segment (":" percent-encoded by the SDK).
    assert_eq!(seen[0].path, "/model/amazon.titan-embed-text-v2%3A0/invoke");
    assert_eq!(
        seen[0].body,
        json!({"inputText": "one piece", "dimensions": 512, "normalize": true})
    );
    assert_eq!(seen[0].headers["content-type"], "application/json");
    let auth = seen[0].headers["authorization"].to_str().expect("auth");
    assert!(auth.contains("/us-east-1/bedrock/aws4_request"), "{auth}");

    assert!(
        TitanEmbedder::new(&sdk, TITAN_V2, 384).is_err(),
        "384 is not a Titan size"
    );
    let err = titan.embed(&[String::new()]).await.expect_err("400");
    assert!(err.to_string().contains("InvokeModel"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minilm_puts_paraphrases_closer_than_unrelated_text() {
    let dir = minilm::default_model_dir()
        .expect("all-MiniLM-L6-v2 installed (scripts/install-test-tools)");
    let m = MiniLmEmbedder(minilm::shared(&dir).expect("model"));
    assert_eq!(m.dimensions(), 384);
    let texts: Vec<String> = [
        "How long does shipping take?",
        "When will my package be delivered?",
        "A scarred mercenary with an enormous sword seeks revenge.",
    ]
    .map(str::to_string)
    .to_vec();
    let v = m.embed(&texts).await.expect("embed");
    assert!((dot(&v[0], &v[0]) - 1.0).abs() < 1e-4);
    let close = dot(&v[0], &v[1]);
    let far = dot(&v[0], &v[2]);
    assert!(
        close > 0.5 && far < 0.2 && close > far + 0.3,
        "close {close} far {far}"
    );
    // Tokenizer: [CLS] … [SEP], lower-cased WordPiece.
    let ids = m.0.tokenize("Hello, world!");
    assert_eq!(ids, vec![101, 7592, 1010, 2088, 999, 102]);
}
