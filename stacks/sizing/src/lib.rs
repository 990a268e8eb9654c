//! Capacity sizing for MangaAssist: every capacity derived from latency and
//! traffic targets, with the reason for each, and a latency budget check that
//! refuses targets that cannot be met.
//!
//! The crate is pure: no I/O, no clocks, no randomness. Its data (performance
//! assumptions and prices) is embedded from `data/` at compile time, and the
//! same input always yields the same plan.
//!
//! The model, in order:
//! 1. [`rates`]: arrival rates at peak from sessions × messages/min × peak
//!    factor, split by the tier mix; streams in flight by Little's law.
//! 2. [`resources`]: each resource sized to its binding constraint; pooled
//!    resources use Erlang C ([`erlang`]) to fit their stage's p95 budget.
//! 3. [`budget`]: each stage's modelled p95 against its budget, and the
//!    critical path plus margin against the end-to-end p95.
//! 4. [`timeouts`] and [`cost`]: derived timeouts and a monthly estimate.
//!
//! Explicit capacities from the environment file win over computed ones;
//! sizing reports when one cannot meet its target (a warning outside prod,
//! an error in prod unless acknowledged).
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let input: sizing::SizingInput = serde_saphyr::from_str(r#"
//! # env_name: demo
//! # is_production: false
//! # az_count: 2
//! # llm: { model_id: "anthropic.claude-3-5-sonnet-20240620-v1:0", tokens_per_minute_quota: 200000 }
//! # targets:
//! #   latency_ms: { end_to_end_p95: 5000, margin: 200, edge: 30, auth: 20, memory_read: 10,
//! #     intent_rules: 50, intent_ml: 150, cache_hit: 2, service_calls: 200, retrieval: 200,
//! #     first_token: 1500, streaming: 2100, guardrails: 50, delivery: 50, stream_jitter: 50 }
//! #   traffic: { concurrent_sessions: 50, messages_per_session_per_minute: 2, peak_factor: 1.0,
//! #     cache_hit_ratio: 0.35, rules_confident_share: 0.6 }
//! #   tier_mix: { template: 35, simple_llm: 25, standard_llm: 30, complex: 10 }
//! # "#)?;
//! let plan = sizing::size(&input)?;
//! assert!(plan.budget.passes);
//! println!("{} tasks of {} CPU", plan.service.tasks, plan.service.cpu);
//! # Ok(())
//! # }
//! ```

pub mod assumptions;
pub mod budget;
pub mod cost;
pub mod erlang;
pub mod error;
pub mod input;
pub mod latency;
pub mod plan;
pub mod rates;
pub mod resources;
pub mod timeouts;

pub use assumptions::Assumptions;
pub use budget::{BudgetRow, BudgetTable};
pub use cost::{CostSummary, Prices};
pub use error::{SizingError, SizingErrors, Warning};
pub use input::{
    is_production, AcceptedShortfall, Billing, DaxOverride, DynamoDbOverride, Llm,
    OpenSearchOverride, Overrides, RedisOverride, SageMakerOverride, ServiceOverride, SizingInput,
    Targets, TierMix, Traffic,
};
pub use latency::{LatencyBudgets, Stage};
pub use plan::{ResourceRow, SizingPlan};
pub use rates::{PerTier, Rates};
pub use resources::bedrock::BedrockPlan;
pub use resources::dax::DaxPlan;
pub use resources::dynamodb::DynamoDbPlan;
pub use resources::opensearch::OpenSearchPlan;
pub use resources::redis::RedisPlan;
pub use resources::sagemaker::SageMakerPlan;
pub use resources::service::{ServicePlan, TaskRequirements};
pub use resources::{Assessment, Binding};
pub use timeouts::Timeouts;

use std::collections::BTreeMap;

use budget::Modelled;
use error::Findings;
use resources::service::{cpu_stage_p95, cpu_stages};
use resources::{round_ms, Ctx};

/// Sizes an environment with the embedded assumptions and prices.
///
/// Returns the plan, or every error at once. Budget failures and prod
/// override errors still come with the computed plan in
/// [`SizingErrors::plan`] so the caller can show the tables next to them.
pub fn size(input: &SizingInput) -> Result<SizingPlan, SizingErrors> {
    let data = Assumptions::embedded().and_then(|a| Prices::embedded().map(|p| (a, p)));
    match data {
        Ok((a, p)) => size_with(input, a, p),
        Err(e) => Err(SizingErrors {
            errors: vec![e],
            plan: None,
        }),
    }
}

/// Sizes an environment with explicit assumptions and prices (for what-if
/// analysis and tests).
pub fn size_with(
    input: &SizingInput,
    assumptions: &Assumptions,
    prices: &Prices,
) -> Result<SizingPlan, SizingErrors> {
    let invalid = input.validate();
    if !invalid.is_empty() {
        return Err(SizingErrors {
            errors: invalid,
            plan: None,
        });
    }
    let model = assumptions
        .model(&input.llm.model_id)
        .map_err(|e| SizingErrors {
            errors: vec![e],
            plan: None,
        })?;
    let rates = rates::arrival_rates(input, assumptions, model);
    let ctx = Ctx {
        input,
        a: assumptions,
        prices,
        rates: &rates,
        model,
    };
    let mut findings = Findings::default();
    if prices.region != input.region {
        // The price table is one region's; say so rather than price
        // another region silently.
        findings.warn(
            "cost",
            format!(
                "prices are {}'s (stacks/sizing/data/prices.yaml has no {} prices); the monthly cost is estimated at them",
                prices.region, input.region
            ),
        );
    }

    let service = resources::service::size(&ctx, &mut findings);
    let redis = resources::redis::size(&ctx, &mut findings);
    let dax = resources::dax::size(&ctx, &mut findings);
    let dynamodb = resources::dynamodb::size(&ctx, dax.enabled, &mut findings);
    let opensearch = resources::opensearch::size(&ctx, &mut findings);
    let sagemaker = resources::sagemaker::size(&ctx, &mut findings);
    let bedrock = resources::bedrock::size(&ctx, &mut findings);

    let modelled = modelled_stages(&ctx, &service, &redis, &dax, &opensearch, &sagemaker);
    let ml_share = 1.0 - input.targets.traffic.rules_confident_share;
    let (budget, budget_errors) = budget::check(&input.targets.latency_ms, &modelled, ml_share);
    accept_shortfalls(input, budget_errors, &mut findings);
    remedies(ctx.a, &budget, &mut findings);

    let timeouts = timeouts::derive(&ctx, &budget, &mut findings);

    let mut by_resource = BTreeMap::new();
    let mut capacity = 0.0;
    let mut usage = 0.0;
    for (name, a, is_usage) in [
        ("service", &service.assessment, false),
        ("redis", &redis.assessment, false),
        ("dax", &dax.assessment, false),
        (
            "dynamodb",
            &dynamodb.assessment,
            dynamodb.billing == Billing::OnDemand,
        ),
        ("opensearch", &opensearch.assessment, false),
        ("sagemaker", &sagemaker.assessment, false),
        ("bedrock", &bedrock.assessment, true),
    ] {
        by_resource.insert(name.to_owned(), a.monthly_cost_usd);
        if is_usage {
            usage += a.monthly_cost_usd;
        } else {
            capacity += a.monthly_cost_usd;
        }
    }
    let cost = CostSummary {
        capacity_monthly_usd: cost::round_cents(capacity),
        usage_monthly_usd: cost::round_cents(usage),
        total_monthly_usd: cost::round_cents(capacity + usage),
        by_resource,
    };

    let plan = SizingPlan {
        env_name: input.env_name.clone(),
        rates,
        service,
        redis,
        dax,
        dynamodb,
        opensearch,
        sagemaker,
        bedrock,
        timeouts,
        budget,
        warnings: findings.warnings,
        cost,
    };
    if findings.errors.is_empty() {
        Ok(plan)
    } else {
        Err(SizingErrors {
            errors: findings.errors,
            plan: Some(Box::new(plan)),
        })
    }
}

/// Budget misses against the environment's `accepted_shortfalls`: a listed
/// stage whose modelled p95 stays within its accepted figure becomes a
/// warning that names the reason and source; anything else stays an error.
/// An acceptance no miss needs any more is a warning too (remove it).
fn accept_shortfalls(input: &SizingInput, errors: Vec<SizingError>, findings: &mut Findings) {
    let mut used = vec![false; input.accepted_shortfalls.len()];
    for e in errors {
        let (stage, modelled) = match &e {
            SizingError::StageOverBudget {
                stage, modelled_ms, ..
            } => (*stage, *modelled_ms),
            SizingError::EndToEndOverBudget { modelled_ms, .. } => (Stage::EndToEnd, *modelled_ms),
            _ => {
                findings.errors.push(e);
                continue;
            }
        };
        match input
            .accepted_shortfalls
            .iter()
            .position(|a| a.stage == stage)
        {
            Some(i) if modelled <= input.accepted_shortfalls[i].up_to_ms + 1e-9 => {
                used[i] = true;
                let a = &input.accepted_shortfalls[i];
                findings.warn(
                    "budget",
                    format!(
                        "{e} (accepted up to {} ms: {}; source: {})",
                        error::fmt_ms(a.up_to_ms),
                        a.reason,
                        a.source
                    ),
                );
            }
            Some(i) => {
                used[i] = true;
                let a = &input.accepted_shortfalls[i];
                findings.errors.push(SizingError::ShortfallBeyondAccepted {
                    detail: e.to_string(),
                    stage,
                    accepted_ms: a.up_to_ms,
                });
            }
            None => findings.errors.push(e),
        }
    }
    for (a, used) in input.accepted_shortfalls.iter().zip(used) {
        if !used {
            findings.warn(
                "budget",
                format!(
                    "accepted shortfall for `{}` is not needed: the stage meets its budget; remove it from accepted_shortfalls",
                    a.stage.key()
                ),
            );
        }
    }
}

/// For an LLM stage over its budget, the documented options that would bring it
/// in (`bedrock.remedies` of the assumptions), as warnings after the miss.
fn remedies(a: &Assumptions, budget: &budget::BudgetTable, findings: &mut Findings) {
    for row in budget.rows.iter().filter(|r| r.slack_ms < 0.0) {
        for r in a
            .bedrock
            .remedies
            .iter()
            .filter(|r| r.stage == row.stage.key())
        {
            findings.warn(
                "budget",
                format!(
                    "`{}` over budget; would help: {} ({}; source: {})",
                    row.stage.key(),
                    r.option,
                    r.effect,
                    r.source
                ),
            );
        }
    }
}

/// Modelled p95 of every stage from the sized resources and assumptions.
fn modelled_stages(
    ctx: &Ctx<'_>,
    service: &ServicePlan,
    redis: &RedisPlan,
    dax: &DaxPlan,
    opensearch: &OpenSearchPlan,
    sagemaker: &SageMakerPlan,
) -> Modelled {
    let a = ctx.a;
    let rho = service.cpu_utilisation_at_peak;
    let mut values = vec![
        (
            Stage::Edge,
            a.edge.edge_p95_ms.v(),
            "assumption edge.edge_p95_ms".to_owned(),
        ),
        (
            Stage::MemoryRead,
            dax.modelled_p95_ms,
            if dax.enabled {
                format!("DAX {} × {} (hit p95 + wait)", dax.nodes, dax.node_type)
            } else {
                "DynamoDB p95 (no DAX)".to_owned()
            },
        ),
        (
            Stage::IntentMl,
            sagemaker.modelled_p95_ms,
            format!(
                "SageMaker {} × {}: overhead + inference p95 + Erlang C wait",
                sagemaker.instances, sagemaker.instance_type
            ),
        ),
        (
            Stage::CacheHit,
            redis.modelled_p95_ms,
            format!("Redis {} GET p95 + M/M/1 wait", redis.node_type),
        ),
        (
            Stage::ServiceCalls,
            a.downstream.service_calls_p95_ms.v(),
            "assumption downstream.service_calls_p95_ms".to_owned(),
        ),
        (
            Stage::Retrieval,
            opensearch.modelled_p95_ms,
            format!(
                "embedding + search p95 + Erlang C wait on {} OCUs",
                opensearch.search_ocu_min
            ),
        ),
        (
            Stage::FirstToken,
            ctx.model.first_token_p95_ms,
            format!("public measurement of {}", ctx.model.model_id),
        ),
        (
            Stage::Streaming,
            a.tiers
                .all()
                .iter()
                .filter(|t| t.uses_llm() && t.within_end_to_end)
                .map(|t| ctx.model.stream_p95_ms(t.output_tokens))
                .fold(0.0_f64, f64::max),
            format!(
                "longest stream p95 of the tiers the end-to-end target covers: output tokens at {} tokens/s (the model's 5th-percentile speed)",
                ctx.model.output_tokens_per_s_p5
            ),
        ),
        (
            Stage::Guardrails,
            a.downstream.guardrails_p95_ms.v(),
            "assumption downstream.guardrails_p95_ms".to_owned(),
        ),
        (
            Stage::StreamJitter,
            a.edge.stream_jitter_p95_ms.v(),
            "assumption edge.stream_jitter_p95_ms".to_owned(),
        ),
    ];
    for (stage, fixed, cpu, _) in cpu_stages(ctx) {
        values.push((
            stage,
            round_ms(cpu_stage_p95(fixed, cpu, rho)),
            format!(
                "{fixed} ms + {cpu} ms CPU / (1 − {:.0}% utilisation)",
                rho * 100.0
            ),
        ));
    }
    values.sort_by_key(|(s, _, _)| *s);
    Modelled { values }
}
