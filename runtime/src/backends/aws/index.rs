//! `manga-runtime index`: creates the retrieval index on the `search` stack's
//! OpenSearch Serverless VECTORSEARCH collection and fills it with the catalog and FAQ
//! passages ([`crate::backends::corpus`]) and their embeddings, idempotently.
//!
//! What the collection type imposes (Amazon OpenSearch Service developer guide):
//! - vector search collections do not support the Lucene engine nor faiss IVF/IVFPQ, and
//!   their refresh interval is 60 s
//!   (<https://docs.aws.amazon.com/opensearch-service/latest/developerguide/serverless-vector-search.html#serverless-vector-limitations>):
//!   the vector field is faiss HNSW, and a write is searchable only up to a minute later;
//! - documents cannot be written with a custom `_id` on vector search collections (the
//!   `aoss:WriteDocument` row of
//!   <https://docs.aws.amazon.com/opensearch-service/latest/developerguide/serverless-genref.html>
//!   says some write operations are for `SEARCH` collections only), so ids are generated
//!   by the service and a document's identity is its `source_id` field.
//!
//! So idempotency rests on what the index itself says, not on ids or refresh: each
//! document carries `content_hash` (of its fields, its text and the embedding model);
//! a run reads every visible document's `source_id` and hash, writes only the missing or
//! changed ones, deletes (by their generated `_id`) the stale, changed and duplicate
//! ones, and then waits until what it wrote is visible, so the next run sees it. A second
//! run over the same data writes nothing. Batches that fail (HTTP error, or `errors` in
//! the `_bulk` answer) are retried with backoff and reported; a run that could not write
//! everything says so (exit code 3, incomplete).
//!
//! The mapping's `_meta` records the embedding model and dimensions: an index built with
//! another model is refused rather than mixed (Titan V2 1024/512/256 and MiniLM 384).

use super::opensearch::{AossClient, OpenSearchError, VECTOR_FIELD};
use crate::backends::corpus::IndexDoc;
use crate::backends::embed::Embedder;
use crate::backends::hybrid::{embed_cached, EmbeddingCache};
use crate::backends::BackendError;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    OpenSearch(#[from] OpenSearchError),
    #[error("embeddings: {0}")]
    Embed(#[from] BackendError),
    #[error(
        "index {index} was built for {found}, not {want}: delete it (DELETE /{index}) to \
         rebuild it with this model"
    )]
    ModelMismatch {
        index: String,
        found: String,
        want: String,
    },
    #[error("unexpected answer from {what}: {message}")]
    Protocol { what: String, message: String },
}

/// The index mapping: BM25 text fields, keyword/number fields for the filters, and the
/// vector field (faiss HNSW, inner product: vectors are unit length, so the inner
/// product is the cosine similarity).
pub fn mapping(dimensions: usize, model: &str) -> Value {
    json!({
        "settings": { "index": { "knn": true } },
        "mappings": {
            "_meta": { "embedding_model": model, "dimensions": dimensions },
            "properties": {
                "source_id": { "type": "keyword" },
                "corpus": { "type": "keyword" },
                "title": { "type": "text" },
                "text": { "type": "text" },
                "demographic": { "type": "keyword" },
                "genres": { "type": "keyword" },
                "volumes": { "type": "integer" },
                "price_cents": { "type": "integer" },
                "content_hash": { "type": "keyword" },
                VECTOR_FIELD: {
                    "type": "knn_vector",
                    "dimension": dimensions,
                    "method": {
                        "name": "hnsw",
                        "engine": "faiss",
                        "space_type": "innerproduct",
                        "parameters": { "m": 16, "ef_construction": 128 }
                    }
                }
            }
        }
    })
}

/// A stable digest of what a document is (FNV-1a, hex): a changed text or model changes it.
pub fn content_hash(doc: &IndexDoc, model: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let fields = serde_json::to_string(doc).unwrap_or_default();
    for b in model.bytes().chain([0]).chain(fields.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexReport {
    pub created_index: bool,
    pub unchanged: usize,
    pub written: usize,
    pub deleted: usize,
    /// Batches that failed at least once and were sent again.
    pub retried_batches: usize,
    /// Documents not written or deleted after every retry.
    pub failed: usize,
}

impl IndexReport {
    pub fn complete(&self) -> bool {
        self.failed == 0
    }
}

/// Knobs of a run (the defaults suit the service; tests shorten the waits).
#[derive(Debug, Clone)]
pub struct IndexOptions {
    pub batch: usize,
    pub attempts: u32,
    pub backoff: Duration,
    /// How long to wait for written documents to become searchable (the collection
    /// refreshes every 60 s).
    pub visible_within: Duration,
    pub poll: Duration,
    /// Where document embeddings are cached (the local model's cache directory; Titan
    /// runs leave it `None`).
    pub cache: Option<EmbeddingCache>,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            batch: 50,
            attempts: 4,
            backoff: Duration::from_millis(500),
            visible_within: Duration::from_secs(150),
            poll: Duration::from_secs(5),
            cache: None,
        }
    }
}

/// Progress callbacks (the binary draws an indicatif bar; tests count).
pub trait Progress: Send + Sync {
    fn start(&self, phase: &str, total: usize);
    fn advance(&self, n: usize);
    fn note(&self, message: &str);
}

#[derive(Debug)]
pub struct Indexer<'a> {
    pub client: &'a AossClient,
    pub index: &'a str,
    pub embedder: &'a dyn Embedder,
    pub options: IndexOptions,
}

/// A visible document: its generated `_id`, `source_id` and `content_hash`.
#[derive(Debug, Clone)]
struct Existing {
    id: String,
    source_id: String,
    hash: String,
}

impl Indexer<'_> {
    /// Creates the index if it is missing; refuses one built for another model.
    async fn ensure_index(&self) -> Result<bool, IndexError> {
        let model = self.embedder.model_id();
        let r = self
            .client
            .send("GET", &format!("/{}/_mapping", self.index), None)
            .await?;
        if r.status == 404 {
            self.client
                .json(
                    "PUT",
                    &format!("/{}", self.index),
                    Some(&mapping(self.embedder.dimensions(), &model)),
                )
                .await?;
            return Ok(true);
        }
        if !(200..300).contains(&r.status) {
            return Err(IndexError::Protocol {
                what: format!("GET /{}/_mapping", self.index),
                message: format!(
                    "HTTP {}: {}",
                    r.status,
                    r.body.chars().take(200).collect::<String>()
                ),
            });
        }
        let v: Value = serde_json::from_str(&r.body).map_err(|e| IndexError::Protocol {
            what: "mapping".into(),
            message: e.to_string(),
        })?;
        let found = v
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(|m| m["mappings"]["_meta"]["embedding_model"].as_str())
            .unwrap_or("an unknown model")
            .to_string();
        if found != model {
            return Err(IndexError::ModelMismatch {
                index: self.index.to_string(),
                found,
                want: model,
            });
        }
        Ok(false)
    }

    async fn existing(&self) -> Result<Vec<Existing>, IndexError> {
        // The corpus is a few hundred documents: one page holds them all.
        let body = json!({
            "size": 10_000,
            "_source": ["source_id", "content_hash"],
            "query": { "match_all": {} }
        });
        let v = self
            .client
            .json("POST", &format!("/{}/_search", self.index), Some(&body))
            .await?;
        let hits = v["hits"]["hits"]
            .as_array()
            .ok_or_else(|| IndexError::Protocol {
                what: "_search".into(),
                message: "no hits.hits".into(),
            })?;
        Ok(hits
            .iter()
            .filter_map(|h| {
                Some(Existing {
                    id: h["_id"].as_str()?.to_string(),
                    source_id: h["_source"]["source_id"].as_str()?.to_string(),
                    hash: h["_source"]["content_hash"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                })
            })
            .collect())
    }

    /// Sends `_bulk` batches, retrying the failed items of each; returns (done, retried
    /// batches, failed items).
    async fn bulk(
        &self,
        lines: Vec<(String, Option<String>)>,
        progress: &dyn Progress,
    ) -> (usize, usize, usize) {
        let (mut done, mut retried, mut failed) = (0, 0, 0);
        for chunk in lines.chunks(self.options.batch.max(1)) {
            let mut pending: Vec<&(String, Option<String>)> = chunk.iter().collect();
            let mut attempt = 0;
            while !pending.is_empty() {
                attempt += 1;
                let mut body = String::new();
                for (action, source) in &pending {
                    body.push_str(action);
                    body.push('\n');
                    if let Some(s) = source {
                        body.push_str(s);
                        body.push('\n');
                    }
                }
                let outcome = self
                    .client
                    .send(
                        "POST",
                        &format!("/{}/_bulk", self.index),
                        Some(("application/x-ndjson", body.into_bytes())),
                    )
                    .await;
                let still: Vec<&(String, Option<String>)> = match outcome {
                    Ok(r) if (200..300).contains(&r.status) => {
                        match serde_json::from_str::<Value>(&r.body) {
                            Ok(v) if v["errors"] == json!(false) => Vec::new(),
                            Ok(v) => {
                                let items = v["items"].as_array().cloned().unwrap_or_default();
                                pending
                                    .iter()
                                    .enumerate()
                                    .filter(|(i, _)| {
                                        items
                                            .get(*i)
                                            .and_then(|it| it.as_object())
                                            .and_then(|o| o.values().next())
                                            .is_none_or(|r| {
                                                let status = r["status"].as_u64().unwrap_or(500);
                                                // A delete of an already-deleted document is done.
                                                !(status < 300
                                                    || (status == 404
                                                        && r["result"] == "not_found"))
                                            })
                                    })
                                    .map(|(_, l)| *l)
                                    .collect()
                            }
                            Err(_) => pending.clone(),
                        }
                    }
                    Ok(r) => {
                        progress.note(&format!("_bulk answered HTTP {}", r.status));
                        pending.clone()
                    }
                    Err(e) => {
                        progress.note(&format!("_bulk failed: {e}"));
                        pending.clone()
                    }
                };
                let ok = pending.len() - still.len();
                done += ok;
                progress.advance(ok);
                if still.is_empty() {
                    break;
                }
                if attempt == 1 {
                    retried += 1;
                }
                if attempt >= self.options.attempts {
                    progress.note(&format!(
                        "{} bulk items failed after {attempt} attempts",
                        still.len()
                    ));
                    failed += still.len();
                    progress.advance(still.len());
                    break;
                }
                tokio::time::sleep(self.options.backoff * 2u32.saturating_pow(attempt - 1)).await;
                pending = still;
            }
        }
        (done, retried, failed)
    }

    /// One run over `docs` (see the module docs).
    pub async fn run(
        &self,
        docs: &[IndexDoc],
        progress: &dyn Progress,
    ) -> Result<IndexReport, IndexError> {
        let model = self.embedder.model_id();
        let mut report = IndexReport {
            created_index: self.ensure_index().await?,
            ..IndexReport::default()
        };
        let existing = if report.created_index {
            Vec::new()
        } else {
            self.existing().await?
        };
        let wanted: HashMap<&str, (usize, String)> = docs
            .iter()
            .enumerate()
            .map(|(i, d)| (d.source_id.as_str(), (i, content_hash(d, &model))))
            .collect();
        // Keep one current copy per source id; everything else goes.
        let mut kept: HashMap<&str, ()> = HashMap::new();
        let mut delete: Vec<&Existing> = Vec::new();
        for e in &existing {
            match wanted.get(e.source_id.as_str()) {
                Some((_, hash)) if *hash == e.hash && !kept.contains_key(e.source_id.as_str()) => {
                    kept.insert(e.source_id.as_str(), ());
                }
                _ => delete.push(e),
            }
        }
        let to_write: Vec<&IndexDoc> = docs
            .iter()
            .filter(|d| !kept.contains_key(d.source_id.as_str()))
            .collect();
        report.unchanged = kept.len();

        progress.start("embedding", to_write.len());
        let texts: Vec<String> = to_write.iter().map(|d| d.embedding_text()).collect();
        let mut vectors = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(16) {
            vectors.extend(embed_cached(self.embedder, chunk, self.options.cache.as_ref()).await?);
            progress.advance(chunk.len());
        }

        let mut lines: Vec<(String, Option<String>)> = Vec::new();
        for e in &delete {
            lines.push((
                json!({ "delete": { "_index": self.index, "_id": e.id } }).to_string(),
                None,
            ));
        }
        for (d, v) in to_write.iter().zip(&vectors) {
            let mut source = serde_json::to_value(d).unwrap_or(Value::Null);
            source["content_hash"] = json!(content_hash(d, &model));
            source[VECTOR_FIELD] = json!(v);
            // No `_id`: vector search collections generate it (module docs).
            lines.push((
                json!({ "index": { "_index": self.index } }).to_string(),
                Some(source.to_string()),
            ));
        }
        progress.start("writing", lines.len());
        let deletes = delete.len();
        let (done, retried, failed) = self.bulk(lines, progress).await;
        report.retried_batches = retried;
        report.failed = failed;
        report.deleted = deletes.min(done);
        report.written = done.saturating_sub(report.deleted);

        if report.written + report.deleted > 0 {
            self.wait_visible(docs.len(), progress).await?;
        }
        Ok(report)
    }

    /// Waits until the index shows exactly one document per passage (writes become
    /// searchable at the next refresh, within 60 s on vector search collections).
    async fn wait_visible(&self, want: usize, progress: &dyn Progress) -> Result<(), IndexError> {
        let deadline = tokio::time::Instant::now() + self.options.visible_within;
        progress.note("waiting for the collection's refresh (up to 60 s)");
        loop {
            let visible = self.existing().await?;
            let mut ids: Vec<&str> = visible.iter().map(|e| e.source_id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            if visible.len() == want && ids.len() == want {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                progress.note(&format!(
                    "{} documents visible of {want} after {:?}; the next refresh will show the rest",
                    visible.len(),
                    self.options.visible_within
                ));
                return Ok(());
            }
            tokio::time::sleep(self.options.poll).await;
        }
    }
}
