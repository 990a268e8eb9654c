//! What runs against the OpenSearch Serverless double ([`crate::opensearch_double`],
//! which says what it models): `manga-runtime index`'s [`Indexer`] (idempotent runs, a
//! failed batch retried and reported, another model's index refused), the double's own
//! guarantees (SigV4 scope, no custom ids, refresh interval, space scores), and the
//! retrieval contract that the embedded `HybridRetriever` meets too.

use crate::opensearch_double::start;
use crate::support::data;
use manga_runtime::backends::aws::index::{IndexOptions, Indexer, Progress};
use manga_runtime::backends::aws::opensearch::{AossClient, OpenSearchRetriever};
use manga_runtime::backends::aws::static_config;
use manga_runtime::backends::corpus::documents;
use manga_runtime::backends::embed::Embedder;
use manga_runtime::backends::filters::FilterParser;
use manga_runtime::backends::hybrid::EmbeddingCache;
use manga_runtime::backends::minilm::{self, MiniLmEmbedder};
use manga_runtime::backends::Retriever;
use manga_runtime::domain::Corpus;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Default)]
struct Notes(Mutex<Vec<String>>);

impl Progress for Notes {
    fn start(&self, _phase: &str, _total: usize) {}
    fn advance(&self, _n: usize) {}
    fn note(&self, message: &str) {
        self.0.lock().expect("notes").push(message.to_string());
    }
}

fn fast() -> IndexOptions {
    IndexOptions {
        batch: 50,
        attempts: 3,
        backoff: Duration::from_millis(10),
        visible_within: Duration::from_secs(10),
        poll: Duration::from_millis(50),
        cache: minilm::default_model_dir().map(|d| EmbeddingCache {
            dir: d.join("cache"),
        }),
    }
}

fn local_embedder() -> MiniLmEmbedder {
    let dir = minilm::default_model_dir()
        .expect("all-MiniLM-L6-v2 installed (scripts/install-test-tools)");
    MiniLmEmbedder(minilm::shared(&dir).expect("model"))
}

const REFRESH: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_runs_are_idempotent_and_retry_failed_batches() {
    let (endpoint, db) = start(REFRESH).await;
    let sdk = static_config(&endpoint, "us-east-1");
    let client = AossClient::new(&sdk, &endpoint, Duration::from_secs(5)).expect("client");
    let embedder = local_embedder();
    let d = data();
    let docs = documents(&d.catalog, &d.faq);
    let indexer = Indexer {
        client: &client,
        index: "manga-passages",
        embedder: &embedder,
        options: fast(),
    };
    // The first batch fails once: retried, reported, and the run is still complete.
    db.fail_bulks.store(1, Ordering::SeqCst);
    let notes = Notes::default();
    let first = indexer.run(&docs, &notes).await.expect("first run");
    assert!(first.created_index);
    assert_eq!(first.written, docs.len());
    assert_eq!(first.retried_batches, 1, "{first:?}");
    assert!(first.complete(), "{first:?}");
    assert!(notes
        .0
        .lock()
        .expect("notes")
        .iter()
        .any(|n| n.contains("HTTP 503")));

    // Nothing changed: the second run writes and deletes nothing.
    let items_before = db.bulk_items.load(Ordering::SeqCst);
    let second = indexer
        .run(&docs, &Notes::default())
        .await
        .expect("second run");
    assert!(!second.created_index);
    assert_eq!(
        (second.unchanged, second.written, second.deleted),
        (docs.len(), 0, 0),
        "{second:?}"
    );
    assert_eq!(
        db.bulk_items.load(Ordering::SeqCst),
        items_before,
        "no bulk item sent"
    );

    // One passage changed and one removed: exactly those are rewritten and deleted.
    let mut changed = docs.clone();
    changed[0].text.push_str(" Now with a new cover.");
    changed.pop();
    let third = indexer
        .run(&changed, &Notes::default())
        .await
        .expect("third run");
    assert_eq!((third.written, third.deleted), (1, 2), "{third:?}");
    let fourth = indexer
        .run(&changed, &Notes::default())
        .await
        .expect("fourth run");
    assert_eq!((fourth.written, fourth.deleted), (0, 0), "{fourth:?}");

    // A batch that keeps failing is reported: the run is incomplete (exit code 3).
    db.fail_bulks.store(100, Ordering::SeqCst);
    let broken = indexer.run(&docs, &Notes::default()).await.expect("run");
    assert!(!broken.complete() && broken.failed > 0, "{broken:?}");
    db.fail_bulks.store(0, Ordering::SeqCst);

    // An index built with another model is refused, not mixed.
    let other = Indexer {
        client: &client,
        index: "manga-passages",
        embedder: &Titanish,
        options: fast(),
    };
    let err = other
        .run(&docs, &Notes::default())
        .await
        .expect_err("model mismatch");
    assert!(err.to_string().contains("all-MiniLM-L6-v2"), "{err}");
}

/// An embedder that only claims another model (never asked to embed).
#[derive(Debug)]
struct Titanish;

#[async_trait::async_trait]
impl Embedder for Titanish {
    fn model_id(&self) -> String {
        "amazon.titan-embed-text-v2:0/1024".into()
    }
    fn dimensions(&self) -> usize {
        1024
    }
    async fn embed(
        &self,
        texts: &[String],
    ) -> Result<Vec<Vec<f32>>, manga_runtime::backends::BackendError> {
        Ok(texts.iter().map(|_| vec![0.0; 1024]).collect())
    }
}

#[tokio::test]
async fn the_double_refuses_other_signing_scopes_custom_ids_and_refresh() {
    let (endpoint, _db) = start(REFRESH).await;
    let http = reqwest::Client::new();
    let unsigned = http
        .put(format!("{endpoint}/x"))
        .body("{}")
        .send()
        .await
        .expect("send");
    assert_eq!(unsigned.status(), 403);
    let es_scope = http
        .put(format!("{endpoint}/x"))
        .header("authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/es/aws4_request, SignedHeaders=host, Signature=00")
        .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        .body("{}")
        .send()
        .await
        .expect("send");
    assert_eq!(es_scope.status(), 403);

    let sdk = static_config(&endpoint, "us-east-1");
    let client = AossClient::new(&sdk, &endpoint, Duration::from_secs(5)).expect("client");
    let lucene = json!({"mappings": {"properties": {"v": {"type": "knn_vector", "dimension": 2,
        "method": {"name": "hnsw", "engine": "lucene"}}}}});
    let r = client
        .send(
            "PUT",
            "/lucene",
            Some(("application/json", lucene.to_string().into_bytes())),
        )
        .await
        .expect("send");
    assert_eq!(r.status, 400, "{}", r.body);
    let ok = json!({"mappings": {"properties": {"embedding": {"type": "knn_vector", "dimension": 2,
        "method": {"name": "hnsw", "engine": "faiss", "space_type": "innerproduct"}}}}});
    client.json("PUT", "/v", Some(&ok)).await.expect("create");
    let custom_id = "{\"index\":{\"_id\":\"one-piece\"}}\n{\"embedding\":[1,0]}\n";
    let r = client
        .send(
            "POST",
            "/v/_bulk",
            Some(("application/x-ndjson", custom_id.into())),
        )
        .await
        .expect("bulk");
    let v: Value = serde_json::from_str(&r.body).expect("json");
    assert_eq!(v["errors"], true, "custom ids are refused: {v}");
    let r = client
        .send(
            "POST",
            "/v/_bulk?refresh=true",
            Some((
                "application/x-ndjson",
                "{\"index\":{}}\n{\"embedding\":[1,0]}\n".into(),
            )),
        )
        .await
        .expect("bulk");
    assert_eq!(r.status, 400);
    // Writes are searchable only after the refresh interval; scores follow the space.
    let r = client
        .send(
            "POST",
            "/v/_bulk",
            Some((
                "application/x-ndjson",
                "{\"index\":{}}\n{\"embedding\":[0.6,0.8]}\n".into(),
            )),
        )
        .await
        .expect("bulk");
    assert_eq!(r.status, 200);
    let knn = json!({"size": 1, "query": {"knn": {"embedding": {"vector": [1.0, 0.0], "k": 1}}}});
    let now = client
        .json("POST", "/v/_search", Some(&knn))
        .await
        .expect("search");
    assert_eq!(
        now["hits"]["hits"].as_array().map(Vec::len),
        Some(0),
        "not visible before the refresh"
    );
    tokio::time::sleep(REFRESH + Duration::from_millis(50)).await;
    let later = client
        .json("POST", "/v/_search", Some(&knn))
        .await
        .expect("search");
    let score = later["hits"]["hits"][0]["_score"].as_f64().expect("score");
    assert!(
        (score - 1.6).abs() < 1e-9,
        "faiss innerproduct: 1 + 0.6, got {score}"
    );
}

/// The retrieval contract: the same questions, the same guarantees, from every
/// implementation of [`Retriever`].
async fn retrieval_contract(r: &dyn Retriever, name: &str) {
    let parser = FilterParser::new(&data().catalog);
    let q = "recommend a seinen thriller";
    let hits = r
        .retrieve(q, 5, Corpus::Catalog, &parser.parse(q))
        .await
        .expect("retrieve");
    let ids: Vec<&str> = hits.iter().map(|p| p.source_id.as_str()).collect();
    assert!(!ids.is_empty(), "{name}");
    for id in &ids {
        assert!(
            [
                "catalog:monster",
                "catalog:20th-century-boys",
                "catalog:ajin",
                "catalog:erased"
            ]
            .contains(id),
            "{name}: {id} is not a seinen thriller"
        );
    }
    let q = "a mystery manga under $10";
    for p in r
        .retrieve(q, 5, Corpus::Catalog, &parser.parse(q))
        .await
        .expect("retrieve")
    {
        assert!(
            p.text.contains("mystery") && p.text.contains("shonen") || p.text.contains("shojo"),
            "{name}: {}",
            p.text
        );
    }
    let q = "how do I return a volume?";
    let faq = r
        .retrieve(q, 3, Corpus::Faq, &parser.parse(q))
        .await
        .expect("retrieve");
    assert!(
        faq.iter().all(|p| p.source_id.starts_with("faq:")),
        "{name}: {faq:?}"
    );
    assert!(
        faq.iter().any(|p| p.source_id == "faq:returns-how"),
        "{name}: {faq:?}"
    );
    let q = "pirate crew searching for treasure";
    let cat = r
        .retrieve(q, 2, Corpus::Catalog, &parser.parse(q))
        .await
        .expect("retrieve");
    assert_eq!(cat.len(), 2, "{name}: k is respected");
    assert_eq!(cat[0].source_id, "catalog:one-piece", "{name}: {cat:?}");
    let q = "one piece volume 300";
    let none = r
        .retrieve(q, 3, Corpus::Catalog, &parser.parse(q))
        .await
        .expect("retrieve");
    assert!(
        none.iter().all(|p| p.source_id != "catalog:one-piece"),
        "{name}: One Piece has 110 volumes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_retriever_and_opensearch_meet_the_same_contract() {
    let embedded = crate::quality::hybrid().await;
    retrieval_contract(&embedded, "embedded").await;

    let (endpoint, _db) = start(Duration::from_millis(50)).await;
    let sdk = static_config(&endpoint, "us-east-1");
    let client = AossClient::new(&sdk, &endpoint, Duration::from_secs(5)).expect("client");
    let embedder = local_embedder();
    let d = data();
    let docs = documents(&d.catalog, &d.faq);
    Indexer {
        client: &client,
        index: "manga-passages",
        embedder: &embedder,
        options: fast(),
    }
    .run(&docs, &Notes::default())
    .await
    .expect("index");
    let remote = OpenSearchRetriever::new(&sdk, &endpoint, "manga-passages")
        .expect("retriever")
        .with_embedder(Arc::new(embedder));
    retrieval_contract(&remote, "opensearch").await;
}

/// `manga-runtime index` as an operator (or the one-off ECS task) runs it: the binary,
/// configured by environment, against the double; exit 0 and a summary line, and a
/// second run that changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_subcommand_fills_the_index_once() {
    let (endpoint, db) = start(REFRESH).await;
    let model = minilm::default_model_dir().expect("all-MiniLM-L6-v2 installed");
    let run = || {
        let endpoint = endpoint.clone();
        let model = model.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_manga-runtime"))
                .arg("index")
                .env_clear()
                .env("MANGA_OPENSEARCH_ENDPOINT", &endpoint)
                .env("MANGA_OPENSEARCH_INDEX", "cli-index")
                .env("MANGA_EMBEDDER", "local")
                .env("MANGA_EMBED_MODEL_DIR", &model)
                .env("AWS_REGION", "us-east-1")
                .env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing")
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .output()
                .expect("run manga-runtime index")
        })
    };
    let docs = documents(&data().catalog, &data().faq).len();
    let first = run().await.expect("join");
    let out = String::from_utf8_lossy(&first.stdout);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{out}\n{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        out.contains(&format!(
            "index cli-index: 0 unchanged, {docs} written, 0 deleted"
        )),
        "{out}"
    );
    let items = db.bulk_items.load(Ordering::SeqCst);
    let second = run().await.expect("join");
    let out = String::from_utf8_lossy(&second.stdout);
    assert_eq!(second.status.code(), Some(0), "{out}");
    assert!(
        out.contains(&format!("{docs} unchanged, 0 written, 0 deleted")),
        "{out}"
    );
    assert_eq!(
        db.bulk_items.load(Ordering::SeqCst),
        items,
        "the second run sent nothing"
    );
}
