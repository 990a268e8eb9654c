//! An OpenSearch Serverless double (vector search collection) on 127.0.0.1, written for
//! the tests (`opensearch.rs`) and the retrieval benchmark (`benches/retrieval.rs`
//! includes this file). Self-contained: no `crate::` paths.
//!
//! What the double models, each from the documentation the runtime cites
//! (`backends/aws/index.rs`): `PUT /{index}` with a `knn_vector` mapping (Lucene engine
//! and faiss IVF refused, as on vector search collections), `GET /{index}/_mapping`,
//! `POST /{index}/_bulk` (`index` without `_id` only — a custom id is an item error —
//! and `delete` by the generated id; `?refresh` refused), writes visible only after the
//! refresh interval, `POST /{index}/_search` with `match_all`, a `bool` of `multi_match`
//! (BM25, k1 = 1.2, b = 0.75, `title^2`) and `filter` clauses (`term`, `range`, nested
//! `bool` with `should`/`minimum_should_match`), and `knn` with a `filter`, scored by
//! the OpenSearch k-NN space formulas (faiss `innerproduct`: 1 + ip for ip ≥ 0, else
//! 1 / (1 − ip); `l2`: 1 / (1 + d²); `cosinesimil`: (2 − (1 − cos)) / 2). Requests whose
//! SigV4 credential scope is not `…/aoss/aws4_request` get 403.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
struct Doc {
    id: String,
    source: Value,
    written: Instant,
    deleted: Option<Instant>,
}

#[derive(Debug)]
struct Index {
    mapping: Value,
    space: String,
    dimension: usize,
    docs: Vec<Doc>,
}

#[derive(Debug)]
pub struct Double {
    indexes: Mutex<HashMap<String, Index>>,
    refresh: Duration,
    next_id: AtomicUsize,
    /// `_bulk` requests still to fail with 503 (failure injection).
    pub fail_bulks: AtomicUsize,
    pub bulk_requests: AtomicUsize,
    pub bulk_items: AtomicUsize,
}

fn reply(status: StatusCode, v: Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(v.to_string()))
        .expect("response")
}

fn error(status: StatusCode, kind: &str, reason: &str) -> Response {
    reply(
        status,
        json!({"error": {"type": kind, "reason": reason}, "status": status.as_u16()}),
    )
}

/// 403 unless the request is SigV4-signed for service `aoss`.
fn check_signature(h: &HeaderMap) -> Option<Response> {
    let auth = h
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let scope_ok = auth.starts_with("AWS4-HMAC-SHA256 ")
        && auth
            .split("Credential=")
            .nth(1)
            .and_then(|c| c.split(',').next())
            .is_some_and(|c| c.ends_with("/aoss/aws4_request"));
    if !scope_ok || !h.contains_key("x-amz-content-sha256") {
        return Some(reply(
            StatusCode::FORBIDDEN,
            json!({"status": 403, "message": "Forbidden"}),
        ));
    }
    None
}

impl Double {
    fn visible(&self, d: &Doc, now: Instant) -> bool {
        now.duration_since(d.written) >= self.refresh
            && d.deleted
                .is_none_or(|t| now.duration_since(t) < self.refresh)
    }
}

fn tokens(s: &str) -> Vec<String> {
    s.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Whether a document's source passes one filter clause.
fn passes(src: &Value, clause: &Value) -> bool {
    if let Some(t) = clause.get("term").and_then(Value::as_object) {
        return t.iter().all(|(field, want)| match &src[field] {
            Value::Array(a) => a.contains(want),
            v => v == want,
        });
    }
    if let Some(r) = clause.get("range").and_then(Value::as_object) {
        return r.iter().all(|(field, b)| {
            let Some(v) = src[field].as_f64() else {
                return false;
            };
            b.get("gte").and_then(Value::as_f64).is_none_or(|x| v >= x)
                && b.get("lte").and_then(Value::as_f64).is_none_or(|x| v <= x)
                && b.get("gt").and_then(Value::as_f64).is_none_or(|x| v > x)
                && b.get("lt").and_then(Value::as_f64).is_none_or(|x| v < x)
        });
    }
    if let Some(b) = clause.get("bool") {
        let all = |k: &str| {
            b[k].as_array()
                .is_none_or(|cs| cs.iter().all(|c| passes(src, c)))
        };
        let should_ok = match b["should"].as_array() {
            Some(cs) if !cs.is_empty() => {
                let min = b["minimum_should_match"].as_u64().unwrap_or(1) as usize;
                cs.iter().filter(|c| passes(src, c)).count() >= min
            }
            _ => true,
        };
        return all("filter") && all("must") && should_ok;
    }
    if clause.get("match_all").is_some() {
        return true;
    }
    false
}

/// The k-NN score of a document vector for a space (OpenSearch k-NN documentation).
fn knn_score(space: &str, q: &[f64], d: &[f64]) -> f64 {
    match space {
        "innerproduct" => {
            let ip: f64 = q.iter().zip(d).map(|(a, b)| a * b).sum();
            if ip >= 0.0 {
                1.0 + ip
            } else {
                1.0 / (1.0 - ip)
            }
        }
        "cosinesimil" => {
            let dot: f64 = q.iter().zip(d).map(|(a, b)| a * b).sum();
            let n = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
            let cos = dot / (n(q) * n(d));
            (2.0 - (1.0 - cos)) / 2.0
        }
        _ => {
            let d2: f64 = q.iter().zip(d).map(|(a, b)| (a - b) * (a - b)).sum();
            1.0 / (1.0 + d2)
        }
    }
}

fn bm25(query: &str, docs: &[&Doc]) -> Vec<f64> {
    let q = tokens(query);
    let fields = [("title", 2.0), ("text", 1.0)];
    let mut scores = vec![0.0; docs.len()];
    for (field, boost) in fields {
        let toks: Vec<Vec<String>> = docs
            .iter()
            .map(|d| tokens(d.source[field].as_str().unwrap_or_default()))
            .collect();
        let n = toks.len() as f64;
        let avg = toks.iter().map(Vec::len).sum::<usize>() as f64 / n.max(1.0);
        for term in &q {
            let df = toks.iter().filter(|t| t.contains(term)).count() as f64;
            if df == 0.0 {
                continue;
            }
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for (i, t) in toks.iter().enumerate() {
                let tf = t.iter().filter(|w| *w == term).count() as f64;
                if tf > 0.0 {
                    let len = t.len() as f64;
                    scores[i] += boost * idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * len / avg));
                }
            }
        }
    }
    scores
}

async fn put_index(
    State(db): State<Arc<Double>>,
    Path(index): Path<String>,
    h: HeaderMap,
    body: String,
) -> Response {
    if let Some(r) = check_signature(&h) {
        return r;
    }
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let mut space = String::from("l2");
    let mut dimension = 0;
    for (_, p) in v["mappings"]["properties"]
        .as_object()
        .into_iter()
        .flatten()
    {
        if p["type"] == "knn_vector" {
            let engine = p["method"]["engine"].as_str().unwrap_or("nmslib");
            let name = p["method"]["name"].as_str().unwrap_or("hnsw");
            if engine == "lucene" || name.starts_with("ivf") {
                return error(
                    StatusCode::BAD_REQUEST,
                    "mapper_parsing_exception",
                    "engine or method not supported on vector search collections",
                );
            }
            space = p["method"]["space_type"]
                .as_str()
                .unwrap_or("l2")
                .to_string();
            dimension = p["dimension"].as_u64().unwrap_or(0) as usize;
        }
    }
    let mut all = db.indexes.lock().expect("lock");
    if all.contains_key(&index) {
        return error(
            StatusCode::BAD_REQUEST,
            "resource_already_exists_exception",
            "index exists",
        );
    }
    all.insert(
        index.clone(),
        Index {
            mapping: v["mappings"].clone(),
            space,
            dimension,
            docs: Vec::new(),
        },
    );
    reply(
        StatusCode::OK,
        json!({"acknowledged": true, "index": index}),
    )
}

async fn get_mapping(
    State(db): State<Arc<Double>>,
    Path(index): Path<String>,
    h: HeaderMap,
) -> Response {
    if let Some(r) = check_signature(&h) {
        return r;
    }
    match db.indexes.lock().expect("lock").get(&index) {
        Some(i) => reply(StatusCode::OK, json!({ index: { "mappings": i.mapping } })),
        None => error(
            StatusCode::NOT_FOUND,
            "index_not_found_exception",
            "no such index",
        ),
    }
}

async fn bulk(
    State(db): State<Arc<Double>>,
    Path(index): Path<String>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    body: String,
) -> Response {
    if let Some(r) = check_signature(&h) {
        return r;
    }
    if q.unwrap_or_default().contains("refresh") {
        return error(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            "refresh is not supported",
        );
    }
    db.bulk_requests.fetch_add(1, Ordering::SeqCst);
    if db
        .fail_bulks
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "injected failure",
        );
    }
    let mut all = db.indexes.lock().expect("lock");
    let Some(idx) = all.get_mut(&index) else {
        return error(
            StatusCode::NOT_FOUND,
            "index_not_found_exception",
            "no such index",
        );
    };
    let now = Instant::now();
    let mut lines = body.lines().filter(|l| !l.trim().is_empty());
    let mut items = Vec::new();
    let mut errors = false;
    while let Some(action) = lines.next() {
        let a: Value = serde_json::from_str(action).unwrap_or(Value::Null);
        db.bulk_items.fetch_add(1, Ordering::SeqCst);
        if let Some(meta) = a.get("index") {
            let src: Value = lines
                .next()
                .and_then(|l| serde_json::from_str(l).ok())
                .unwrap_or(Value::Null);
            if meta.get("_id").is_some() {
                errors = true;
                items.push(
                    json!({"index": {"status": 400, "error": {"type": "illegal_argument_exception",
                    "reason": "Document ID is not supported in create/index operation request"}}}),
                );
                continue;
            }
            let dims = src["embedding"].as_array().map_or(0, Vec::len);
            if dims != idx.dimension {
                errors = true;
                items.push(json!({"index": {"status": 400, "error": {"type": "mapper_parsing_exception",
                    "reason": format!("Vector dimension mismatch. Expected: {}, Given: {dims}", idx.dimension)}}}));
                continue;
            }
            let id = format!("gen-{}", db.next_id.fetch_add(1, Ordering::SeqCst));
            idx.docs.push(Doc {
                id: id.clone(),
                source: src,
                written: now,
                deleted: None,
            });
            items.push(json!({"index": {"_id": id, "status": 201, "result": "created"}}));
        } else if let Some(meta) = a.get("delete") {
            let id = meta["_id"].as_str().unwrap_or_default();
            match idx
                .docs
                .iter_mut()
                .find(|d| d.id == id && d.deleted.is_none())
            {
                Some(d) => {
                    d.deleted = Some(now);
                    items.push(json!({"delete": {"_id": id, "status": 200, "result": "deleted"}}));
                }
                None => {
                    items.push(json!({"delete": {"_id": id, "status": 404, "result": "not_found"}}))
                }
            }
        } else {
            errors = true;
            items.push(json!({"unknown": {"status": 400}}));
        }
    }
    reply(
        StatusCode::OK,
        json!({"took": 1, "errors": errors, "items": items}),
    )
}

async fn search(
    State(db): State<Arc<Double>>,
    Path(index): Path<String>,
    h: HeaderMap,
    body: String,
) -> Response {
    if let Some(r) = check_signature(&h) {
        return r;
    }
    let req: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let all = db.indexes.lock().expect("lock");
    let Some(idx) = all.get(&index) else {
        return error(
            StatusCode::NOT_FOUND,
            "index_not_found_exception",
            "no such index",
        );
    };
    let now = Instant::now();
    let docs: Vec<&Doc> = idx.docs.iter().filter(|d| db.visible(d, now)).collect();
    let size = req["size"].as_u64().unwrap_or(10) as usize;
    let q = &req["query"];
    let mut scored: Vec<(f64, &Doc)> = if q.get("match_all").is_some() {
        docs.iter().map(|d| (1.0, *d)).collect()
    } else if let Some(knn) = q.get("knn").and_then(Value::as_object) {
        let Some((field, spec)) = knn.iter().next() else {
            return error(StatusCode::BAD_REQUEST, "parsing_exception", "empty knn");
        };
        let qv: Vec<f64> = spec["vector"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_f64)
            .collect();
        if qv.len() != idx.dimension {
            return error(
                StatusCode::BAD_REQUEST,
                "illegal_argument_exception",
                "query vector dimension",
            );
        }
        let k = spec["k"].as_u64().unwrap_or(10) as usize;
        let filter = spec.get("filter");
        let mut s: Vec<(f64, &Doc)> = docs
            .iter()
            .filter(|d| filter.is_none_or(|f| passes(&d.source, f)))
            .map(|d| {
                let dv: Vec<f64> = d.source[field]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_f64)
                    .collect();
                (knn_score(&idx.space, &qv, &dv), *d)
            })
            .collect();
        s.sort_by(|a, b| b.0.total_cmp(&a.0));
        s.truncate(k);
        s
    } else if let Some(b) = q.get("bool") {
        let text = b["must"][0]["multi_match"]["query"]
            .as_str()
            .unwrap_or_default();
        let filters: Vec<Value> = b["filter"].as_array().cloned().unwrap_or_default();
        let kept: Vec<&Doc> = docs
            .iter()
            .copied()
            .filter(|d| filters.iter().all(|f| passes(&d.source, f)))
            .collect();
        let scores = bm25(text, &kept);
        kept.into_iter()
            .zip(scores)
            .filter(|(_, s)| *s > 0.0)
            .map(|(d, s)| (s, d))
            .collect()
    } else {
        return error(
            StatusCode::BAD_REQUEST,
            "parsing_exception",
            "query type not modelled",
        );
    };
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.id.cmp(&b.1.id)));
    let fields: Option<Vec<String>> = req["_source"].as_array().map(|a| {
        a.iter()
            .filter_map(|f| f.as_str().map(str::to_string))
            .collect()
    });
    let hits: Vec<Value> = scored
        .iter()
        .take(size)
        .map(|(s, d)| {
            let source = match &fields {
                Some(f) => Value::Object(
                    f.iter()
                        .filter_map(|k| Some((k.clone(), d.source.get(k)?.clone())))
                        .collect(),
                ),
                None => d.source.clone(),
            };
            json!({"_index": index, "_id": d.id, "_score": s, "_source": source})
        })
        .collect();
    reply(
        StatusCode::OK,
        json!({"took": 1, "timed_out": false,
        "hits": {"total": {"value": scored.len(), "relation": "eq"}, "hits": hits}}),
    )
}

/// Starts the double on 127.0.0.1; documents become visible `refresh` after a write.
pub async fn start(refresh: Duration) -> (String, Arc<Double>) {
    let db = Arc::new(Double {
        indexes: Mutex::default(),
        refresh,
        next_id: AtomicUsize::new(0),
        fail_bulks: AtomicUsize::new(0),
        bulk_requests: AtomicUsize::new(0),
        bulk_items: AtomicUsize::new(0),
    });
    let app = axum::Router::new()
        .route("/{index}", axum::routing::put(put_index))
        .route("/{index}/_mapping", axum::routing::get(get_mapping))
        .route("/{index}/_bulk", axum::routing::post(bulk))
        .route("/{index}/_search", axum::routing::post(search))
        .with_state(Arc::clone(&db));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), db)
}
