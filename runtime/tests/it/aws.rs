//! The AWS backends through the real AWS SDK for Rust (and `redis`, `reqwest`+SigV4),
//! each against what exists to stand in for the service on 127.0.0.1:
//! - `DynamoSessionStore` and `SageMakerIntentModel` against moto_server;
//! - `RedisCache` against a real redis-server;
//! - `OpenSearchRetriever` against a fake `_search` endpoint (moto has no OpenSearch
//!   Serverless data plane) that checks the SigV4 headers and answers documents shaped
//!   like OpenSearch's search response;
//! - `BedrockLlm` against a fake ConverseStream endpoint (moto's Bedrock runtime has no
//!   streaming) that answers real AWS event-stream frames, so the SDK's own decoder and
//!   error handling run;
//! - `MANGA_BACKEND=aws` wired end to end over a WebSocket, with EMF lines captured.

use crate::emulators::{self, REGION};
use crate::support::{config, TestServer};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use futures_util::StreamExt;
use manga_runtime::app::AppBuilder;
use manga_runtime::backends::aws::bedrock::BedrockLlm;
use manga_runtime::backends::aws::dynamodb::DynamoSessionStore;
use manga_runtime::backends::aws::opensearch::OpenSearchRetriever;
use manga_runtime::backends::aws::redis_cache::RedisCache;
use manga_runtime::backends::aws::sagemaker::SageMakerIntentModel;
use manga_runtime::backends::aws::static_config;
use manga_runtime::backends::aws::titan::{TitanEmbedder, TITAN_V2};
use manga_runtime::backends::filters::Filters;
use manga_runtime::backends::{
    BackendError, CachedAnswer, IntentModel, Llm, ResponseCache, Retriever, SessionStore,
};
use manga_runtime::domain::{Corpus, Intent, Prompt, SourceRef, Tier, Turn};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(crate) const TABLE: &str = "mangaassist-test-conversations";

pub(crate) fn turn(n: usize) -> Turn {
    Turn {
        id: format!("t{n}"),
        // Received at distinct, increasing times (the store's sort key).
        at_us: 1_764_590_000_000_000 + 1_000 * n as u64,
        user: format!("question {n}"),
        assistant: format!("answer {n}"),
        intent: Intent::ProductSearch,
        title_ids: vec![format!("title-{n}")],
    }
}

/// The table as the `memory` stack defines it: `session_id` S hash, `turn` N range.
pub(crate) async fn create_table(sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let attr = |name: &str, t: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(t)
            .build()
            .expect("attribute")
    };
    let key = |name: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(t)
            .build()
            .expect("key")
    };
    client
        .create_table()
        .table_name(TABLE)
        .attribute_definitions(attr("session_id", ScalarAttributeType::S))
        .attribute_definitions(attr("turn", ScalarAttributeType::N))
        .key_schema(key("session_id", KeyType::Hash))
        .key_schema(key("turn", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create table in moto");
    client
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[tokio::test]
async fn dynamodb_session_store_against_moto() {
    let moto = emulators::moto();
    let sdk = moto.sdk_config();
    let ddb = create_table(&sdk).await;
    let store = DynamoSessionStore::new(&sdk, TABLE, Duration::from_secs(1800));
    store
        .ready()
        .await
        .expect("ready: the table answers a Query");
    assert!(store.load("u/s1", 6).await.expect("load").is_empty());

    for n in 0..5 {
        store.append("u/s1", turn(n)).await.expect("append");
    }
    store.append("u/s2", turn(99)).await.expect("other session");
    let got = store.load("u/s1", 3).await.expect("load");
    assert_eq!(got, vec![turn(2), turn(3), turn(4)], "last 3, oldest first");
    assert_eq!(store.load("u/s2", 6).await.expect("load"), vec![turn(99)]);

    // What was written: key schema, TTL attribute a session TTL from now.
    let items = ddb
        .query()
        .table_name(TABLE)
        .key_condition_expression("session_id = :s")
        .expression_attribute_values(":s", AttributeValue::S("u/s1".into()))
        .send()
        .await
        .expect("query");
    assert_eq!(items.items().len(), 5);
    let now = now_secs();
    for item in items.items() {
        let expires: u64 = item["expires_at"].as_n().expect("N").parse().expect("int");
        assert!(
            (now + 1790..=now + 1810).contains(&expires),
            "expires_at {expires}"
        );
        assert!(item["turn"].as_n().is_ok());
    }

    // An expired item DynamoDB has not deleted yet is not context.
    ddb.put_item()
        .table_name(TABLE)
        .item("session_id", AttributeValue::S("u/s1".into()))
        .item("turn", AttributeValue::N("99999999999999999".into()))
        .item("expires_at", AttributeValue::N((now - 10).to_string()))
        .item("user", AttributeValue::S("stale".into()))
        .item("assistant", AttributeValue::S("stale".into()))
        .item("intent", AttributeValue::S("greeting".into()))
        .send()
        .await
        .expect("put expired item");
    let got = store.load("u/s1", 2).await.expect("load");
    assert!(got.iter().all(|t| t.user != "stale"), "{got:?}");

    // A retried save (same message, same receipt time) keeps one turn; another
    // message received in the same microsecond takes the next number.
    store.append("u/s3", turn(7)).await.expect("save");
    store.append("u/s3", turn(7)).await.expect("retried save");
    let mut other = turn(8);
    other.at_us = turn(7).at_us;
    store
        .append("u/s3", other.clone())
        .await
        .expect("colliding save");
    let got = store.load("u/s3", 10).await.expect("load");
    let mut bumped = other;
    bumped.at_us += 1;
    assert_eq!(got, vec![turn(7), bumped], "one copy of the retried turn");

    let missing = DynamoSessionStore::new(&sdk, "no-such-table", Duration::from_secs(60));
    let err = missing.ready().await.expect_err("missing table");
    assert!(
        matches!(err, BackendError::Unavailable(ref m) if m.contains("ResourceNotFound")),
        "{err}"
    );
}

/// A client that leaves right after sending: the turn is written to DynamoDB before
/// the server releases the connection, keyed by the message id.
#[tokio::test]
async fn a_turn_reaches_dynamodb_after_the_client_left() {
    let moto = emulators::moto();
    let sdk = moto.sdk_config();
    let ddb = create_table(&sdk).await;
    let store = Arc::new(DynamoSessionStore::new(
        &sdk,
        TABLE,
        Duration::from_secs(1800),
    ));
    let server =
        TestServer::start(crate::support::builder(&["--word-delay-ms", "5"]).sessions(store)).await;
    let mut client = server.connect().await;
    client.send("s9", "recommend a seinen thriller").await;
    client.ws.close(None).await.expect("close");
    drop(client);
    crate::turns::released(&server).await;
    let items = ddb
        .query()
        .table_name(TABLE)
        .key_condition_expression("session_id = :s")
        .expression_attribute_values(":s", AttributeValue::S("anon:127.0.0.1/s9".into()))
        .send()
        .await
        .expect("query");
    assert_eq!(items.items().len(), 1, "{:?}", items.items());
    let item = &items.items()[0];
    assert_eq!(
        item["user"].as_s().expect("S"),
        "recommend a seinen thriller"
    );
    assert!(!item["assistant"].as_s().expect("S").is_empty());
    assert!(item["turn_id"].as_s().expect("S").starts_with('m'));
}

/// moto answers InvokeEndpoint from a queue of bodies configured through its own API
/// (one per distinct request; then a static non-JSON "body").
async fn queue_sagemaker_results(moto: &emulators::Emulator, bodies: &[&str]) {
    let results: Vec<Value> = bodies
        .iter()
        .map(|b| {
            json!({"Body": b, "ContentType": "application/json",
                        "InvokedProductionVariant": "AllTraffic", "CustomAttributes": ""})
        })
        .collect();
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/moto-api/static/sagemaker/endpoint-results",
            moto.endpoint()
        ))
        .header("content-type", "application/json")
        .body(json!({"region": REGION, "results": results}).to_string())
        .send()
        .await
        .expect("configure moto");
    assert!(resp.status().is_success());
}

#[tokio::test]
async fn sagemaker_intent_model_against_moto() {
    let moto = emulators::moto();
    queue_sagemaker_results(
        &moto,
        &[
            r#"[{"label":"order_status","score":0.91},{"label":"greeting","score":0.09}]"#,
            "not a prediction",
        ],
    )
    .await;

    let model = SageMakerIntentModel::new(&moto.sdk_config(), "mangaassist-intent");
    let p = model
        .classify("where is my parcel")
        .await
        .expect("prediction");
    assert_eq!(p.intent, Intent::OrderStatus);
    assert!((p.confidence - 0.91).abs() < 1e-6);
    let err = model
        .classify("something else")
        .await
        .expect_err("bad body");
    assert!(matches!(err, BackendError::Invalid(_)), "{err}");
}

#[tokio::test]
async fn redis_cache_against_redis_server() {
    let server = emulators::redis();
    let url = format!("redis://127.0.0.1:{}", server.port);
    let cache = RedisCache::new(&url, "test:answer:", Duration::from_secs(600)).expect("client");
    cache.ready().await.expect("PING");
    assert_eq!(cache.get("greeting|hello").await.expect("get"), None);
    let answer = CachedAnswer {
        text: "Hello! Ask me about manga.".into(),
        sources: vec![SourceRef {
            id: "faq:hours".into(),
            title: "Hours".into(),
        }],
    };
    cache
        .put("greeting|hello", answer.clone())
        .await
        .expect("put");
    assert_eq!(
        cache.get("greeting|hello").await.expect("get"),
        Some(answer)
    );

    // Stored under the prefix, with the TTL.
    let mut raw = redis::Client::open(url.as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let ttl: i64 = redis::cmd("TTL")
        .arg("test:answer:greeting|hello")
        .query_async(&mut raw)
        .await
        .expect("TTL");
    assert!((590..=600).contains(&ttl), "ttl {ttl}");
    let () = redis::cmd("SET")
        .arg("test:answer:bad")
        .arg("not json")
        .query_async(&mut raw)
        .await
        .expect("SET");
    assert!(matches!(
        cache.get("bad").await,
        Err(BackendError::Invalid(_))
    ));

    drop(server); // Redis gone: calls fail (the pipeline then skips the cache)
    let r = tokio::time::timeout(Duration::from_secs(10), cache.get("greeting|hello")).await;
    assert!(matches!(r, Ok(Err(BackendError::Unavailable(_)))), "{r:?}");
}

/// What a fake server saw: method, path, headers, body.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: HeaderMap,
    body: String,
}

type Log = Arc<Mutex<Vec<Seen>>>;

async fn serve_fake(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// `POST /{index}/_search`: answers like OpenSearch, or 403 for index `forbidden`.
async fn fake_search(
    State(log): State<Log>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    log.lock().expect("log").push(Seen {
        path: uri.path().to_string(),
        headers,
        body,
    });
    if uri.path().starts_with("/forbidden/") {
        return Response::builder()
            .status(StatusCode::FORBIDDEN)
            .body(Body::from(r#"{"status":403,"message":"Forbidden"}"#))
            .expect("response");
    }
    let doc = json!({
        "took": 3, "timed_out": false,
        "_shards": {"total": 0, "successful": 0, "skipped": 0, "failed": 0},
        "hits": {
            "total": {"value": 2, "relation": "eq"},
            "max_score": 7.1,
            "hits": [
                {"_index": "manga-passages", "_id": "1", "_score": 7.1,
                 "_source": {"source_id": "catalog:one-piece", "title": "One Piece",
                             "text": "One Piece by Eiichiro Oda: pirates in search of a treasure."}},
                {"_index": "manga-passages", "_id": "2", "_score": 2.5,
                 "_source": {"source_id": "faq:shipping", "title": "Shipping",
                             "text": "Orders ship within 2 business days."}}
            ]
        }
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(doc.to_string()))
        .expect("response")
}

async fn start_fake_opensearch() -> (String, Log) {
    let log: Log = Arc::default();
    let app = axum::Router::new()
        .route("/{index}/_search", axum::routing::post(fake_search))
        .with_state(log.clone());
    (format!("http://{}", serve_fake(app).await), log)
}

/// Credentials that say how often they were asked for, expiring `valid_for` after
/// each resolution.
#[derive(Debug)]
struct CountingCredentials {
    calls: Arc<std::sync::atomic::AtomicUsize>,
    valid_for: Duration,
}

impl aws_credential_types::provider::ProvideCredentials for CountingCredentials {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        aws_credential_types::provider::future::ProvideCredentials::ready(Ok(
            aws_credential_types::Credentials::new(
                "counted",
                "secret",
                Some("session".into()),
                Some(SystemTime::now() + self.valid_for),
                "counting",
            ),
        ))
    }
}

#[tokio::test]
async fn opensearch_credentials_are_resolved_once_until_near_expiry() {
    let (endpoint, log) = start_fake_opensearch().await;
    let retriever_with = |valid_for: Duration, calls: Arc<std::sync::atomic::AtomicUsize>| {
        let sdk = static_config("http://127.0.0.1:9", REGION)
            .into_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    CountingCredentials { calls, valid_for },
                ),
            )
            .build();
        OpenSearchRetriever::new(&sdk, &endpoint, "manga-passages").expect("retriever")
    };
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hour = retriever_with(Duration::from_secs(3600), calls.clone());
    for _ in 0..5 {
        hour.retrieve("one piece", 2, Corpus::Catalog, &Filters::default())
            .await
            .expect("passages");
    }
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one resolution for five searches"
    );
    // Credentials within the refresh window of their expiry are replaced.
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let short = retriever_with(Duration::from_secs(60), calls.clone());
    for _ in 0..3 {
        short
            .retrieve("one piece", 2, Corpus::Catalog, &Filters::default())
            .await
            .expect("passages");
    }
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
    let auth = log.lock().expect("log")[0].headers["authorization"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        auth.contains("Credential=counted/"),
        "signed with the cached credentials: {auth}"
    );
}

#[tokio::test]
async fn opensearch_retriever_signs_and_parses_against_a_fake_collection() {
    let (endpoint, log) = start_fake_opensearch().await;
    let sdk = static_config("http://127.0.0.1:9", REGION);
    let retriever = OpenSearchRetriever::new(&sdk, &endpoint, "manga-passages").expect("retriever");
    let passages = retriever
        .retrieve("one piece", 4, Corpus::Catalog, &Filters::default())
        .await
        .expect("passages");
    assert_eq!(passages.len(), 2);
    assert_eq!(passages[0].source_id, "catalog:one-piece");
    assert_eq!(passages[0].title, "One Piece");

    let seen = log.lock().expect("log")[0].clone();
    assert_eq!(seen.path, "/manga-passages/_search");
    let auth = seen.headers["authorization"].to_str().expect("ascii");
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=testing/"),
        "{auth}"
    );
    assert!(
        auth.contains(&format!("/{REGION}/aoss/aws4_request")),
        "{auth}"
    );
    assert!(
        auth.contains("SignedHeaders=") && auth.contains("x-amz-content-sha256"),
        "{auth}"
    );
    let sha = seen.headers["x-amz-content-sha256"]
        .to_str()
        .expect("ascii");
    assert!(
        sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit()),
        "{sha}"
    );
    assert!(seen.headers.contains_key("x-amz-date"));
    let body: Value = serde_json::from_str(&seen.body).expect("JSON body");
    assert_eq!(body["size"], 4);
    assert_eq!(
        body["query"]["bool"]["filter"][0]["term"]["corpus"],
        "catalog"
    );

    let denied = OpenSearchRetriever::new(&sdk, &endpoint, "forbidden").expect("retriever");
    let err = denied
        .retrieve("x", 1, Corpus::All, &Filters::default())
        .await
        .expect_err("403");
    assert!(
        matches!(err, BackendError::Unavailable(ref m) if m.contains("403")),
        "{err}"
    );
}

/// One AWS event-stream frame, as Bedrock sends them.
fn frame(headers: &[(&'static str, &'static str)], payload: Value) -> Vec<u8> {
    let mut msg = Message::new(payload.to_string().into_bytes());
    for (k, v) in headers {
        msg = msg.add_header(Header::new(*k, HeaderValue::String((*v).into())));
    }
    let mut out = Vec::new();
    aws_smithy_eventstream::frame::write_message_to(&msg, &mut out).expect("encode frame");
    out
}

fn event(kind: &'static str, payload: Value) -> Vec<u8> {
    frame(
        &[
            (":message-type", "event"),
            (":event-type", kind),
            (":content-type", "application/json"),
        ],
        payload,
    )
}

/// ConverseStream as the Bedrock runtime API reference shapes it. Model `broken` ends
/// with a throttling exception after one token; model `invalid` is refused with 400.
async fn fake_converse_stream(
    State(log): State<Log>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    log.lock().expect("log").push(Seen {
        path: uri.path().to_string(),
        headers,
        body,
    });
    if uri.path().contains("invalid") {
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .header(
                "x-amzn-errortype",
                "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/",
            )
            .header("content-type", "application/json")
            .body(Body::from(
                r#"{"message":"The provided model identifier is invalid."}"#,
            ))
            .expect("response");
    }
    let mut frames = vec![
        event("messageStart", json!({"role": "assistant"})),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "One Piece "}}),
        ),
    ];
    if uri.path().contains("broken") {
        frames.push(frame(
            &[
                (":message-type", "exception"),
                (":exception-type", "throttlingException"),
                (":content-type", "application/json"),
            ],
            json!({"message": "Too many requests, please wait before trying again."}),
        ));
    } else {
        frames.extend([
            event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "is in stock [1]."}})),
            event("contentBlockStop", json!({"contentBlockIndex": 0})),
            event("messageStop", json!({"stopReason": "end_turn"})),
            event("metadata", json!({"usage": {"inputTokens": 120, "outputTokens": 9, "totalTokens": 129}, "metrics": {"latencyMs": 210}})),
        ]);
    }
    // One chunk per frame, as a streaming server sends them.
    let chunks = futures_util::stream::iter(
        frames
            .into_iter()
            .map(|f| Ok::<_, std::io::Error>(axum::body::Bytes::from(f))),
    );
    Response::builder()
        .header("content-type", "application/vnd.amazon.eventstream")
        .header("x-amzn-requestid", "fake-request-1")
        .body(Body::from_stream(chunks))
        .expect("response")
}

/// `POST /model/{model}/invoke`: a Titan Text Embeddings V2 answer (the full double is
/// in `embeddings.rs`; here only the wiring matters).
async fn fake_titan_invoke(
    State(log): State<Log>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    log.lock().expect("log").push(Seen {
        path: uri.path().to_string(),
        headers,
        body: body.clone(),
    });
    let dims = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["dimensions"].as_u64())
        .unwrap_or(1024) as usize;
    let mut v = vec![0.0; dims];
    v[0] = 1.0;
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"embedding": v, "inputTextTokenCount": 3}).to_string(),
        ))
        .expect("response")
}

async fn start_fake_bedrock() -> (String, Log) {
    let log: Log = Arc::default();
    let app = axum::Router::new()
        .route(
            "/model/{model}/converse-stream",
            axum::routing::post(fake_converse_stream),
        )
        .route(
            "/model/{model}/invoke",
            axum::routing::post(fake_titan_invoke),
        )
        .with_state(log.clone());
    (format!("http://{}", serve_fake(app).await), log)
}

fn prompt(text: &str) -> Prompt {
    Prompt {
        intent: Intent::ProductSearch,
        tier: Tier::StandardLlm,
        user_text: text.into(),
        history: vec![turn(1)],
        tools: vec![],
        passages: vec![],
        sources: vec![SourceRef {
            id: "catalog:one-piece".into(),
            title: "One Piece".into(),
        }],
    }
}

#[tokio::test]
async fn bedrock_converse_stream_against_a_fake_event_stream() {
    let (endpoint, log) = start_fake_bedrock().await;
    let sdk = static_config(&endpoint, REGION);

    let llm = BedrockLlm::new(&sdk, "anthropic.claude-test", 300);
    let tokens: Vec<Result<String, BackendError>> = llm
        .stream(&prompt("do you have one piece?"))
        .await
        .expect("stream")
        .collect()
        .await;
    let tokens: Vec<String> = tokens.into_iter().map(|t| t.expect("token")).collect();
    assert_eq!(tokens, ["One Piece ", "is in stock [1]."]);

    let seen = log.lock().expect("log")[0].clone();
    assert_eq!(seen.path, "/model/anthropic.claude-test/converse-stream");
    let auth = seen.headers["authorization"].to_str().expect("ascii");
    assert!(
        auth.contains(&format!("/{REGION}/bedrock/aws4_request")),
        "{auth}"
    );
    let body: Value = serde_json::from_str(&seen.body).expect("request JSON");
    assert_eq!(body["inferenceConfig"]["maxTokens"], 300);
    assert!(body["system"][0]["text"]
        .as_str()
        .is_some_and(|s| s.contains("[1] One Piece")));
    let roles: Vec<&str> = body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["role"].as_str())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
    assert_eq!(
        body["messages"][2]["content"][0]["text"],
        "do you have one piece?"
    );

    // An exception event mid-stream: the token before it stands, then an error.
    let broken = BedrockLlm::new(&sdk, "broken", 300);
    let items: Vec<Result<String, BackendError>> = broken
        .stream(&prompt("hi"))
        .await
        .expect("stream opens")
        .collect()
        .await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[0].as_ref().expect("first token"), "One Piece ");
    let err = items[1].as_ref().expect_err("throttled");
    assert!(err.to_string().contains("Too many requests"), "{err}");

    // Refused before streaming: the pipeline answers with its fallback.
    let invalid = BedrockLlm::new(&sdk, "invalid", 300);
    let err = invalid.stream(&prompt("hi")).await.err().expect("refused");
    assert!(
        err.to_string().contains("model identifier is invalid"),
        "{err}"
    );
}

#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::ErrorKind::Other)?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuf {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

/// `MANGA_BACKEND=aws` as the task definition configures it: sessions in DynamoDB
/// (moto), cache in Redis, retrieval from the fake collection, the LLM from the fake
/// Bedrock, and EMF lines for every message.
#[tokio::test]
async fn aws_family_answers_over_websocket_with_emf_lines() {
    let moto = emulators::moto();
    let redis = emulators::redis();
    let (search, search_log) = start_fake_opensearch().await;
    let (bedrock, bedrock_log) = start_fake_bedrock().await;
    let sdk = moto.sdk_config();
    let ddb = create_table(&sdk).await;
    // Two results: one for the message, one for the readiness probe the
    // server runs at start (whichever asks first).
    queue_sagemaker_results(
        &moto,
        &[
            r#"[{"label":"product_search","score":0.88}]"#,
            r#"[{"label":"product_search","score":0.88}]"#,
        ],
    )
    .await;
    let redis_url = format!("redis://127.0.0.1:{}", redis.port);
    let emf = SharedBuf::default();
    let cfg = config(&[
        "--environment",
        "staging",
        "--backend",
        "aws",
        "--dynamodb-table",
        TABLE,
        "--redis-url",
        &redis_url,
        "--opensearch-endpoint",
        &search,
        "--sagemaker-endpoint",
        "mangaassist-intent",
        "--bedrock-model-id",
        "anthropic.claude-test",
        "--emf",
        "true",
    ]);
    // Generous budgets: this test is about wiring, not about the emulators' latency.
    let budgets: sizing::LatencyBudgets = serde_json::from_value(json!({
        "margin": 200, "edge": 30, "auth": 1000, "memory_read": 5000, "intent_rules": 1000, "intent_ml": 5000,
        "cache_hit": 5000, "service_calls": 5000, "retrieval": 5000, "first_token": 5000,
        "streaming": 10000, "guardrails": 1000, "delivery": 1000, "stream_jitter": 5000,
        "end_to_end_p95": 20000
    }))
    .expect("budgets");
    let builder = AppBuilder::new(cfg)
        .budgets(budgets)
        .aws_config(sdk.clone())
        // Bedrock has its own endpoint here (moto cannot stream).
        .llm(Arc::new(BedrockLlm::new(
            &static_config(&bedrock, REGION),
            "anthropic.claude-test",
            300,
        )))
        // Titan embeddings from the same fake Bedrock (moto has no InvokeModel).
        .embedder(Arc::new(
            TitanEmbedder::new(&static_config(&bedrock, REGION), TITAN_V2, 1024).expect("titan"),
        ))
        .emf_writer(Box::new(emf.clone()));
    let server = TestServer::start(builder).await;
    let mut client = server.connect().await;

    let a = client.ask("demo", "do you have one piece?").await;
    assert_eq!(a.last()["type"], "done", "{:?}", a.frames);
    assert_eq!(a.text(), "One Piece is in stock [1].");
    assert!(
        a.last()["degraded"].as_array().is_some_and(Vec::is_empty),
        "{:?}",
        a.last()
    );

    // Hybrid retrieval: the question embedded by Titan, then a BM25 and a k-NN search.
    assert!(bedrock_log
        .lock()
        .expect("log")
        .iter()
        .any(|s| s.path.ends_with("/invoke") && s.body.contains("do you have one piece")));
    assert!(search_log
        .lock()
        .expect("log")
        .iter()
        .any(|s| s.body.contains("\"knn\"")));

    // The turn went to DynamoDB (saved before `done`).
    assert_eq!(a.start()["intent"], "product_search");
    let b = client.ask("demo", "hello").await;
    assert_eq!(b.start()["intent"], "greeting");
    assert_eq!(b.last()["cache_hit"], false);
    let scan = ddb.scan().table_name(TABLE).send().await.expect("scan");
    assert!(scan.items().iter().any(|i| i["user"]
        .as_s()
        .is_ok_and(|u| u == "do you have one piece?")));
    // The greeting was cached in Redis: asked again, it is a hit.
    let c = client.ask("demo", "hello").await;
    assert_eq!(c.last()["cache_hit"], true, "{:?}", c.last());

    // EMF: one line per stage per message, for the alarms' dimensions.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let lines: Vec<Value> = loop {
        let text = emf.text();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("EMF JSON"))
            .collect();
        if lines.iter().filter(|l| l["Stage"] == "end_to_end").count() == 3 {
            break lines;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "EMF lines missing: {text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let first_token: Vec<&Value> = lines
        .iter()
        .filter(|l| l["Stage"] == "first_token")
        .collect();
    assert_eq!(
        first_token.len(),
        3,
        "every answer has a first token as the customer sees it (template ones too)"
    );
    assert_eq!(first_token[0]["Environment"], "staging");
    assert_eq!(
        first_token[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "MangaAssist"
    );
    assert_eq!(first_token[0]["BudgetMiss"], 0);
    let (stages, gauges): (Vec<&Value>, Vec<&Value>) =
        lines.iter().partition(|l| l.get("Stage").is_some());
    assert!(stages.iter().all(|l| l["StageLatency"].is_number()));
    // The per-task gauges the service scales on (the first at start).
    assert!(!gauges.is_empty(), "no gauge line: {lines:?}");
    for g in gauges {
        assert_eq!(
            g["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Environment"]])
        );
        assert_eq!(g["Environment"], "staging");
        assert!(
            g["ActiveSessions"].is_i64() && g["LlmStreamsInFlight"].is_i64(),
            "{g}"
        );
    }
}

#[tokio::test]
async fn aws_family_names_every_missing_setting() {
    let cfg = config(&["--backend", "aws", "--dynamodb-table", "t"]);
    let err = AppBuilder::new(cfg).build().await.expect_err("refused");
    let msg = err.to_string();
    for name in [
        "MANGA_REDIS_URL",
        "MANGA_OPENSEARCH_ENDPOINT",
        "MANGA_SAGEMAKER_ENDPOINT",
        "MANGA_BEDROCK_MODEL_ID",
    ] {
        assert!(msg.contains(name), "{msg}");
    }
    assert!(!msg.contains("MANGA_DYNAMODB_TABLE"), "{msg}");
}
