//! Capacity sizing for MangaAssist: every capacity derived from latency and
//! traffic targets, with the reason for each, and a latency budget check that
//! refuses targets that cannot be met.
//!
//! The crate is pure: no I/O, no clocks, no entropy (the path's Monte Carlo
//! draws from a fixed seed). Its data (performance
//! assumptions and prices) is embedded from `data/` at compile time, and the
//! same input always yields the same plan.
//!
//! The model, in order:
//! 1. [`rates`]: arrival rates at peak from sessions × messages/min × peak
//!    factor, split by the tier mix; streams in flight by Little's law.
//! 2. [`resources`]: each resource sized to its binding constraint; pooled
//!    resources use Erlang C ([`erlang`], with the Allen–Cunneen M/G/c
//!    correction where service times are not exponential) to fit their
//!    stage's p95 budget.
//! 3. [`path`] and [`budget`]: each stage as a latency distribution; each
//!    stage's p95 against its budget, and the p95 of the whole path (composed
//!    by a seeded Monte Carlo, parallel stages as a max, rare branches as
//!    mixtures) plus margin against the end-to-end p95.
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
//! #     first_token: 1700, streaming: 2100, guardrails: 50, delivery: 50, stream_jitter: 50 }
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
pub mod bill;
pub mod budget;
pub mod cost;
pub mod erlang;
pub mod error;
pub mod explore;
pub mod input;
pub mod latency;
pub mod path;
pub mod plan;
pub mod rates;
pub mod resources;
pub mod schedule;
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
use path::Dist;
use resources::service::{cpu_stage_dist, cpu_stages};
use resources::Ctx;

/// Sizes an environment with the embedded assumptions and prices.
///
/// Returns the plan, or every error at once. Budget failures and prod
/// override errors still come with the computed plan in
/// [`SizingErrors::plan`] so the caller can show the tables next to them.
pub fn size(input: &SizingInput) -> Result<SizingPlan, SizingErrors> {
    // The region's price table, or the fallback's (size_with warns).
    let data =
        Assumptions::embedded().and_then(|a| Prices::embedded_for(&input.region).map(|p| (a, p)));
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
    let tier_models =
        tier_models(input, assumptions).map_err(|errors| SizingErrors { errors, plan: None })?;
    let rates = rates::arrival_rates(input, assumptions, &tier_models);
    let ctx = Ctx {
        input,
        a: assumptions,
        prices,
        rates: &rates,
        tier_models,
    };
    let mut findings = Findings::default();
    // Another region's table, or stand-in entries: say so rather than
    // price the region silently.
    for w in prices.region_warnings(&input.region) {
        findings.warn("cost", w);
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

    let schedule = schedule::plan(
        input.targets.traffic.timezone.as_deref(),
        &bill::hourly_load(input, assumptions).0,
        (service.min_tasks, service.tasks),
        (sagemaker.min_instances, sagemaker.instances),
    );
    let mut plan = SizingPlan {
        env_name: input.env_name.clone(),
        rates,
        service,
        redis,
        dax,
        dynamodb,
        opensearch,
        sagemaker,
        bedrock,
        schedule,
        timeouts,
        budget,
        warnings: Vec::new(),
        cost,
        bill: None,
    };
    match bill::monthly_bill(input, assumptions, prices, &plan) {
        Ok(b) => {
            profile_warning(input, &b, &mut findings);
            plan.bill = Some(b);
        }
        Err(e) => findings.errors.push(e),
    }
    plan.warnings = findings.warnings;
    if findings.errors.is_empty() {
        Ok(plan)
    } else {
        Err(SizingErrors {
            errors: findings.errors,
            plan: Some(Box::new(plan)),
        })
    }
}

/// The hourly profile against `peak_factor`: both say how far the peak is
/// above the day's mean, and a bill from one with capacity from the other
/// would not add up.
fn profile_warning(input: &SizingInput, bill: &bill::Bill, findings: &mut Findings) {
    let n = bill.hourly_load.len().max(1) as f64;
    let mean = bill.hourly_load.iter().sum::<f64>() / n;
    if mean <= 0.0 {
        return;
    }
    let implied = 1.0 / mean;
    let pf = input.targets.traffic.peak_factor;
    if (implied / pf - 1.0).abs() > 0.1 {
        findings.warn(
            "bill",
            format!(
                "the hourly profile puts the peak at {implied:.2}× the day's mean but peak_factor is {pf}: capacity is sized for peak_factor, the bill follows the profile"
            ),
        );
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

/// The Bedrock model of each tier, in the tier mix's order (the template
/// tier, which calls no model, gets `llm.model_id`'s): each id must have
/// figures in the assumptions and be invocable from the environment's
/// Region (in Region, or through an inference profile that takes requests
/// from it).
fn tier_models<'a>(
    input: &SizingInput,
    a: &'a Assumptions,
) -> Result<[&'a assumptions::BedrockModel; 4], Vec<SizingError>> {
    let mut errors = Vec::new();
    let mut resolve = |field: String, id: &str| match a.model(id) {
        Ok(m) => {
            if let Err(detail) = m.invocable_from(id, &input.region) {
                errors.push(SizingError::InvalidInput { field, detail });
            }
            Some(m)
        }
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let default = resolve("llm.model_id".into(), &input.llm.model_id);
    let mut out = [default; 4];
    for (i, tier) in input::LLM_TIERS.into_iter().enumerate() {
        if let Some(t) = input.llm.tiers.get(tier) {
            out[i + 1] = resolve(format!("llm.tiers.{tier}.model_id"), &t.model_id);
        }
    }
    match out {
        [Some(a), Some(b), Some(c), Some(d)] if errors.is_empty() => Ok([a, b, c, d]),
        _ => Err(errors),
    }
}

/// The latency distribution of every stage from the sized resources and
/// assumptions ([`path::Dist`]); the budget table takes each stage's p95 and
/// the end-to-end p95 from them.
fn modelled_stages(
    ctx: &Ctx<'_>,
    service: &ServicePlan,
    redis: &RedisPlan,
    dax: &DaxPlan,
    opensearch: &OpenSearchPlan,
    sagemaker: &SageMakerPlan,
) -> Modelled {
    let a = ctx.a;
    let sigma = a.path.lognormal_sigma.v();
    let by_p95 = |p95: f64| Dist::lognormal_p95_sigma(p95, sigma);
    let rho = service.cpu_utilisation_at_peak;
    let mix = &ctx.input.targets.tier_mix;
    let shares = [mix.template, mix.simple_llm, mix.standard_llm, mix.complex];
    let names = ["template", "simple_llm", "standard_llm", "complex"];
    // Each LLM tier's first token and stream, from its own model.
    let llm_dists = |i: usize| {
        let t = a.tiers.all()[i];
        let m = ctx.tier_models[i];
        t.uses_llm().then(|| {
            (
                Dist::lognormal_mean_p95(m.first_token_mean_ms(), m.first_token_p95_ms),
                Dist::lognormal_mean_p95(
                    m.stream_mean_ms(t.output_tokens),
                    m.stream_p95_ms(t.output_tokens),
                ),
            )
        })
    };
    // The stage rows and the critical path take the slowest tier the
    // end-to-end target covers: the largest first-token plus stream p95.
    let critical = (0..4)
        .filter(|i| {
            let t = a.tiers.all()[*i];
            t.uses_llm() && t.within_end_to_end
        })
        .map(|i| {
            let t = a.tiers.all()[i];
            let m = ctx.tier_models[i];
            (i, m.first_token_p95_ms + m.stream_p95_ms(t.output_tokens))
        })
        .fold(None::<(usize, f64)>, |best, (i, v)| match best {
            Some((_, b)) if b >= v => best,
            _ => Some((i, v)),
        })
        .map(|(i, _)| i);
    let (first_token, streaming) = critical
        .and_then(llm_dists)
        .unwrap_or((Dist::Point(0.0), Dist::Point(0.0)));
    let critical_name = critical.map_or("none", |i| names[i]);
    let critical_model = critical.map_or(ctx.tier_models[0], |i| ctx.tier_models[i]);
    let mut values =
        vec![
        (
            Stage::Edge,
            by_p95(a.edge.edge_p95_ms.v()),
            format!("assumption edge.edge_p95_ms, log-normal σ {sigma}"),
        ),
        (
            Stage::MemoryRead,
            resources::dax::stage_dist(ctx, dax, sigma),
            if dax.enabled {
                format!(
                    "DAX {} × {}: {:.0}% hits (hit + wait), misses DynamoDB + hop + wait",
                    dax.nodes,
                    dax.node_type,
                    a.dax.item_cache_hit_ratio.v() * 100.0
                )
            } else {
                "DynamoDB read (no DAX)".to_owned()
            },
        ),
        (
            Stage::IntentMl,
            resources::sagemaker::stage_dist(ctx, sagemaker, sigma),
            format!(
                "SageMaker {} × {}: overhead + M/G/c wait + inference",
                sagemaker.instances, sagemaker.instance_type
            ),
        ),
        (
            Stage::CacheHit,
            resources::redis::stage_dist(ctx, redis, sigma),
            format!("Redis {} GET + M/M/1 wait", redis.node_type),
        ),
        (
            Stage::ServiceCalls,
            by_p95(a.downstream.service_calls_p95_ms.v()),
            format!("assumption downstream.service_calls_p95_ms, log-normal σ {sigma}"),
        ),
        (
            Stage::Retrieval,
            resources::opensearch::stage_dist(ctx, opensearch, sigma),
            format!(
                "embedding + M/G/c wait on {} OCUs + search",
                opensearch.search_ocu_min
            ),
        ),
        (
            Stage::FirstToken,
            first_token,
            format!(
                "{critical_name} tier (the slowest the end-to-end target covers): public measurement of {} (log-normal, mean and p95)",
                critical_model.model_id
            ),
        ),
        (
            Stage::Streaming,
            streaming,
            format!(
                "{critical_name} tier: its output tokens at {} tokens/s median, {} at the 5th percentile ({}; log-normal, mean and p95)",
                critical_model.output_tokens_per_s_median,
                critical_model.output_tokens_per_s_p5,
                critical_model.model_id
            ),
        ),
        (
            Stage::Guardrails,
            by_p95(a.downstream.guardrails_p95_ms.v()),
            format!("assumption downstream.guardrails_p95_ms, log-normal σ {sigma}"),
        ),
        (
            Stage::StreamJitter,
            by_p95(a.edge.stream_jitter_p95_ms.v()),
            format!("assumption edge.stream_jitter_p95_ms, log-normal σ {sigma}"),
        ),
    ];
    for (stage, fixed, cpu, _) in cpu_stages(ctx) {
        values.push((
            stage,
            cpu_stage_dist(fixed, cpu, rho, sigma),
            format!(
                "{fixed} ms + processor-sharing sojourn of {cpu} ms CPU at {:.0}% utilisation",
                rho * 100.0
            ),
        ));
    }
    values.sort_by_key(|(s, _, _)| *s);
    let tiers = (0..4)
        .map(|i| {
            let dists = llm_dists(i);
            budget::TierPath {
                name: names[i],
                share: shares[i] / 100.0,
                first_token: dists.as_ref().map(|d| d.0.clone()),
                streaming: dists.map(|d| d.1),
                within_target: a.tiers.all()[i].within_end_to_end,
            }
        })
        .collect();
    Modelled { values, tiers }
}
