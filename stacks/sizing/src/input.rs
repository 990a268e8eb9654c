//! Input to the sizing model: the `targets`, `llm` and `capacity` sections of
//! an environment file, as plain structs.
//!
//! Field names follow the environment YAML exactly so the mapping from the
//! validated environment is mechanical. The `capacity` section arrives here as
//! [`Overrides`]: every field is optional, and a value that is present wins
//! over the computed one.

use serde::{Deserialize, Serialize};

use crate::error::SizingError;
use crate::latency::LatencyBudgets;

/// Whether the environment named `name` is production (`prod` or
/// `production`, any case): the one production predicate of the workspace.
/// mangactl applies the production rules with it (environment validation,
/// sizing minimums, confirmations) and the runtime refuses `--auth off`.
pub fn is_production(name: &str) -> bool {
    matches!(name.to_ascii_lowercase().as_str(), "prod" | "production")
}

fn default_region() -> String {
    "us-east-1".into()
}

/// Everything the sizing model reads about one environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SizingInput {
    /// Environment name, used only in messages and the plan.
    pub env_name: String,
    /// Production ([`is_production`] of the name): override shortfalls are errors unless acknowledged, and
    /// multi-AZ minimums (three DAX nodes, two SageMaker instances) apply.
    pub is_production: bool,
    /// Number of Availability Zones the stacks spread over.
    pub az_count: u32,
    /// The AWS Region the sized resources run in (prices and model figures
    /// are per region).
    #[serde(default = "default_region")]
    pub region: String,
    /// Whether this environment must survive losing a node or an AZ (Redis
    /// replicas, one task per AZ, OpenSearch standby replicas, two DAX nodes).
    /// Always true in prod; set it for production-shaped environments such as
    /// staging. Not part of the environment file's `targets`; the caller
    /// derives it (for example from `protection.retain_data`).
    #[serde(default)]
    pub failover_required: bool,
    /// The `targets` section.
    pub targets: Targets,
    /// The `llm` section.
    pub llm: Llm,
    /// The `capacity` section: explicit capacities that win over sizing.
    #[serde(default, alias = "capacity")]
    pub overrides: Overrides,
    /// Resources (`service`, `redis`, `dax`, `dynamodb`, `opensearch`,
    /// `sagemaker`) whose under-sized override is accepted in prod.
    #[serde(default)]
    pub acknowledged_overrides: Vec<String>,
    /// Budget misses the environment accepts knowingly (`accepted_shortfalls`).
    #[serde(default)]
    pub accepted_shortfalls: Vec<AcceptedShortfall>,
}

/// A stage (or `end_to_end`) whose modelled p95 may exceed its budget, up to a
/// figure, because no documented configuration meets the target: the
/// environment file's `accepted_shortfalls`. Sizing reports the miss as a
/// warning instead of an error while the modelled p95 stays at or below
/// `up_to_ms`; beyond it, or for a stage not listed, the miss stops sizing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcceptedShortfall {
    /// The stage (`end_to_end` for the whole path; its figure is the
    /// modelled critical path, margin excluded).
    pub stage: crate::latency::Stage,
    /// The highest modelled p95 accepted, ms.
    pub up_to_ms: f64,
    /// Where the figure that misses comes from.
    pub source: String,
    /// Why it is accepted.
    pub reason: String,
}

impl SizingInput {
    /// Failover is required in prod and wherever the caller asked for it.
    pub fn requires_failover(&self) -> bool {
        self.is_production || self.failover_required
    }

    /// Whether the environment file accepted an under-sized override of `resource`.
    pub fn is_acknowledged(&self, resource: &str) -> bool {
        self.acknowledged_overrides.iter().any(|r| r == resource)
    }

    /// Rejects inputs the model cannot reason about (zero AZs, ratios outside
    /// 0..=1, a tier mix that does not sum to 100). Returns every problem.
    pub fn validate(&self) -> Vec<SizingError> {
        let mut errors = Vec::new();
        let mut bad = |field: &str, detail: String| {
            errors.push(SizingError::InvalidInput {
                field: field.to_owned(),
                detail,
            });
        };
        if self.az_count == 0 {
            bad("az_count", "must be at least 1".into());
        }
        let t = &self.targets.traffic;
        if t.concurrent_sessions == 0 {
            bad(
                "targets.traffic.concurrent_sessions",
                "must be at least 1".into(),
            );
        }
        if !(t.messages_per_session_per_minute.is_finite()
            && t.messages_per_session_per_minute > 0.0)
        {
            bad(
                "targets.traffic.messages_per_session_per_minute",
                format!(
                    "must be positive, got {}",
                    t.messages_per_session_per_minute
                ),
            );
        }
        if !(t.peak_factor.is_finite() && t.peak_factor >= 1.0) {
            bad(
                "targets.traffic.peak_factor",
                format!("must be at least 1, got {}", t.peak_factor),
            );
        }
        for (field, v) in [
            ("targets.traffic.cache_hit_ratio", t.cache_hit_ratio),
            (
                "targets.traffic.rules_confident_share",
                t.rules_confident_share,
            ),
        ] {
            if !(0.0..=1.0).contains(&v) {
                bad(field, format!("must be between 0 and 1, got {v}"));
            }
        }
        if let Some(tz) = &t.timezone {
            if let Err(why) = crate::schedule::check_timezone(tz) {
                bad("targets.traffic.timezone", why);
            }
        }
        let m = &self.targets.tier_mix;
        let parts = [m.template, m.simple_llm, m.standard_llm, m.complex];
        if parts.iter().any(|p| !(p.is_finite() && *p >= 0.0)) {
            bad(
                "targets.tier_mix",
                "every share must be a non-negative percentage".into(),
            );
        } else if (parts.iter().sum::<f64>() - 100.0).abs() > 1e-6 {
            bad(
                "targets.tier_mix",
                format!("shares must sum to 100, got {}", parts.iter().sum::<f64>()),
            );
        }
        let l = &self.targets.latency_ms;
        if l.margin >= l.end_to_end_p95 {
            bad(
                "targets.latency_ms.margin",
                format!(
                    "margin {} ms leaves nothing of end_to_end_p95 {} ms",
                    l.margin, l.end_to_end_p95
                ),
            );
        }
        if self.llm.tokens_per_minute_quota == 0 {
            bad("llm.tokens_per_minute_quota", "must be at least 1".into());
        }
        // A model other than `model_id` brings its own quotas, given once.
        let mut quoted: Vec<&str> = vec![self.llm.model_id.as_str()];
        for tier in LLM_TIERS {
            let Some(t) = self.llm.tiers.get(tier) else {
                continue;
            };
            let field = format!("llm.tiers.{tier}");
            if t.model_id.trim().is_empty() {
                bad(&field, "model_id must not be empty".into());
                continue;
            }
            let quotas =
                t.tokens_per_minute_quota.is_some() || t.requests_per_minute_quota.is_some();
            if quoted.contains(&t.model_id.as_str()) {
                if quotas {
                    bad(
                        &field,
                        format!(
                            "`{}` already has its quotas (llm or an earlier tier): quotas are per model, give them once",
                            t.model_id
                        ),
                    );
                }
            } else {
                match t.tokens_per_minute_quota {
                    None | Some(0) => bad(
                        &format!("{field}.tokens_per_minute_quota"),
                        format!(
                            "required (at least 1) for `{}`, a model other than llm.model_id: the account's quota for it",
                            t.model_id
                        ),
                    ),
                    Some(_) => {}
                }
                if t.requests_per_minute_quota == Some(0) {
                    bad(
                        &format!("{field}.requests_per_minute_quota"),
                        "must be at least 1".into(),
                    );
                }
                quoted.push(t.model_id.as_str());
            }
        }
        errors
    }
}

/// The `targets` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Targets {
    /// p95 budgets per stage, in milliseconds.
    pub latency_ms: LatencyBudgets,
    /// Traffic the environment must carry.
    pub traffic: Traffic,
    /// Share of messages per response tier, in percent.
    pub tier_mix: TierMix,
}

/// `targets.traffic`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Traffic {
    /// Concurrent sessions (open WebSocket connections) at peak.
    pub concurrent_sessions: u32,
    /// Messages each session sends per minute on average.
    pub messages_per_session_per_minute: f64,
    /// Peak message rate as a multiple of the average.
    pub peak_factor: f64,
    /// Share of response-cache lookups that hit.
    pub cache_hit_ratio: f64,
    /// Share of messages the intent rules settle without the ML model.
    pub rules_confident_share: f64,
    /// Load per hour of the day as a share of the peak hour (24 values);
    /// `None` takes the assumptions' default shape (`bill.hourly_profile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hourly_profile: Option<Vec<f64>>,
    /// The IANA time zone the profile's hours are in (`Asia/Tokyo`), and
    /// that scheduled minimum capacity runs in; `None` is UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

/// `targets.tier_mix`, in percent (sums to 100).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TierMix {
    /// Template or cached answers (no LLM call).
    pub template: f64,
    /// Short LLM answers.
    pub simple_llm: f64,
    /// RAG LLM answers.
    pub standard_llm: f64,
    /// Complex multi-turn answers.
    pub complex: f64,
}

/// The `llm` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Llm {
    /// Bedrock model id; must have an entry in the assumptions file.
    pub model_id: String,
    /// Account quota of tokens per minute for this model.
    pub tokens_per_minute_quota: u64,
    /// Account quota of requests per minute for this model, when known
    /// (preflight reads the account's; sizing warns when none is given).
    #[serde(default)]
    pub requests_per_minute_quota: Option<u64>,
    /// `maxTokens` of every request (the runtime's `MANGA_BEDROCK_MAX_TOKENS`):
    /// Bedrock reserves input + maxTokens of the quota when a request starts.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// Per-tier model choice (`llm.tiers`): a tier not listed answers with
    /// `model_id`. The runtime routes each tier to its model
    /// (`MANGA_BEDROCK_TIER_MODELS`), the task role may invoke exactly these
    /// models, and sizing and preflight check each model's quotas.
    #[serde(default, skip_serializing_if = "LlmTiers::is_empty")]
    pub tiers: LlmTiers,
}

/// `llm.tiers`: the model of each LLM tier that does not use `llm.model_id`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LlmTiers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simple_llm: Option<TierModel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standard_llm: Option<TierModel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complex: Option<TierModel>,
}

impl LlmTiers {
    /// Whether no tier has its own model.
    pub fn is_empty(&self) -> bool {
        self.simple_llm.is_none() && self.standard_llm.is_none() && self.complex.is_none()
    }

    /// The entry of an LLM tier by name.
    pub fn get(&self, tier: &str) -> Option<&TierModel> {
        match tier {
            "simple_llm" => self.simple_llm.as_ref(),
            "standard_llm" => self.standard_llm.as_ref(),
            "complex" => self.complex.as_ref(),
            _ => None,
        }
    }
}

/// One tier's model: a Bedrock model id or inference profile id (`us.`,
/// `jp.`, `global.`…), with the account's quotas for it when it is not
/// `llm.model_id` (quotas are per model, so a model two tiers share gives
/// them once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierModel {
    pub model_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute_quota: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute_quota: Option<u64>,
}

/// The LLM tiers, in the tier mix's order.
pub const LLM_TIERS: [&str; 3] = ["simple_llm", "standard_llm", "complex"];

/// One model the environment invokes, with the tiers that use it and its
/// quotas.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelChoice {
    pub model_id: String,
    pub tiers: Vec<&'static str>,
    pub tokens_per_minute_quota: u64,
    pub requests_per_minute_quota: Option<u64>,
}

impl Llm {
    /// The model an LLM tier answers with (`llm.tiers.<tier>` or `model_id`).
    pub fn model_for(&self, tier: &str) -> &str {
        self.tiers
            .get(tier)
            .map_or(self.model_id.as_str(), |t| t.model_id.as_str())
    }

    /// Every model the environment invokes, each once, `model_id` first
    /// (even when every tier has its own: it is the runtime's default),
    /// then in tier order, with its quotas.
    pub fn models(&self) -> Vec<ModelChoice> {
        let mut out = vec![ModelChoice {
            model_id: self.model_id.clone(),
            tiers: Vec::new(),
            tokens_per_minute_quota: self.tokens_per_minute_quota,
            requests_per_minute_quota: self.requests_per_minute_quota,
        }];
        for tier in LLM_TIERS {
            let id = self.model_for(tier);
            if let Some(m) = out.iter_mut().find(|m| m.model_id == id) {
                m.tiers.push(tier);
                continue;
            }
            let entry = self.tiers.get(tier);
            out.push(ModelChoice {
                model_id: id.to_owned(),
                tiers: vec![tier],
                tokens_per_minute_quota: entry.and_then(|e| e.tokens_per_minute_quota).unwrap_or(0),
                requests_per_minute_quota: entry.and_then(|e| e.requests_per_minute_quota),
            });
        }
        out
    }
}

/// The runtime's default `maxTokens`.
pub const DEFAULT_MAX_TOKENS: u32 = 400;

fn default_max_tokens() -> u32 {
    DEFAULT_MAX_TOKENS
}

/// The `capacity` section: explicit capacities, each field optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Overrides {
    /// ECS Fargate service.
    #[serde(default)]
    pub service: Option<ServiceOverride>,
    /// ElastiCache Redis.
    #[serde(default)]
    pub redis: Option<RedisOverride>,
    /// DynamoDB Accelerator.
    #[serde(default)]
    pub dax: Option<DaxOverride>,
    /// DynamoDB table.
    #[serde(default)]
    pub dynamodb: Option<DynamoDbOverride>,
    /// OpenSearch Serverless collection.
    #[serde(default)]
    pub opensearch: Option<OpenSearchOverride>,
    /// SageMaker intent endpoint.
    #[serde(default)]
    pub sagemaker: Option<SageMakerOverride>,
}

/// `capacity.service`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServiceOverride {
    /// Task CPU units (1024 = 1 vCPU).
    pub cpu: Option<u32>,
    /// Task memory in MiB.
    pub memory_mib: Option<u32>,
    /// Desired task count.
    pub tasks: Option<u32>,
    /// Autoscaling minimum.
    pub min_tasks: Option<u32>,
    /// Autoscaling maximum.
    pub max_tasks: Option<u32>,
}

/// `capacity.redis`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RedisOverride {
    /// ElastiCache node type.
    pub node_type: Option<String>,
    /// Shards (node groups).
    pub shards: Option<u32>,
    /// Replicas per shard.
    pub replicas_per_shard: Option<u32>,
}

/// `capacity.dax`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DaxOverride {
    /// DAX node type.
    pub node_type: Option<String>,
    /// Node count (1 primary plus read replicas).
    pub nodes: Option<u32>,
}

/// DynamoDB billing mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Billing {
    /// Pay per request.
    OnDemand,
    /// Provisioned read and write capacity units.
    Provisioned,
}

/// `capacity.dynamodb`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DynamoDbOverride {
    /// Billing mode.
    pub billing: Option<Billing>,
    /// Provisioned read capacity units.
    pub rcu: Option<u32>,
    /// Provisioned write capacity units.
    pub wcu: Option<u32>,
}

/// `capacity.opensearch`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OpenSearchOverride {
    /// Minimum search OCUs.
    pub search_ocu_min: Option<u32>,
    /// Maximum search OCUs.
    pub search_ocu_max: Option<u32>,
    /// Minimum indexing OCUs.
    pub indexing_ocu_min: Option<u32>,
    /// Maximum indexing OCUs.
    pub indexing_ocu_max: Option<u32>,
    /// Standby replicas in a second AZ.
    pub standby_replicas: Option<bool>,
}

/// `capacity.sagemaker`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SageMakerOverride {
    /// Instance type of the intent endpoint.
    pub instance_type: Option<String>,
    /// Instance count at peak.
    pub instances: Option<u32>,
    /// Autoscaling maximum.
    pub max_instances: Option<u32>,
}
