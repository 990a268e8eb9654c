//! Bench: in-process pipeline overhead per message and intent-classifier latency.
//!
//! `cargo bench -p manga-runtime --bench pipeline` (release profile). Runs the full
//! pipeline with the embedded backends and no simulated waits (extractive responder
//! with zero word delay), frames going into a channel that is drained concurrently, so
//! the numbers are the orchestrator's own cost: auth, memory, rules/model, cache, service
//! calls, BM25 retrieval, composition, guardrails and delivery. Prints p50/p99; asserts
//! nothing (timings belong in benches, not tests).

use manga_runtime::app::AppBuilder;
use manga_runtime::backends::classifier::{IntentClassifier, TrainOptions};
use manga_runtime::config::Config;
use manga_runtime::data::DataSet;
use manga_runtime::pipeline::auth::Principal;
use manga_runtime::pipeline::intent::IntentRules;
use manga_runtime::pipeline::Request;
use std::time::{Duration, Instant};

const QUERIES: &[&str] = &[
    "hello",
    "what is your return policy",
    "how long does shipping take",
    "where is my order MA-100042",
    "how much is berserk, is it in stock?",
    "do you have chainsaw man",
    "show me horror manga by junji ito",
    "recommend something like death note",
    "recommend more like that one",
    "hi, can you suggest a cozy slice of life series",
];

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let mean = v.iter().sum::<Duration>() / v.len() as u32;
    println!(
        "{name:<34} n={:<6} p50={:>9.1?} p99={:>9.1?} mean={:>9.1?} max={:>9.1?}",
        v.len(),
        pct(&v, 0.50),
        pct(&v, 0.99),
        mean,
        v[v.len() - 1]
    );
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let data = DataSet::bundled()?;

    // Classifier and rules latency.
    let t0 = Instant::now();
    let clf = IntentClassifier::train(&data.train, TrainOptions::default());
    println!(
        "classifier training: {:.1?} on {} examples",
        t0.elapsed(),
        data.train.len()
    );
    let rules = IntentRules::new()?;
    let mut clf_times = Vec::new();
    let mut rule_times = Vec::new();
    for _ in 0..20 {
        for (_, text) in &data.heldout {
            let t = Instant::now();
            std::hint::black_box(clf.predict(text));
            clf_times.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(rules.evaluate(text, &[]));
            rule_times.push(t.elapsed());
        }
    }
    report("intent model predict", clf_times);
    report("intent rules evaluate", rule_times);

    // Whole pipeline.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let config = Config::from_args(&[
            "--rate-per-minute",
            "100000000",
            "--rate-burst",
            "100000000",
        ])?;
        let app = AppBuilder::new(config).build().await?;
        let pipeline = app.state.pipeline.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        // The in-process writer: answers the barrier before each `done`.
        let drain = tokio::spawn(manga_runtime::protocol::collect(rx));
        let tx = manga_runtime::pipeline::Outbox::new(tx);
        let mut all = Vec::new();
        let mut per_query: Vec<Vec<Duration>> = vec![Vec::new(); QUERIES.len()];
        let rounds = 300;
        for round in 0..rounds + 20 {
            for (qi, q) in QUERIES.iter().enumerate() {
                let req = Request::new(
                    format!("b{round}-{qi}"),
                    format!("bench-{}", round % 50),
                    *q,
                    Principal::anonymous("bench"),
                );
                let t = Instant::now();
                pipeline.handle(req, &tx).await;
                let d = t.elapsed();
                if round >= 20 {
                    // the first rounds warm caches and allocators
                    all.push(d);
                    per_query[qi].push(d);
                }
            }
        }
        drop(tx);
        drain.await?;
        report("pipeline, all messages", all);
        for (q, v) in QUERIES.iter().zip(per_query) {
            report(&format!("  {}", &q[..q.len().min(32)]), v);
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    })?;
    Ok(())
}
