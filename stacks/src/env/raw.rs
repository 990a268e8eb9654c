//! Phase one of reading an environment file: the YAML shape, exactly.
//!
//! Every struct denies unknown fields and every leaf is `Spanned`, so the
//! second phase ([`super::validate`]) can point at the line and column of
//! any value it rejects. Nothing here checks meaning; that is phase two.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnvironment {
    pub name: S<String>,
    pub region: S<String>,
    pub account_id: Option<S<String>>,
    pub az_count: S<u32>,
    pub image: S<String>,
    pub domain: Option<S<RawDomain>>,
    pub edge: Option<S<RawEdge>>,
    #[serde(default)]
    pub tags: BTreeMap<String, S<String>>,
    pub protection: S<RawProtection>,
    pub llm: S<RawLlm>,
    pub auth: S<RawAuth>,
    pub intent_model: S<RawIntentModel>,
    pub targets: S<RawTargets>,
    pub capacity: Option<S<RawCapacity>>,
    pub drift: Option<S<RawDrift>>,
    pub origin_secret: Option<S<RawOriginSecret>>,
    pub alerts: Option<S<RawAlerts>>,
    #[serde(default)]
    pub accepted_shortfalls: Vec<S<RawAcceptedShortfall>>,
}

/// `alerts`: who is told when an alarm fires or clears.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    #[serde(default)]
    pub email: Vec<S<String>>,
    #[serde(default)]
    pub https: Vec<S<String>>,
    #[serde(default)]
    pub sns_topic_arns: Vec<S<String>>,
}

/// `origin_secret`: which version of the CloudFront-to-ALB origin secret
/// the templates read, and whether the ALB still accepts the previous value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOriginSecret {
    pub version_id: Option<S<String>>,
    pub accept_previous: Option<S<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDrift {
    #[serde(default)]
    pub accept: Vec<S<RawAccepted>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccepted {
    pub stack: S<String>,
    pub logical_id: S<String>,
    pub path: Option<S<String>>,
    pub reason: S<String>,
    pub expires: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDomain {
    pub name: S<String>,
    pub certificate_arn: S<String>,
    pub edge_certificate_arn: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEdge {
    pub customers: Vec<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProtection {
    pub termination_protection: S<bool>,
    pub retain_data: S<bool>,
    pub failover: S<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLlm {
    pub model_id: S<String>,
    pub tokens_per_minute_quota: S<u64>,
    pub requests_per_minute_quota: Option<S<u64>>,
    pub max_tokens: Option<S<u32>>,
    pub tiers: Option<S<RawLlmTiers>>,
}

/// `llm.tiers`: a model per LLM tier (each optional).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLlmTiers {
    pub simple_llm: Option<S<RawTierModel>>,
    pub standard_llm: Option<S<RawTierModel>>,
    pub complex: Option<S<RawTierModel>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTierModel {
    pub model_id: S<String>,
    pub tokens_per_minute_quota: Option<S<u64>>,
    pub requests_per_minute_quota: Option<S<u64>>,
}

/// One entry of `accepted_shortfalls`: a budget miss accepted knowingly.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAcceptedShortfall {
    pub stage: S<String>,
    pub up_to_ms: S<f64>,
    pub source: S<String>,
    pub reason: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub jwks_url: S<String>,
    pub issuer: S<String>,
    pub audience: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIntentModel {
    pub image: S<String>,
    pub model_data_url: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTargets {
    pub latency_ms: S<RawLatency>,
    pub traffic: S<RawTraffic>,
    pub tier_mix: S<RawTierMix>,
}

/// `targets.latency_ms`: the sizing crate's one budget type, every value spanned.
pub type RawLatency = sizing::LatencyBudgets<S<u32>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTraffic {
    pub concurrent_sessions: S<u32>,
    pub messages_per_session_per_minute: S<f64>,
    pub peak_factor: S<f64>,
    pub cache_hit_ratio: S<f64>,
    pub rules_confident_share: S<f64>,
    /// 24 values, the load of each hour of the day relative to the others.
    #[serde(default)]
    pub hourly_profile: Option<S<Vec<S<f64>>>>,
    /// IANA time zone of the profile's hours and of the scheduled minimum
    /// capacity; UTC when absent.
    #[serde(default)]
    pub timezone: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTierMix {
    pub template: S<u32>,
    pub simple_llm: S<u32>,
    pub standard_llm: S<u32>,
    pub complex: S<u32>,
}

/// Explicit capacities: every field optional, each one overriding what
/// sizing computes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCapacity {
    pub service: Option<S<RawService>>,
    pub redis: Option<S<RawRedis>>,
    pub dax: Option<S<RawDax>>,
    pub dynamodb: Option<S<RawDynamo>>,
    pub opensearch: Option<S<RawOpenSearch>>,
    pub sagemaker: Option<S<RawSageMaker>>,
    /// Resources whose override may fall short of its target in prod.
    #[serde(default)]
    pub acknowledged_overrides: Vec<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    pub cpu: Option<S<u32>>,
    pub memory_mib: Option<S<u32>>,
    pub tasks: Option<S<u32>>,
    pub min_tasks: Option<S<u32>>,
    pub max_tasks: Option<S<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedis {
    pub node_type: Option<S<String>>,
    pub shards: Option<S<u32>>,
    pub replicas_per_shard: Option<S<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDax {
    pub node_type: Option<S<String>>,
    pub nodes: Option<S<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDynamo {
    pub billing: Option<S<String>>,
    pub rcu: Option<S<u32>>,
    pub wcu: Option<S<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOpenSearch {
    pub search_ocu_min: Option<S<u32>>,
    pub search_ocu_max: Option<S<u32>>,
    pub indexing_ocu_min: Option<S<u32>>,
    pub indexing_ocu_max: Option<S<u32>>,
    pub standby_replicas: Option<S<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSageMaker {
    pub instance_type: Option<S<String>>,
    pub instances: Option<S<u32>>,
    pub max_instances: Option<S<u32>>,
}
