//! The performance assumptions behind the model, parsed from the embedded
//! `data/assumptions.yaml`.
//!
//! Every number the model rests on (service times, ops/s per node, memory per
//! session, CPU per message, stream durations, token counts) lives in that one
//! file with its source and date, so a reviewer can check it and the runtime's
//! load benchmark can replace an estimate by a measurement without touching
//! code. The file is embedded with `include_str!` to keep sizing free of I/O.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::SizingError;

/// The embedded assumptions file.
pub const ASSUMPTIONS_YAML: &str = include_str!("../data/assumptions.yaml");

/// Where a figure comes from and when it was recorded.
pub trait Sourced {
    /// AWS documentation page, `benchmark: ...` or `estimate: ...`.
    fn source(&self) -> &str;
    /// ISO date (YYYY-MM-DD) the figure was recorded.
    fn date(&self) -> &str;
    /// What kind of source it is, from the source's prefix.
    fn kind(&self) -> SourceKind {
        SourceKind::of(self.source())
    }
}

/// The kind of a figure's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// Measured by one of this repository's benchmarks (`benchmark: ...`).
    Measured,
    /// Nobody has measured it yet (`estimate: ...`).
    Estimate,
    /// Read from published documentation or measurements.
    Published,
}

impl SourceKind {
    /// The kind of a source string (by its `benchmark:` / `estimate:` prefix).
    pub fn of(source: &str) -> SourceKind {
        if source.starts_with("benchmark:") {
            SourceKind::Measured
        } else if source.starts_with("estimate:") {
            SourceKind::Estimate
        } else {
            SourceKind::Published
        }
    }
}

macro_rules! sourced {
    ($($t:ty),* $(,)?) => {$(
        impl Sourced for $t {
            fn source(&self) -> &str { &self.source }
            fn date(&self) -> &str { &self.date }
        }
    )*};
}

/// One scalar assumption.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Figure {
    /// The number.
    pub value: f64,
    /// Its unit, for readers.
    pub unit: String,
    /// Where it comes from.
    pub source: String,
    /// When it was recorded.
    pub date: String,
}

impl Figure {
    /// The value, for terse use in formulas.
    pub fn v(&self) -> f64 {
        self.value
    }
}

/// Edge (CloudFront and ALB) figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeAssumptions {
    pub edge_p95_ms: Figure,
    pub stream_jitter_p95_ms: Figure,
    pub websocket_ping_interval_s: Figure,
}

/// ECS Fargate orchestrator figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrchestratorAssumptions {
    pub cpu_ms_per_message: Figure,
    /// Fargate vCPU-seconds per vCPU-second of the machine the benchmark ran on.
    pub bench_cpu_per_fargate_vcpu: Figure,
    pub scaling_target_utilisation: Figure,
    pub memory_baseline_mib: Figure,
    pub memory_per_session_mib: Figure,
    /// Sessions one task may hold under its open-file limit.
    pub session_file_descriptors: Figure,
    pub memory_ceiling: Figure,
    pub max_streams_per_task: Figure,
    pub min_task_cpu: Figure,
    pub max_task_cpu: Figure,
    pub auth_cpu_p95_ms: Figure,
    pub intent_rules_cpu_p95_ms: Figure,
    pub delivery_cpu_p95_ms: Figure,
    pub delivery_network_p95_ms: Figure,
    pub container_start_s: Figure,
    pub max_tasks_factor: Figure,
}

/// Services outside mangactl's sizing that sit on the critical path.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownstreamAssumptions {
    pub service_calls_p95_ms: Figure,
    pub guardrails_p95_ms: Figure,
}

/// An ElastiCache node type.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisNodeType {
    pub name: String,
    pub memory_gib: f64,
    pub ops_per_second: f64,
    pub burstable: bool,
    pub source: String,
    pub date: String,
}

/// ElastiCache Redis figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisAssumptions {
    pub get_p95_ms: Figure,
    pub reads_per_message: Figure,
    pub writes_per_miss: Figure,
    pub entry_bytes: Figure,
    pub ttl_s: Figure,
    pub session_state_bytes: Figure,
    pub reserved_memory_fraction: Figure,
    pub ops_ceiling: Figure,
    /// Ordered from smallest to largest; sizing picks the first that fits.
    pub node_types: Vec<RedisNodeType>,
}

/// DynamoDB figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamoDbAssumptions {
    pub read_p95_ms: Figure,
    pub item_kb: Figure,
    pub reads_per_message: Figure,
    pub writes_per_message: Figure,
    pub on_demand_table_limit_units_per_s: Figure,
    pub provisioned_target_utilisation: Figure,
}

/// A DAX node type.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaxNodeType {
    pub name: String,
    pub memory_gib: f64,
    /// Cache hits + 10 x misses + 25 x writes per second one node sustains.
    pub normalized_rps: f64,
    pub burstable: bool,
    pub source: String,
    pub date: String,
}

/// DAX figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaxAssumptions {
    pub hit_p95_ms: Figure,
    pub miss_overhead_ms: Figure,
    pub item_cache_hit_ratio: Figure,
    pub miss_cost_factor: Figure,
    pub write_cost_factor: Figure,
    /// GetItems of history turns per message after the session head's (in parallel).
    pub turn_reads_per_message: Figure,
    /// Strongly consistent reads per message (pass through to DynamoDB).
    pub consistent_reads_per_message: Figure,
    pub utilisation_ceiling: Figure,
    pub usable_memory_fraction: Figure,
    /// Ordered from smallest to largest.
    pub node_types: Vec<DaxNodeType>,
}

/// OpenSearch Serverless figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenSearchAssumptions {
    pub embedding_p95_ms: Figure,
    pub search_mean_ms: Figure,
    pub search_p95_ms: Figure,
    pub search_threads_per_ocu: Figure,
    /// Searches one retrieval sends (hybrid: BM25 and k-NN at once).
    pub searches_per_retrieval: Figure,
    pub utilisation_ceiling: Figure,
    pub max_ocu_factor: Figure,
    pub indexing_docs_per_s: Figure,
    pub indexing_docs_per_ocu_per_s: Figure,
}

/// A SageMaker instance type serving the intent model.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SageMakerInstanceType {
    pub name: String,
    /// Model workers (servers in the M/M/c model) per instance.
    pub workers: u32,
    pub service_mean_ms: f64,
    pub service_p95_ms: f64,
    pub burstable: bool,
    pub source: String,
    pub date: String,
}

/// SageMaker figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SageMakerAssumptions {
    pub invocation_overhead_p95_ms: Figure,
    pub utilisation_ceiling: Figure,
    pub max_instances_factor: Figure,
    /// Ordered from smallest to largest.
    pub instance_types: Vec<SageMakerInstanceType>,
}

/// Latency figures of one Bedrock model (public measurements).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BedrockModel {
    pub model_id: String,
    /// Median time to first token.
    pub first_token_median_ms: f64,
    /// 95th percentile time to first token.
    pub first_token_p95_ms: f64,
    /// Median output speed after the first token.
    pub output_tokens_per_s_median: f64,
    /// 5th-percentile output speed (the slow tail).
    pub output_tokens_per_s_p5: f64,
    /// How many tokens of quota one output token uses.
    pub output_burndown: f64,
    /// Whether Bedrock offers prompt caching for the model.
    pub prompt_caching: bool,
    /// Bedrock end-of-life date (YYYY-MM-DD), when known.
    #[serde(default)]
    pub end_of_life: Option<String>,
    /// Where the model may be invoked: the Regions that serve the base model
    /// id on demand in Region, and each cross-region inference profile
    /// (`us`, `jp`, `apac`, `eu`, `global`…: the id's prefix) with the source
    /// Regions that may call it. Sizing refuses a model id the environment's
    /// Region cannot invoke.
    pub availability: Availability,
    pub source: String,
    pub date: String,
}

/// Where a Bedrock model may be invoked from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Availability {
    /// Regions serving the base model id in Region.
    #[serde(default)]
    pub in_region: Vec<String>,
    /// Inference profile prefix → source Regions.
    #[serde(default)]
    pub profiles: std::collections::BTreeMap<String, Vec<String>>,
    pub source: String,
}

/// The prefixes of Bedrock's cross-region inference profile ids
/// (`us.anthropic.…`): Amazon Bedrock User Guide, "Supported Regions and
/// models for inference profiles"
/// (https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-support.html).
pub const PROFILE_PREFIXES: [&str; 8] = ["us", "us-gov", "eu", "apac", "jp", "au", "ca", "global"];

/// Splits an inference profile id into its prefix and the base model id;
/// a base model id has no prefix.
pub fn split_profile(model_id: &str) -> (Option<&str>, &str) {
    match model_id.split_once('.') {
        Some((p, rest)) if PROFILE_PREFIXES.contains(&p) => (Some(p), rest),
        _ => (None, model_id),
    }
}

/// z of the 95th percentile of the standard normal distribution (log-normal
/// fits from a median and a p95; the runtime's simulated profiles use it too).
pub const Z95: f64 = 1.644_853_626_951_472_2;

impl BedrockModel {
    /// Mean time to first token: the log-normal through the median and p95
    /// (mean = median × exp(σ²/2), σ = ln(p95 / median) / z95).
    pub fn first_token_mean_ms(&self) -> f64 {
        let sigma = (self.first_token_p95_ms / self.first_token_median_ms.max(1e-9))
            .ln()
            .max(0.0)
            / Z95;
        self.first_token_median_ms * (sigma * sigma / 2.0).exp()
    }

    /// Mean time from first to last token of `tokens` output tokens.
    pub fn stream_mean_ms(&self, tokens: f64) -> f64 {
        tokens / self.output_tokens_per_s_median.max(1e-9) * 1000.0
    }

    /// 95th percentile of the same: the answer at the 5th-percentile speed.
    pub fn stream_p95_ms(&self, tokens: f64) -> f64 {
        tokens / self.output_tokens_per_s_p5.max(1e-9) * 1000.0
    }

    /// Whether `model_id` (this model or one of its inference profiles) may
    /// be invoked from `region`; if not, why, with the ids that may.
    pub fn invocable_from(&self, model_id: &str, region: &str) -> Result<(), String> {
        let av = &self.availability;
        let ok = match split_profile(model_id).0 {
            None => av.in_region.iter().any(|r| r == region),
            Some(p) => av
                .profiles
                .get(p)
                .is_some_and(|from| from.iter().any(|r| r == region)),
        };
        if ok {
            return Ok(());
        }
        let mut could: Vec<String> = Vec::new();
        if av.in_region.iter().any(|r| r == region) {
            could.push(self.model_id.clone());
        }
        for (p, from) in &av.profiles {
            if from.iter().any(|r| r == region) {
                could.push(format!("{p}.{}", self.model_id));
            }
        }
        Err(format!(
            "`{model_id}` cannot be invoked from {region} ({}); {} ({})",
            match split_profile(model_id).0 {
                None => "the model is not served in that Region".to_owned(),
                Some(p) => format!("the `{p}` inference profile does not take requests from it"),
            },
            if could.is_empty() {
                "no id of this model can be".to_owned()
            } else {
                format!("from {region} use {}", could.join(" or "))
            },
            av.source
        ))
    }
}

/// One documented way to bring an LLM stage inside its budget.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remedy {
    /// The stage key it helps (`first_token`, `streaming`).
    pub stage: String,
    pub option: String,
    pub effect: String,
    pub source: String,
    pub date: String,
}

/// Bedrock figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BedrockAssumptions {
    pub models: Vec<BedrockModel>,
    pub remedies: Vec<Remedy>,
}

/// One response tier.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierProfile {
    pub input_tokens: f64,
    pub output_tokens: f64,
    pub retrieval_queries: f64,
    /// Whether the end-to-end p95 target covers this tier.
    pub within_end_to_end: bool,
    pub source: String,
    pub date: String,
}

impl TierProfile {
    /// Whether this tier calls the LLM at all.
    pub fn uses_llm(&self) -> bool {
        self.input_tokens + self.output_tokens > 0.0
    }
}

/// The four tiers of the seed's tier mix.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierProfiles {
    pub template: TierProfile,
    pub simple_llm: TierProfile,
    pub standard_llm: TierProfile,
    pub complex: TierProfile,
}

impl TierProfiles {
    /// The tiers in the order of the tier mix.
    pub fn all(&self) -> [&TierProfile; 4] {
        [
            &self.template,
            &self.simple_llm,
            &self.standard_llm,
            &self.complex,
        ]
    }
}

/// Timeout policy figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutAssumptions {
    pub safety_factor: Figure,
    pub health_check_interval_s: Figure,
    pub healthy_threshold: Figure,
    pub unhealthy_threshold: Figure,
}

/// Shapes of the stage latency distributions the end-to-end path composes
/// (`crate::path`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathAssumptions {
    /// σ of ln(latency) for stages known only by their p95.
    pub lognormal_sigma: Figure,
}

/// The whole assumptions file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assumptions {
    pub edge: EdgeAssumptions,
    pub orchestrator: OrchestratorAssumptions,
    pub downstream: DownstreamAssumptions,
    pub redis: RedisAssumptions,
    pub dynamodb: DynamoDbAssumptions,
    pub dax: DaxAssumptions,
    pub opensearch: OpenSearchAssumptions,
    pub sagemaker: SageMakerAssumptions,
    pub bedrock: BedrockAssumptions,
    pub tiers: TierProfiles,
    pub timeouts: TimeoutAssumptions,
    pub path: PathAssumptions,
    pub bill: BillAssumptions,
}

/// The day's load shape: 24 hourly values, each a share of the peak hour.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HourlyProfile {
    pub values: Vec<f64>,
    pub source: String,
    pub date: String,
}

/// What the monthly bill ([`crate::bill`]) needs beyond the capacity plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillAssumptions {
    pub hourly_profile: HourlyProfile,
    pub session_minutes: Figure,
    pub bytes_up_per_message: Figure,
    pub bytes_down_per_message: Figure,
    pub chars_per_token: Figure,
    pub log_bytes_per_message: Figure,
    pub custom_metrics: Figure,
    pub alarms: Figure,
}

sourced!(
    Remedy,
    Figure,
    RedisNodeType,
    DaxNodeType,
    SageMakerInstanceType,
    BedrockModel,
    TierProfile,
    HourlyProfile
);

impl Assumptions {
    /// Parses an assumptions document (the embedded one or a replacement).
    pub fn from_yaml(yaml: &str) -> Result<Self, SizingError> {
        serde_saphyr::from_str(yaml).map_err(|e| SizingError::Data {
            file: "assumptions.yaml",
            detail: e.to_string(),
        })
    }

    /// The embedded assumptions, parsed once.
    pub fn embedded() -> Result<&'static Assumptions, SizingError> {
        static PARSED: OnceLock<Result<Assumptions, SizingError>> = OnceLock::new();
        PARSED
            .get_or_init(|| Assumptions::from_yaml(ASSUMPTIONS_YAML))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The figures of a Bedrock model, by its id or an inference profile's
    /// (the profile's model: `us.anthropic.x` is `anthropic.x`'s).
    pub fn model(&self, model_id: &str) -> Result<&BedrockModel, SizingError> {
        let base = split_profile(model_id).1;
        self.bedrock
            .models
            .iter()
            .find(|m| m.model_id == base)
            .ok_or_else(|| SizingError::Data {
                file: "assumptions.yaml",
                detail: format!(
                    "no bedrock.models entry for `{model_id}` (known: {})",
                    self.bedrock
                        .models
                        .iter()
                        .map(|m| m.model_id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }

    /// Every entry with its dotted name, for provenance checks and reports.
    pub fn entries(&self) -> Vec<(String, &dyn Sourced)> {
        let mut out: Vec<(String, &dyn Sourced)> = Vec::new();
        macro_rules! figs {
            ($section:ident: $($field:ident),* $(,)?) => {$(
                out.push((
                    concat!(stringify!($section), ".", stringify!($field)).to_owned(),
                    &self.$section.$field as &dyn Sourced,
                ));
            )*};
        }
        figs!(edge: edge_p95_ms, stream_jitter_p95_ms, websocket_ping_interval_s);
        figs!(orchestrator: cpu_ms_per_message, bench_cpu_per_fargate_vcpu, scaling_target_utilisation, memory_baseline_mib,
            memory_per_session_mib, session_file_descriptors, memory_ceiling, max_streams_per_task, min_task_cpu,
            max_task_cpu, auth_cpu_p95_ms, intent_rules_cpu_p95_ms, delivery_cpu_p95_ms,
            delivery_network_p95_ms, container_start_s, max_tasks_factor);
        figs!(downstream: service_calls_p95_ms, guardrails_p95_ms);
        figs!(redis: get_p95_ms, reads_per_message, writes_per_miss, entry_bytes, ttl_s,
            session_state_bytes, reserved_memory_fraction, ops_ceiling);
        figs!(dynamodb: read_p95_ms, item_kb, reads_per_message, writes_per_message,
            on_demand_table_limit_units_per_s, provisioned_target_utilisation);
        figs!(dax: hit_p95_ms, miss_overhead_ms, item_cache_hit_ratio, miss_cost_factor,
            write_cost_factor, turn_reads_per_message, consistent_reads_per_message,
            utilisation_ceiling, usable_memory_fraction);
        figs!(opensearch: embedding_p95_ms, search_mean_ms, search_p95_ms,
            search_threads_per_ocu, searches_per_retrieval, utilisation_ceiling, max_ocu_factor, indexing_docs_per_s,
            indexing_docs_per_ocu_per_s);
        figs!(sagemaker: invocation_overhead_p95_ms, utilisation_ceiling, max_instances_factor);
        figs!(tiers: template, simple_llm, standard_llm, complex);
        figs!(timeouts: safety_factor, health_check_interval_s, healthy_threshold,
            unhealthy_threshold);
        figs!(path: lognormal_sigma);
        figs!(bill: hourly_profile, session_minutes, bytes_up_per_message, bytes_down_per_message,
            chars_per_token, log_bytes_per_message, custom_metrics, alarms);
        for n in &self.redis.node_types {
            out.push((format!("redis.node_types.{}", n.name), n));
        }
        for n in &self.dax.node_types {
            out.push((format!("dax.node_types.{}", n.name), n));
        }
        for n in &self.sagemaker.instance_types {
            out.push((format!("sagemaker.instance_types.{}", n.name), n));
        }
        for m in &self.bedrock.models {
            out.push((format!("bedrock.models.{}", m.model_id), m));
        }
        for (i, r) in self.bedrock.remedies.iter().enumerate() {
            out.push((format!("bedrock.remedies.{i}"), r));
        }
        out
    }

    /// The entries measured by this repository's benchmarks, by dotted name, and how
    /// many entries of each kind there are (what `mangactl size` reports).
    pub fn provenance(&self) -> Provenance {
        let entries = self.entries();
        let count = |k: SourceKind| entries.iter().filter(|(_, e)| e.kind() == k).count();
        Provenance {
            measured: entries
                .iter()
                .filter(|(_, e)| e.kind() == SourceKind::Measured)
                .map(|(name, e)| MeasuredFigure {
                    name: name.clone(),
                    source: e.source().to_owned(),
                    date: e.date().to_owned(),
                })
                .collect(),
            measured_count: count(SourceKind::Measured),
            published_count: count(SourceKind::Published),
            estimate_count: count(SourceKind::Estimate),
        }
    }
}

/// A figure measured by a benchmark of this repository.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeasuredFigure {
    pub name: String,
    pub source: String,
    pub date: String,
}

/// How the assumptions are sourced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Provenance {
    pub measured: Vec<MeasuredFigure>,
    pub measured_count: usize,
    pub published_count: usize,
    pub estimate_count: usize,
}

/// Whether `date` looks like an ISO date (YYYY-MM-DD).
pub fn is_iso_date(date: &str) -> bool {
    let b = date.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_assumptions_parse() {
        let a = Assumptions::embedded();
        assert!(a.is_ok(), "{a:?}");
    }

    #[test]
    fn every_assumption_has_source_and_date() {
        let a = Assumptions::embedded().expect("embedded assumptions parse");
        let entries = a.entries();
        assert!(entries.len() > 60, "only {} entries", entries.len());
        for (name, e) in entries {
            assert!(!e.source().trim().is_empty(), "{name} has no source");
            assert!(is_iso_date(e.date()), "{name} has date {:?}", e.date());
        }
    }

    #[test]
    fn node_tables_are_ordered_smallest_first() {
        let a = Assumptions::embedded().expect("embedded assumptions parse");
        assert!(a
            .redis
            .node_types
            .windows(2)
            .all(|w| w[0].memory_gib <= w[1].memory_gib));
        assert!(a
            .dax
            .node_types
            .windows(2)
            .all(|w| w[0].normalized_rps <= w[1].normalized_rps));
        assert!(a
            .sagemaker
            .instance_types
            .windows(2)
            .all(|w| w[0].workers <= w[1].workers));
    }

    #[test]
    fn unknown_model_is_a_data_error_naming_known_models() {
        let a = Assumptions::embedded().expect("embedded assumptions parse");
        let e = a.model("nope").expect_err("unknown model");
        assert!(e.to_string().contains("anthropic.claude-3-5-sonnet"));
    }
}
