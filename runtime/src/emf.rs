//! CloudWatch Embedded Metric Format (EMF) output: per answered message, one JSON log
//! line per stage that ran, which CloudWatch Logs turns into the metrics the
//! `observability` stack alarms on and plots — namespace [`NAMESPACE`], metric
//! [`STAGE_METRIC`] (milliseconds) and [`MISS_METRIC`] (count, 0 or 1), dimension set
//! `[["Environment","Stage"]]`. Enabled with `MANGA_EMF=true`; see
//! [`crate::metrics::Metrics::with_emf`].
//!
//! Why log lines and not `PutMetricData`: the Rust CloudWatch client speaks a protocol the
//! test emulator lacks, and EMF costs no API call on the hot path — the container's stdout
//! goes to CloudWatch Logs through the `awslogs` driver, which extracts the metrics.
//!
//! One line per stage, not one per message, because an EMF dimension is a single
//! top-level value per document: `Stage` can only name one stage per line.
//!
//! Writing happens on a dedicated thread behind a bounded channel, so a slow log pipe
//! never blocks the async workers; when the channel is full the message's lines are
//! dropped and counted ([`EmfSink::dropped`], `manga_emf_dropped_total`).

use crate::metrics::Stage;
use serde::Serialize;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

// The metric names are the contract with the stacks that alarm and scale on them
// (`stacks::stacks::observability`), defined there once:
// - `NAMESPACE`: the runtime's CloudWatch namespace;
// - `STAGE_METRIC`: per-stage latency in milliseconds;
// - `MISS_METRIC`: 1 when the stage missed its budget (or was cut off by its
//   deadline), else 0; its `Sum` is the miss count and its `Average` the miss rate;
// - `SESSIONS_METRIC`, `STREAMS_METRIC`: the per-task gauges ([`render_gauges`]).
pub use stacks::stacks::observability::{
    MISS_METRIC, RUNTIME_NAMESPACE as NAMESPACE, SESSIONS_METRIC, STAGE_METRIC, STREAMS_METRIC,
};

/// Messages whose lines may wait for the writer thread before new ones are dropped.
const QUEUE: usize = 1024;

#[derive(Debug, thiserror::Error)]
#[error("cannot start the EMF writer thread: {0}")]
pub struct EmfError(#[from] std::io::Error);

/// One stage of one message, as measured by [`crate::pipeline::Run`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageSample {
    pub stage: Stage,
    pub latency: Duration,
    pub missed: bool,
    pub budget: Duration,
}

#[derive(Serialize)]
struct MetricDef {
    #[serde(rename = "Name")]
    name: &'static str,
    #[serde(rename = "Unit")]
    unit: &'static str,
}

#[derive(Serialize)]
struct Directive {
    #[serde(rename = "Namespace")]
    namespace: &'static str,
    #[serde(rename = "Dimensions")]
    dimensions: [[&'static str; 2]; 1],
    #[serde(rename = "Metrics")]
    metrics: [MetricDef; 2],
}

#[derive(Serialize)]
struct Metadata {
    #[serde(rename = "Timestamp")]
    timestamp: u64,
    #[serde(rename = "CloudWatchMetrics")]
    cloudwatch_metrics: [Directive; 1],
}

/// The document; field names are the EMF member names. `BudgetMs` and `MessageId` are
/// plain properties (searchable in Logs Insights, not metrics).
#[derive(Serialize)]
struct Document<'a> {
    #[serde(rename = "_aws")]
    aws: Metadata,
    #[serde(rename = "Environment")]
    environment: &'a str,
    #[serde(rename = "Stage")]
    stage: &'static str,
    #[serde(rename = "StageLatency")]
    stage_latency: f64,
    #[serde(rename = "BudgetMiss")]
    budget_miss: u8,
    #[serde(rename = "BudgetMs")]
    budget_ms: u64,
    #[serde(rename = "MessageId")]
    message_id: &'a str,
}

/// The EMF lines of one message (each ending in `\n`), in [`Stage::MEASURED`] order of `samples`.
pub fn render_message(
    environment: &str,
    message_id: &str,
    timestamp_ms: u64,
    samples: &[StageSample],
) -> String {
    let mut out = String::with_capacity(samples.len() * 320);
    for s in samples {
        let doc = Document {
            aws: Metadata {
                timestamp: timestamp_ms,
                cloudwatch_metrics: [Directive {
                    namespace: NAMESPACE,
                    dimensions: [["Environment", "Stage"]],
                    metrics: [
                        MetricDef {
                            name: STAGE_METRIC,
                            unit: "Milliseconds",
                        },
                        MetricDef {
                            name: MISS_METRIC,
                            unit: "Count",
                        },
                    ],
                }],
            },
            environment,
            stage: s.stage.key(),
            // Microsecond resolution is plenty and keeps the lines short.
            stage_latency: (s.latency.as_secs_f64() * 1e6).round() / 1e3,
            budget_miss: u8::from(s.missed),
            budget_ms: u64::try_from(s.budget.as_millis()).unwrap_or(u64::MAX),
            message_id,
        };
        // Serialising these plain structs cannot fail; a failure would only lose a line.
        if let Ok(line) = serde_json::to_string(&doc) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

#[derive(Serialize)]
struct GaugeDirective {
    #[serde(rename = "Namespace")]
    namespace: &'static str,
    #[serde(rename = "Dimensions")]
    dimensions: [[&'static str; 1]; 1],
    #[serde(rename = "Metrics")]
    metrics: [MetricDef; 2],
}

#[derive(Serialize)]
struct GaugeMetadata {
    #[serde(rename = "Timestamp")]
    timestamp: u64,
    #[serde(rename = "CloudWatchMetrics")]
    cloudwatch_metrics: [GaugeDirective; 1],
}

#[derive(Serialize)]
struct GaugeDocument<'a> {
    #[serde(rename = "_aws")]
    aws: GaugeMetadata,
    #[serde(rename = "Environment")]
    environment: &'a str,
    #[serde(rename = "ActiveSessions")]
    sessions: i64,
    #[serde(rename = "LlmStreamsInFlight")]
    streams: i64,
}

/// One gauge sample of this task: [`SESSIONS_METRIC`] and [`STREAMS_METRIC`] with
/// dimension set `[["Environment"]]`, one line ending in `\n`. Every task writes one
/// line per interval, so the metric's `Average` over a period is the per-task mean
/// (what the service's target tracking holds at its target).
pub fn render_gauges(environment: &str, timestamp_ms: u64, sessions: i64, streams: i64) -> String {
    let doc = GaugeDocument {
        aws: GaugeMetadata {
            timestamp: timestamp_ms,
            cloudwatch_metrics: [GaugeDirective {
                namespace: NAMESPACE,
                dimensions: [["Environment"]],
                metrics: [
                    MetricDef {
                        name: SESSIONS_METRIC,
                        unit: "Count",
                    },
                    MetricDef {
                        name: STREAMS_METRIC,
                        unit: "Count",
                    },
                ],
            }],
        },
        environment,
        sessions,
        streams,
    };
    serde_json::to_string(&doc)
        .map(|l| l + "\n")
        .unwrap_or_default()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Where EMF lines go: a writer (stdout in production) fed by a background thread.
#[derive(Debug)]
pub struct EmfSink {
    environment: String,
    tx: SyncSender<String>,
    dropped: AtomicU64,
}

impl EmfSink {
    /// Lines to the process's stdout, which the ECS `awslogs` driver ships to CloudWatch.
    pub fn stdout(environment: &str) -> Result<EmfSink, EmfError> {
        Self::to_writer(environment, Box::new(std::io::stdout()))
    }

    /// Lines to `writer` (tests pass a buffer).
    pub fn to_writer(
        environment: &str,
        mut writer: Box<dyn Write + Send>,
    ) -> Result<EmfSink, EmfError> {
        let (tx, rx) = sync_channel::<String>(QUEUE);
        std::thread::Builder::new()
            .name("emf-writer".into())
            .spawn(move || {
                // Ends when the sink (the only sender) is dropped.
                for lines in rx {
                    if writer
                        .write_all(lines.as_bytes())
                        .and_then(|()| writer.flush())
                        .is_err()
                    {
                        // stdout closed: nothing useful left to do with metrics.
                        return;
                    }
                }
            })?;
        Ok(EmfSink {
            environment: environment.to_string(),
            tx,
            dropped: AtomicU64::new(0),
        })
    }

    /// Queues the lines of one message; never blocks.
    pub fn emit(&self, message_id: &str, samples: &[StageSample]) {
        if samples.is_empty() {
            return;
        }
        let lines = render_message(&self.environment, message_id, now_ms(), samples);
        self.queue(lines);
    }

    /// Queues one gauge line ([`render_gauges`]); never blocks.
    pub fn emit_gauges(&self, sessions: i64, streams: i64) {
        self.queue(render_gauges(
            &self.environment,
            now_ms(),
            sessions,
            streams,
        ));
    }

    fn queue(&self, lines: String) {
        match self.tx.try_send(lines) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Messages whose lines were dropped (writer behind or gone).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn samples() -> Vec<StageSample> {
        vec![
            StageSample {
                stage: Stage::MemoryRead,
                latency: Duration::from_micros(1500),
                missed: false,
                budget: Duration::from_millis(10),
            },
            StageSample {
                stage: Stage::FirstToken,
                latency: Duration::from_micros(412_345),
                missed: true,
                budget: Duration::from_millis(400),
            },
        ]
    }

    #[test]
    fn the_gauges_are_one_document_per_sample_with_the_environment_only() {
        let line = render_gauges("prod", 1_700_000_000_000, 2867, 41);
        assert!(line.ends_with('\n') && line.lines().count() == 1);
        let v: Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(
            v,
            json!({
                "_aws": {
                    "Timestamp": 1_700_000_000_000_u64,
                    "CloudWatchMetrics": [{
                        "Namespace": "MangaAssist",
                        "Dimensions": [["Environment"]],
                        "Metrics": [
                            {"Name": "ActiveSessions", "Unit": "Count"},
                            {"Name": "LlmStreamsInFlight", "Unit": "Count"}
                        ]
                    }]
                },
                "Environment": "prod",
                "ActiveSessions": 2867,
                "LlmStreamsInFlight": 41
            })
        );
    }

    #[test]
    fn each_stage_is_one_emf_document_of_the_exact_shape() {
        let out = render_message("prod", "m1-3", 1_700_000_000_123, &samples());
        assert!(out.ends_with('\n'));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "one line per stage: {out}");
        let first: Value = serde_json::from_str(lines[0]).expect("JSON");
        assert_eq!(
            first,
            json!({
                "_aws": {
                    "Timestamp": 1_700_000_000_123_u64,
                    "CloudWatchMetrics": [{
                        "Namespace": "MangaAssist",
                        "Dimensions": [["Environment", "Stage"]],
                        "Metrics": [
                            {"Name": "StageLatency", "Unit": "Milliseconds"},
                            {"Name": "BudgetMiss", "Unit": "Count"}
                        ]
                    }]
                },
                "Environment": "prod",
                "Stage": "memory_read",
                "StageLatency": 1.5,
                "BudgetMiss": 0,
                "BudgetMs": 10,
                "MessageId": "m1-3"
            })
        );
        let second: Value = serde_json::from_str(lines[1]).expect("JSON");
        assert_eq!(second["Stage"], "first_token");
        assert_eq!(second["StageLatency"], 412.345);
        assert_eq!(second["BudgetMiss"], 1);
    }

    /// The rules of the EMF specification that CloudWatch enforces (else it drops the
    /// metrics silently): every dimension and metric named in the directive is a
    /// top-level member, dimensions are strings, metric values numbers, at most 30
    /// dimensions per set and 100 metrics per directive, Timestamp in epoch ms.
    #[test]
    fn documents_satisfy_the_emf_specification() {
        let out = render_message("dev", "m9-1", 1_700_000_000_000, &samples());
        for line in out.lines() {
            let doc: Value = serde_json::from_str(line).expect("JSON");
            assert!(doc["_aws"]["Timestamp"].is_u64());
            let directives = doc["_aws"]["CloudWatchMetrics"].as_array().expect("array");
            for d in directives {
                assert!(d["Namespace"].as_str().is_some_and(|n| !n.is_empty()));
                for set in d["Dimensions"].as_array().expect("dimension sets") {
                    let set = set.as_array().expect("dimension set");
                    assert!(!set.is_empty() && set.len() <= 30);
                    for key in set {
                        let key = key.as_str().expect("dimension name");
                        assert!(
                            doc[key].is_string(),
                            "dimension {key} must be a string member"
                        );
                    }
                }
                let metrics = d["Metrics"].as_array().expect("metrics");
                assert!(metrics.len() <= 100);
                for m in metrics {
                    let name = m["Name"].as_str().expect("metric name");
                    assert!(
                        doc[name].is_number(),
                        "metric {name} must be a number member"
                    );
                    assert!(["Milliseconds", "Count"].contains(&m["Unit"].as_str().unwrap_or("")));
                }
            }
        }
    }

    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Shared {
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

    #[test]
    fn sink_writes_whole_lines_from_its_thread() {
        let buf = Shared::default();
        let sink = EmfSink::to_writer("staging", Box::new(buf.clone())).expect("sink");
        sink.emit("m1-1", &samples());
        sink.emit("m1-2", &[]);
        drop(sink); // closes the channel; the thread drains what is queued
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let text = String::from_utf8(buf.0.lock().expect("lock").clone()).expect("utf-8");
            if text.lines().count() == 2 {
                assert!(text
                    .lines()
                    .all(|l| l.contains("\"Environment\":\"staging\"")));
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "lines never arrived: {text}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
