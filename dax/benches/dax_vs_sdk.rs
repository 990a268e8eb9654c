//! GetItem and Query latency (p50, p99) and client CPU per operation: this crate's
//! DAX client against the DAX test server, beside the AWS SDK for Rust against
//! moto_server, on 127.0.0.1. Run (release):
//!
//! ```text
//! nice -n 10 cargo bench -p mangactl-dax --bench dax_vs_sdk
//! ```
//!
//! The test server runs in a child process (this binary re-run with
//! `DAX_BENCH_SERVE_MOTO_PORT`), so the CPU measured here (user + system time of this
//! process, from /proc/self/stat) is the client's alone. With its response cache
//! on, the server answers repeated GetItems and Queries from memory, standing in for
//! DAX's item and query caches; with it off every call goes on to moto. moto is a
//! Python server: its latencies are far above DynamoDB's; the comparison is of the
//! clients' costs and of a cache hit against a DynamoDB-emulator round trip, not a
//! prediction of AWS latencies.

#[path = "../tests/support/mod.rs"]
mod support;

use aws_sdk_dynamodb::types::AttributeValue;
use mangactl_dax::testserver::TestServer;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SESSION: &str = "bench-session";

fn cpu_ticks() -> u64 {
    // utime and stime, fields 14 and 15 of /proc/self/stat, in clock ticks.
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

/// Clock ticks per second (USER_HZ; 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

struct Stats {
    p50_us: f64,
    p99_us: f64,
    cpu_us_per_op: f64,
}

async fn measure<F, Fut>(n: usize, mut f: F) -> Stats
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..n / 10 {
        f().await;
    }
    let mut lat = Vec::with_capacity(n);
    let cpu0 = cpu_ticks();
    for _ in 0..n {
        let t = Instant::now();
        f().await;
        lat.push(t.elapsed());
    }
    let cpu = (cpu_ticks() - cpu0) as f64 / TICKS_PER_SEC;
    lat.sort();
    let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e6;
    Stats {
        p50_us: q(0.50),
        p99_us: q(0.99),
        cpu_us_per_op: cpu * 1e6 / n as f64,
    }
}

fn serve(moto_port: u16) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let server = TestServer::start(support::ddb(moto_port), 1, None)
            .await
            .expect("server");
        server.set_response_cache(std::env::var("DAX_BENCH_CACHE").as_deref() == Ok("on"));
        println!("{}", server.port());
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
}

fn main() {
    if let Ok(p) = std::env::var("DAX_BENCH_SERVE_MOTO_PORT") {
        serve(p.parse().expect("port"));
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

fn key(turn: u64) -> std::collections::HashMap<String, AttributeValue> {
    std::collections::HashMap::from([
        ("session_id".to_string(), AttributeValue::S(SESSION.into())),
        ("turn".to_string(), AttributeValue::N(turn.to_string())),
    ])
}

async fn run() {
    let moto = support::moto();
    let ddb = support::ddb(moto.port);
    support::reset_tables(&ddb).await;
    for t in 1..=10u64 {
        let mut item = key(1_764_590_000_000_000 + t);
        item.insert(
            "user".into(),
            AttributeValue::S("a question about a manga series".into()),
        );
        item.insert(
            "assistant".into(),
            AttributeValue::S("an answer of a few sentences, ".repeat(8)),
        );
        item.insert("intent".into(), AttributeValue::S("recommendation".into()));
        item.insert("expires_at".into(), AttributeValue::N("1767182000".into()));
        ddb.put_item()
            .table_name("sessions")
            .set_item(Some(item))
            .send()
            .await
            .expect("seed");
    }
    let n_cached = 3000;
    let n_moto = 500;
    let mut rows = Vec::new();
    for cache in ["on", "off"] {
        let mut child = Command::new(std::env::current_exe().expect("exe"))
            .env("DAX_BENCH_SERVE_MOTO_PORT", moto.port.to_string())
            .env("DAX_BENCH_CACHE", cache)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("server process");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("port");
        let url = format!("dax://127.0.0.1:{}", line.trim());
        let dax = support::dax_client(&url, None).await;
        let n = if cache == "on" { n_cached } else { n_moto };
        let get = measure(n, || {
            let dax = dax.clone();
            async move {
                let input = aws_sdk_dynamodb::operation::get_item::GetItemInput::builder()
                    .table_name("sessions")
                    .set_key(Some(key(1_764_590_000_000_005)))
                    .build()
                    .expect("input");
                dax.get_item(input).await.expect("get");
            }
        })
        .await;
        let query = measure(n, || {
            let dax = dax.clone();
            async move {
                let input = aws_sdk_dynamodb::operation::query::QueryInput::builder()
                    .table_name("sessions")
                    .key_condition_expression("#k = :k")
                    .expression_attribute_names("#k", "session_id")
                    .expression_attribute_values(":k", AttributeValue::S(SESSION.into()))
                    .scan_index_forward(false)
                    .limit(6)
                    .build()
                    .expect("input");
                let r = dax.query(input).await.expect("query");
                assert_eq!(r.items().len(), 6);
            }
        })
        .await;
        rows.push((
            format!("mangactl-dax → test server (cache {cache})"),
            "GetItem",
            get,
            n,
        ));
        rows.push((
            format!("mangactl-dax → test server (cache {cache})"),
            "Query",
            query,
            n,
        ));
        let _ = child.kill();
        let _ = child.wait();
    }
    let get = measure(n_moto, || {
        let ddb = ddb.clone();
        async move {
            ddb.get_item()
                .table_name("sessions")
                .set_key(Some(key(1_764_590_000_000_005)))
                .send()
                .await
                .expect("get");
        }
    })
    .await;
    let query = measure(n_moto, || {
        let ddb = ddb.clone();
        async move {
            let r = ddb
                .query()
                .table_name("sessions")
                .key_condition_expression("#k = :k")
                .expression_attribute_names("#k", "session_id")
                .expression_attribute_values(":k", AttributeValue::S(SESSION.into()))
                .scan_index_forward(false)
                .limit(6)
                .send()
                .await
                .expect("query");
            assert_eq!(r.items().len(), 6);
        }
    })
    .await;
    rows.push(("AWS SDK → moto_server".into(), "GetItem", get, n_moto));
    rows.push(("AWS SDK → moto_server".into(), "Query", query, n_moto));

    println!("| path | operation | ops | p50 µs | p99 µs | client CPU µs/op |");
    println!("|---|---|---|---|---|---|");
    for (path, op, s, n) in rows {
        println!(
            "| {path} | {op} | {n} | {:.0} | {:.0} | {:.0} |",
            s.p50_us, s.p99_us, s.cpu_us_per_op
        );
    }
}
