//! Bench: retrieval latency, embedding included (PO-03's budget: < 200 ms total).
//!
//! `nice cargo bench -p manga-runtime --bench retrieval` (release profile). Every query
//! of the labelled set (`data/eval/queries.tsv`) with its parsed filters, three rounds:
//! - `embedded`: the hybrid retriever in process (all-MiniLM-L6-v2 query embedding, BM25,
//!   exact k-NN, RRF);
//! - `embed_only`: the query embedding alone;
//! - `opensearch`: `OpenSearchRetriever` (the same query embedding, then a BM25 and a
//!   k-NN `_search` in parallel, SigV4-signed, fused) against the OpenSearch double on
//!   127.0.0.1, filled by the index command's `Indexer`. This is the client's cost plus
//!   loopback HTTP and the double's exact scoring, not a collection's service time.
//!
//! Prints p50/p99; asserts nothing. Needs the model (`scripts/install-test-tools`).

#[path = "../tests/it/opensearch_double.rs"]
#[allow(dead_code)]
mod opensearch_double;

use manga_runtime::backends::aws::index::{IndexOptions, Indexer, Progress};
use manga_runtime::backends::aws::opensearch::{AossClient, OpenSearchRetriever};
use manga_runtime::backends::aws::static_config;
use manga_runtime::backends::bm25::Bm25Retriever;
use manga_runtime::backends::corpus::documents;
use manga_runtime::backends::embed::Embedder;
use manga_runtime::backends::filters::FilterParser;
use manga_runtime::backends::hybrid::{EmbeddingCache, HybridRetriever};
use manga_runtime::backends::minilm::{self, MiniLmEmbedder};
use manga_runtime::backends::Retriever;
use manga_runtime::data::DataSet;
use manga_runtime::domain::Corpus;
use std::sync::Arc;
use std::time::{Duration, Instant};

const QUERIES: &str = include_str!("../data/eval/queries.tsv");
const ROUNDS: usize = 3;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{name:<11} n={:<5} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
        v.len(),
        ms(pct(&v, 0.50)),
        ms(pct(&v, 0.99)),
        ms(v[v.len() - 1])
    );
}

struct Quiet;

impl Progress for Quiet {
    fn start(&self, _phase: &str, _total: usize) {}
    fn advance(&self, _n: usize) {}
    fn note(&self, _message: &str) {}
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let queries: Vec<(Corpus, String)> = QUERIES
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let corpus = match *f.get(1)? {
                "faq" => Corpus::Faq,
                "all" => Corpus::All,
                _ => Corpus::Catalog,
            };
            Some((corpus, (*f.get(2)?).to_string()))
        })
        .collect();
    let data = DataSet::bundled().expect("bundled data");
    let parser = FilterParser::new(&data.catalog);
    let Some(dir) = minilm::default_model_dir() else {
        eprintln!("no all-MiniLM-L6-v2 (run scripts/install-test-tools)");
        std::process::exit(1);
    };
    let embedder = MiniLmEmbedder(minilm::shared(&dir).expect("model"));
    let cache = EmbeddingCache {
        dir: dir.join("cache"),
    };
    let bm25 = Bm25Retriever::build(&data.catalog, &data.faq).expect("bm25");
    let hybrid = HybridRetriever::build(bm25, Arc::new(embedder.clone()), Some(&cache))
        .await
        .expect("vectors");

    let (endpoint, _db) = opensearch_double::start(Duration::from_millis(20)).await;
    let sdk = static_config(&endpoint, "us-east-1");
    let client = AossClient::new(&sdk, &endpoint, Duration::from_secs(10)).expect("client");
    let docs = documents(&data.catalog, &data.faq);
    let options = IndexOptions {
        poll: Duration::from_millis(20),
        cache: Some(cache.clone()),
        ..IndexOptions::default()
    };
    Indexer {
        client: &client,
        index: "bench",
        embedder: &embedder,
        options,
    }
    .run(&docs, &Quiet)
    .await
    .expect("index");
    let remote = OpenSearchRetriever::new(&sdk, &endpoint, "bench")
        .expect("retriever")
        .with_embedder(Arc::new(embedder.clone()));

    // Warm-up: first calls pay for page faults and connection set-up.
    for (corpus, q) in queries.iter().take(10) {
        let f = parser.parse(q);
        let _ = hybrid.retrieve(q, 3, *corpus, &f).await;
        let _ = remote.retrieve(q, 3, *corpus, &f).await;
    }
    let (mut embedded, mut embed_only, mut opensearch) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        for (corpus, q) in &queries {
            let f = parser.parse(q);
            let t = Instant::now();
            let _ = embedder
                .embed(std::slice::from_ref(q))
                .await
                .expect("embed");
            embed_only.push(t.elapsed());
            let t = Instant::now();
            let hits = hybrid.retrieve(q, 3, *corpus, &f).await.expect("embedded");
            embedded.push(t.elapsed());
            std::hint::black_box(hits);
            let t = Instant::now();
            let hits = remote
                .retrieve(q, 3, *corpus, &f)
                .await
                .expect("opensearch");
            opensearch.push(t.elapsed());
            std::hint::black_box(hits);
        }
    }
    println!(
        "retrieval latency, {} queries x {ROUNDS} rounds (k = 3):",
        queries.len()
    );
    report("embed_only", embed_only);
    report("embedded", embedded);
    report("opensearch", opensearch);
}
