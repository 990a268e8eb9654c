//! SageMaker real-time endpoint for the intent model: instance type, count
//! and autoscaling target.
//!
//! Each instance runs one model worker per vCPU; the endpoint is an M/M/c
//! pool of those workers. The count is the smallest that keeps
//! overhead p95 + inference p95 + queue wait p95 inside the `intent_ml` budget
//! below the utilisation ceiling (Erlang C, with the Allen–Cunneen M/G/c
//! correction for the inference time's variability). The budget table takes
//! the stage's p95 from the distribution of the same three parts
//! ([`stage_dist`]). Production keeps two instances so
//! SageMaker can place them in different AZs.
//!
//! Failure sizing ([`super::failure`]): SageMaker spreads the instances over
//! the AZs, so losing one AZ of `az_count` loses `ceil(n / az_count)` of
//! them (at least one). Where failover is required the count is raised until
//! the surviving workers stay below ρ = 1 and, in prod, keep the `intent_ml`
//! p95 (overhead + inference p95 + Erlang C wait on the survivors) inside
//! its budget. The failure-aware count feeds the type choice, so counts stay
//! monotone in traffic.

use serde::Serialize;

use crate::assumptions::SageMakerInstanceType;
use crate::erlang::{allen_cunneen, pool_p95, smallest_pool, Mmc, PoolTarget};
use crate::error::Findings;
use crate::path::Dist;

use super::failure::{self, Degraded};
use super::{ceil_u32, pct, round4, round_ms, Assessment, Binding, Ctx};

/// Most instances the failure search considers.
const MAX_INSTANCES: u32 = 100_000;

/// The sized endpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SageMakerPlan {
    /// Instance type.
    pub instance_type: String,
    /// Instances at peak (the endpoint's initial instance count).
    pub instances: u32,
    /// Autoscaling minimum.
    pub min_instances: u32,
    /// Autoscaling maximum.
    pub max_instances: u32,
    /// Target-tracking target for `SageMakerVariantInvocationsPerInstance`
    /// (invocations per instance per minute).
    pub target_invocations_per_instance: u32,
    /// ML intent classifications per second at peak.
    pub invocations_per_s: f64,
    /// Modelled p95 of the ML intent stage, ms.
    pub modelled_p95_ms: f64,
    /// Binding constraint, utilisation, cost and notes.
    pub assessment: Assessment,
}

fn target_for(ctx: &Ctx<'_>, t: &SageMakerInstanceType, rate: f64) -> PoolTarget {
    let s = &ctx.a.sagemaker;
    let budget_ms =
        f64::from(ctx.input.targets.latency_ms.intent_ml) - s.invocation_overhead_p95_ms.v();
    PoolTarget {
        arrival_rate: rate,
        service_rate: 1000.0 / t.service_mean_ms,
        service_p95: t.service_p95_ms / 1000.0,
        // M/G/c: the inference time is log-normal with its mean and p95.
        service_cv2: crate::path::lognormal_cv2(t.service_mean_ms, t.service_p95_ms),
        budget: budget_ms / 1000.0,
        utilisation_ceiling: s.utilisation_ceiling.v(),
        min_servers: 1,
    }
}

/// The ML intent stage's latency distribution for the sized endpoint:
/// invocation overhead (log-normal with its p95 and shape `sigma`) + queue
/// wait (Erlang C, Allen–Cunneen) + inference (log-normal from mean and p95).
pub(crate) fn stage_dist(ctx: &Ctx<'_>, plan: &SageMakerPlan, sigma: f64) -> Dist {
    let s = &ctx.a.sagemaker;
    let Some(t) = s
        .instance_types
        .iter()
        .find(|t| t.name == plan.instance_type)
    else {
        return Dist::Point(f64::INFINITY);
    };
    let q = Mmc {
        arrival_rate: plan.invocations_per_s,
        service_rate: 1000.0 / t.service_mean_ms,
        servers: plan.instances.saturating_mul(t.workers),
    };
    let cv2 = crate::path::lognormal_cv2(t.service_mean_ms, t.service_p95_ms);
    Dist::Sum(vec![
        Dist::lognormal_p95_sigma(s.invocation_overhead_p95_ms.v(), sigma),
        Dist::queue_wait(
            q.prob_wait(),
            q.mean_wait_if_waiting() * allen_cunneen(cv2) * 1000.0,
        ),
        Dist::lognormal_mean_p95(t.service_mean_ms, t.service_p95_ms),
    ])
}

/// Instances of `t` for `rate` invocations/s, and whether latency forced them.
fn instances_for(ctx: &Ctx<'_>, t: &SageMakerInstanceType, rate: f64) -> (u32, bool) {
    let pool = smallest_pool(&target_for(ctx, t, rate));
    let workers = f64::from(t.workers.max(1));
    (
        ceil_u32(f64::from(pool.servers) / workers),
        pool.latency_bound,
    )
}

/// The endpoint with the instances of one AZ gone.
pub(crate) fn degraded(
    ctx: &Ctx<'_>,
    t: &SageMakerInstanceType,
    rate: f64,
    instances: u32,
) -> Degraded {
    let s = &ctx.a.sagemaker;
    let (lost, what) = Degraded::describe(instances, ctx.input.az_count, "instance");
    let survivors = instances - lost;
    let servers = survivors.saturating_mul(t.workers);
    let target = target_for(ctx, t, rate);
    let utilisation = if servers == 0 {
        f64::INFINITY
    } else {
        rate * t.service_mean_ms / 1000.0 / f64::from(servers)
    };
    let budget = f64::from(ctx.input.targets.latency_ms.intent_ml);
    Degraded {
        what,
        survivors,
        utilisation,
        p95_ms: Some(s.invocation_overhead_p95_ms.v() + pool_p95(&target, servers) * 1000.0),
        // The budget binds the failure case only where the healthy pool can
        // meet it; otherwise the budget check already names the stage.
        budget_ms: (target.service_p95 <= target.budget).then_some(budget),
    }
}

/// Instances of `t` that carry `rate` from at least `from`, raised where
/// failover is required until one AZ's loss is survived.
fn failure_instances(ctx: &Ctx<'_>, t: &SageMakerInstanceType, rate: f64, from: u32) -> u32 {
    if !ctx.failover() {
        return from;
    }
    failure::smallest_surviving(from, MAX_INSTANCES, |n| {
        degraded(ctx, t, rate, n).survives(ctx)
    })
    .unwrap_or(MAX_INSTANCES)
}

/// Sizes the endpoint and applies the `capacity.sagemaker` override.
pub(crate) fn size(ctx: &Ctx<'_>, findings: &mut Findings) -> SageMakerPlan {
    let s = &ctx.a.sagemaker;
    let rate = ctx.rates.intent_ml_per_s;
    // Prod keeps two instances across AZs; any failover environment needs
    // two for one to survive the other's loss.
    let floor = if ctx.failover() { 2 } else { 1 };
    let candidates: Vec<&SageMakerInstanceType> = s
        .instance_types
        .iter()
        .filter(|t| ctx.allows_burstable() || !t.burstable)
        .collect();
    // The pick without the failure case, to tell whether it decided.
    let healthy = super::pick_type(candidates.len(), floor, |i| {
        Some(instances_for(ctx, candidates[i], rate).0)
    });
    let Some((idx, rec_instances)) = super::pick_type(candidates.len(), floor, |i| {
        let base = instances_for(ctx, candidates[i], rate).0;
        Some(failure_instances(ctx, candidates[i], rate, base.max(floor)))
    }) else {
        findings.infeasible("sagemaker", "assumptions list no instance types".into());
        return SageMakerPlan {
            instance_type: String::new(),
            instances: 0,
            min_instances: 0,
            max_instances: 0,
            target_invocations_per_instance: 0,
            invocations_per_s: round4(rate),
            modelled_p95_ms: f64::INFINITY,
            assessment: Assessment::new(Binding::Minimum, f64::INFINITY, 0.0, false, Vec::new()),
        };
    };
    let rec_type = candidates[idx];
    let (need, latency_bound) = instances_for(ctx, rec_type, rate);
    let binding = if healthy != Some((idx, rec_instances)) {
        Binding::AzLoss
    } else if need < rec_instances || (need == floor && idx == 0) {
        if ctx.failover() {
            Binding::MultiAzMinimum
        } else {
            Binding::Minimum
        }
    } else if latency_bound {
        Binding::LatencyBudget
    } else {
        Binding::OpsPerSecond
    };
    let peak_factor = ctx.input.targets.traffic.peak_factor.max(1.0);
    let rec_max = rec_instances.max(ceil_u32(
        f64::from(rec_instances) * s.max_instances_factor.v(),
    ));

    let mut notes = vec![format!(
        "{rate:.1} invocations/s at peak on {} workers per {} ({} ms mean, {} ms p95) below {}",
        rec_type.workers,
        rec_type.name,
        rec_type.service_mean_ms,
        rec_type.service_p95_ms,
        pct(s.utilisation_ceiling.v())
    )];
    if ctx.failover() {
        notes.push("failover keeps at least 2 instances across AZs".into());
    }

    let ov = ctx.input.overrides.sagemaker.as_ref();
    let (ty, instances, max_instances) = match ov {
        None => (rec_type.clone(), rec_instances, rec_max),
        Some(ov) => {
            notes.push(format!(
                "sizing recommends {} × {} (max {}), bound by {}",
                rec_instances, rec_type.name, rec_max, binding
            ));
            let ty = match &ov.instance_type {
                None => rec_type.clone(),
                Some(name) => match s.instance_types.iter().find(|t| &t.name == name) {
                    Some(t) => t.clone(),
                    None => {
                        findings.invalid_override(
                            "sagemaker",
                            format!("instance type `{name}` is not in the assumptions file"),
                        );
                        rec_type.clone()
                    }
                },
            };
            let instances = ov.instances.unwrap_or_else(|| {
                failure_instances(ctx, &ty, rate, instances_for(ctx, &ty, rate).0.max(floor))
            });
            let max = ov.max_instances.unwrap_or_else(|| {
                instances.max(ceil_u32(f64::from(instances) * s.max_instances_factor.v()))
            });
            (ty, instances, max)
        }
    };
    // The minimum survives an AZ's loss at the average rate too.
    let average = rate / peak_factor;
    let min_instances = failure_instances(
        ctx,
        &ty,
        average,
        instances_for(ctx, &ty, average).0.max(floor),
    )
    .min(instances);
    let fail = degraded(ctx, &ty, rate, instances);
    let fail_problem = failure::check(ctx, findings, "sagemaker", &fail, ov.is_some());

    let target = target_for(ctx, &ty, rate);
    let servers = instances.saturating_mul(ty.workers);
    let p95_ms = s.invocation_overhead_p95_ms.v() + pool_p95(&target, servers) * 1000.0;
    let utilisation = rate * ty.service_mean_ms / 1000.0 / f64::from(servers.max(1));
    if ov.is_some() {
        if instances == 0 || max_instances < instances {
            findings.invalid_override(
                "sagemaker",
                format!("instances {instances} and max_instances {max_instances} are inconsistent"),
            );
        }
        let mut short = Vec::new();
        if utilisation > s.utilisation_ceiling.v() {
            short.push(format!(
                "{instances} × {} run at {} at peak, ceiling {}",
                ty.name,
                pct(utilisation),
                pct(s.utilisation_ceiling.v())
            ));
        }
        if ctx.is_production() && instances < floor {
            short.push(format!(
                "{instances} instance(s), prod keeps {floor} across AZs"
            ));
        }
        if !ctx.allows_burstable() && ty.burstable {
            short.push(format!("{} is burstable", ty.name));
        }
        short.extend(fail_problem);
        if !short.is_empty() {
            findings.override_shortfall(
                "sagemaker",
                short.join("; "),
                ctx.is_production(),
                ctx.acknowledged("sagemaker"),
            );
        }
    }

    // Scale out when an instance's invocations reach what its workers carry
    // at the utilisation ceiling, per minute as the metric is reported.
    let mut per_instance_per_min =
        f64::from(ty.workers) * 1000.0 / ty.service_mean_ms * s.utilisation_ceiling.v() * 60.0;
    if ctx.failover() && min_instances < instances {
        // Target tracking must keep the failure-sized count at peak, or it
        // would scale in to what the healthy pool needs.
        per_instance_per_min =
            failure::target_settling_at(rate * 60.0, instances, per_instance_per_min.floor());
    }
    let cost = match ctx.prices.sagemaker_hourly(&ty.name) {
        Ok(h) => crate::cost::monthly_hours(f64::from(instances), h),
        Err(e) => {
            findings.errors.push(e);
            0.0
        }
    };
    SageMakerPlan {
        instance_type: ty.name.clone(),
        instances,
        min_instances,
        max_instances,
        target_invocations_per_instance: ceil_u32(per_instance_per_min.floor()).max(1),
        invocations_per_s: round4(rate),
        modelled_p95_ms: round_ms(p95_ms),
        assessment: Assessment::new(binding, utilisation, cost, ov.is_some(), notes)
            .with_failure(&fail),
    }
}
