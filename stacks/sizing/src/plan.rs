//! The sizing plan: what `mangactl size` prints and the templates read.
//!
//! Typed fields per resource (`plan.service.tasks`, `plan.redis.node_type`,
//! ...) are what template code uses; [`SizingPlan::resource_rows`] flattens
//! them into one uniform row per resource for the table view.

use serde::Serialize;

use crate::budget::BudgetTable;
use crate::cost::CostSummary;
use crate::error::Warning;
use crate::rates::Rates;
use crate::resources::bedrock::BedrockPlan;
use crate::resources::dax::DaxPlan;
use crate::resources::dynamodb::DynamoDbPlan;
use crate::resources::opensearch::OpenSearchPlan;
use crate::resources::redis::RedisPlan;
use crate::resources::sagemaker::SageMakerPlan;
use crate::resources::service::ServicePlan;
use crate::resources::{Assessment, Binding};
use crate::timeouts::Timeouts;

/// Everything sizing computed for one environment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizingPlan {
    /// Environment name.
    pub env_name: String,
    /// Arrival rates the sizes derive from.
    pub rates: Rates,
    /// ECS Fargate orchestrator service.
    pub service: ServicePlan,
    /// ElastiCache Redis.
    pub redis: RedisPlan,
    /// DynamoDB Accelerator.
    pub dax: DaxPlan,
    /// DynamoDB table.
    pub dynamodb: DynamoDbPlan,
    /// OpenSearch Serverless collection.
    pub opensearch: OpenSearchPlan,
    /// SageMaker intent endpoint.
    pub sagemaker: SageMakerPlan,
    /// Bedrock usage against quota.
    pub bedrock: BedrockPlan,
    /// Scheduled minimum capacity per hour of the day ([`crate::schedule`]).
    pub schedule: crate::schedule::CapacitySchedule,
    /// Timeouts derived from the budgets.
    pub timeouts: Timeouts,
    /// Latency budget table.
    pub budget: BudgetTable,
    /// Non-fatal findings.
    pub warnings: Vec<Warning>,
    /// Monthly cost estimate.
    pub cost: CostSummary,
    /// The monthly bill over the day's traffic ([`crate::bill`]); `None`
    /// only when a price it needs is missing (an error says which).
    pub bill: Option<crate::bill::Bill>,
}

/// One resource as a uniform table row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceRow {
    /// Resource name as in the `capacity` section (`bedrock` for the LLM).
    pub resource: &'static str,
    /// The chosen size, for humans.
    pub size: String,
    /// The constraint that decided it.
    pub binding: Binding,
    /// Utilisation of the most loaded dimension at peak.
    pub utilisation_at_peak: f64,
    /// 1 − utilisation.
    pub headroom: f64,
    /// Estimated monthly cost, USD.
    pub monthly_cost_usd: f64,
    /// Whether an explicit capacity was used.
    pub overridden: bool,
    /// How the size was derived.
    pub notes: Vec<String>,
}

fn row(resource: &'static str, size: String, a: &Assessment) -> ResourceRow {
    ResourceRow {
        resource,
        size,
        binding: a.binding,
        utilisation_at_peak: a.utilisation_at_peak,
        headroom: a.headroom,
        monthly_cost_usd: a.monthly_cost_usd,
        overridden: a.overridden,
        notes: a.notes.clone(),
    }
}

fn gib(mib: u32) -> String {
    let g = f64::from(mib) / 1024.0;
    if (g - g.round()).abs() < 1e-9 {
        format!("{g:.0} GiB")
    } else {
        format!("{g:.1} GiB")
    }
}

fn vcpu(units: u32) -> String {
    let v = f64::from(units) / 1024.0;
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0} vCPU")
    } else {
        format!("{v} vCPU")
    }
}

impl SizingPlan {
    /// One row per resource, in a fixed order, for the `size` table.
    pub fn resource_rows(&self) -> Vec<ResourceRow> {
        let s = &self.service;
        let r = &self.redis;
        let d = &self.dax;
        let o = &self.opensearch;
        let m = &self.sagemaker;
        let b = &self.bedrock;
        vec![
            row(
                "service",
                format!(
                    "{} × {} / {} (min {}, max {}, CPU target {}%)",
                    s.tasks,
                    vcpu(s.cpu),
                    gib(s.memory_mib),
                    s.min_tasks,
                    s.max_tasks,
                    s.target_cpu_percent
                ),
                &s.assessment,
            ),
            row(
                "redis",
                format!(
                    "{} × {} shard(s) × {} replica(s) = {} nodes",
                    r.node_type, r.shards, r.replicas_per_shard, r.nodes
                ),
                &r.assessment,
            ),
            row(
                "dax",
                if d.enabled {
                    format!("{} × {}", d.nodes, d.node_type)
                } else {
                    "not deployed".to_owned()
                },
                &d.assessment,
            ),
            row(
                "dynamodb",
                match self.dynamodb.billing {
                    crate::input::Billing::OnDemand => "on-demand".to_owned(),
                    crate::input::Billing::Provisioned => format!(
                        "provisioned {} RCU / {} WCU",
                        self.dynamodb.rcu, self.dynamodb.wcu
                    ),
                },
                &self.dynamodb.assessment,
            ),
            row(
                "opensearch",
                format!(
                    "search {}-{} OCU, indexing {}-{} OCU{}",
                    o.search_ocu_min,
                    o.search_ocu_max,
                    o.indexing_ocu_min,
                    o.indexing_ocu_max,
                    if o.standby_replicas { ", standby" } else { "" }
                ),
                &o.assessment,
            ),
            row(
                "sagemaker",
                format!(
                    "{} × {} (min {}, max {}, target {}/instance/min)",
                    m.instances,
                    m.instance_type,
                    m.min_instances,
                    m.max_instances,
                    m.target_invocations_per_instance
                ),
                &m.assessment,
            ),
            row(
                "bedrock",
                b.models
                    .iter()
                    .map(|m| {
                        format!(
                            "{}: {:.0} reserved of {} tokens/min, {:.0} requests/min",
                            m.model_id,
                            m.reserved_tokens_per_minute,
                            m.tokens_per_minute_quota,
                            m.requests_per_minute
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                &b.assessment,
            ),
        ]
    }

    /// A one-line summary for `mangactl render`.
    pub fn summary_line(&self) -> String {
        let s = &self.service;
        let dax = if self.dax.enabled {
            format!("dax {}×{}", self.dax.nodes, self.dax.node_type)
        } else {
            "no dax".to_owned()
        };
        format!(
            "sizing {}: service {}×{}/{}, redis {} {}×{}, {}, sagemaker {}×{}, opensearch {}+{} OCU; budget {} ({} ms slack); ~${:.0}/month capacity + ${:.0}/month usage",
            self.env_name,
            s.tasks,
            vcpu(s.cpu),
            gib(s.memory_mib),
            self.redis.node_type,
            self.redis.shards,
            1 + self.redis.replicas_per_shard,
            dax,
            self.sagemaker.instances,
            self.sagemaker.instance_type,
            self.opensearch.search_ocu_min,
            self.opensearch.indexing_ocu_min,
            // A plan is only returned when every miss is accepted
            // (`accepted_shortfalls`); the warnings say which.
            if self.budget.passes {
                "passes"
            } else {
                "misses within accepted shortfalls"
            },
            self.budget.slack_ms,
            self.cost.capacity_monthly_usd,
            self.cost.usage_monthly_usd
        )
    }
}
