//! ElastiCache Redis: node type, shards and replicas.
//!
//! The working set is the resident cache entries (fill rate × TTL, by Little's
//! law) plus per-session state. One shard is kept as long as one primary can
//! hold the data and carry the operations; only beyond that does the cluster
//! shard, because cluster mode complicates multi-key operations. Replicas
//! exist for failover, not throughput: reads stay on primaries so a read never
//! returns a value older than the write that just preceded it.
//!
//! Failure sizing ([`super::failure`]): when a shard loses its primary (a node
//! or its AZ), Multi-AZ promotes a replica of the same node type, which then
//! carries the shard's memory and operations as before: reads never used the
//! replicas, so no read capacity is lost and the degraded utilisation equals
//! the healthy one. Replicas sit in other AZs (prod keeps one node per AZ),
//! so one AZ takes at most one node of a shard. Without a replica the shard
//! has no capacity until ElastiCache replaces the node; failover
//! environments always get a replica.

use serde::Serialize;

use crate::assumptions::RedisNodeType;
use crate::erlang::{Mmc, P95};
use crate::error::Findings;
use crate::path::Dist;

use super::failure::{self, Degraded};
use super::{ceil_u32, pct, round4, round_ms, Assessment, Binding, Ctx};

/// ElastiCache allows at most five replicas per shard.
const MAX_REPLICAS: u32 = 5;
/// Shards the search will consider before declaring the load infeasible.
const MAX_SHARDS: u32 = 500;

/// The sized Redis replication group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RedisPlan {
    /// ElastiCache node type.
    pub node_type: String,
    /// Shards (node groups).
    pub shards: u32,
    /// Replicas per shard.
    pub replicas_per_shard: u32,
    /// Nodes in total: shards × (1 + replicas).
    pub nodes: u32,
    /// Working set in GiB (entries × size plus session state).
    pub memory_required_gib: f64,
    /// Operations per second at peak.
    pub ops_per_s: f64,
    /// Modelled p95 of a cache hit, ms.
    pub modelled_p95_ms: f64,
    /// Binding constraint, utilisation, cost and notes.
    pub assessment: Assessment,
}

struct Load {
    memory_gib: f64,
    ops: f64,
}

struct Fit {
    memory_util: f64,
    ops_util: f64,
    p95_ms: f64,
}

fn fit(ctx: &Ctx<'_>, n: &RedisNodeType, shards: u32, load: &Load) -> Fit {
    let r = &ctx.a.redis;
    let shards_f = f64::from(shards.max(1));
    let usable = n.memory_gib * (1.0 - r.reserved_memory_fraction.v());
    let per_shard_ops = load.ops / shards_f;
    // The engine is one server per primary: M/M/1 at the node's ops/s.
    let q = Mmc {
        arrival_rate: per_shard_ops,
        service_rate: n.ops_per_second,
        servers: 1,
    };
    Fit {
        memory_util: load.memory_gib / shards_f / usable,
        ops_util: per_shard_ops / n.ops_per_second,
        p95_ms: r.get_p95_ms.v() + q.wait_quantile(P95) * 1000.0,
    }
}

/// The cache stage's latency distribution for the sized group: the GET
/// round trip (log-normal with its p95 and shape `sigma`) + the M/M/1 wait
/// at one primary.
pub(crate) fn stage_dist(ctx: &Ctx<'_>, plan: &RedisPlan, sigma: f64) -> Dist {
    let r = &ctx.a.redis;
    let Some(n) = r.node_types.iter().find(|n| n.name == plan.node_type) else {
        return Dist::Point(f64::INFINITY);
    };
    let q = Mmc {
        arrival_rate: plan.ops_per_s / f64::from(plan.shards.max(1)),
        service_rate: n.ops_per_second,
        servers: 1,
    };
    Dist::Sum(vec![
        Dist::lognormal_p95_sigma(r.get_p95_ms.v(), sigma),
        Dist::queue_wait(q.prob_wait(), q.mean_wait_if_waiting() * 1000.0),
    ])
}

/// Shards `n` needs, and what forced them beyond the memory and ops need.
fn shards_needed(ctx: &Ctx<'_>, n: &RedisNodeType, load: &Load) -> Option<(u32, bool)> {
    let r = &ctx.a.redis;
    let usable = n.memory_gib * (1.0 - r.reserved_memory_fraction.v());
    let by_memory = ceil_u32(load.memory_gib / usable);
    let by_ops = ceil_u32(load.ops / (n.ops_per_second * r.ops_ceiling.v()));
    let base = by_memory.max(by_ops).max(1);
    if base > MAX_SHARDS {
        return None;
    }
    let budget = f64::from(ctx.input.targets.latency_ms.cache_hit);
    // More shards only shorten the queue; if the round trip alone exceeds
    // the budget the budget check reports it and the count stays.
    if r.get_p95_ms.v() > budget {
        return Some((base, false));
    }
    let mut s = base;
    while s <= MAX_SHARDS {
        if fit(ctx, n, s, load).p95_ms <= budget {
            return Some((s, s > base));
        }
        s += 1;
    }
    None
}

/// Sizes Redis and applies the `capacity.redis` override.
pub(crate) fn size(ctx: &Ctx<'_>, findings: &mut Findings) -> RedisPlan {
    let r = &ctx.a.redis;
    let rates = ctx.rates;
    let entries = crate::erlang::littles_law(rates.cache_writes_per_s, r.ttl_s.v());
    let bytes = entries * r.entry_bytes.v()
        + f64::from(rates.concurrent_sessions) * r.session_state_bytes.v();
    let load = Load {
        memory_gib: bytes / f64::from(1u32 << 30),
        ops: rates.cache_reads_per_s + rates.cache_writes_per_s,
    };

    let candidates: Vec<&RedisNodeType> = r
        .node_types
        .iter()
        .filter(|n| ctx.allows_burstable() || !n.burstable)
        .collect();
    let picked = super::pick_type(candidates.len(), 1, |i| {
        shards_needed(ctx, candidates[i], &load).map(|(s, _)| s)
    });
    let (rec_node, rec_shards, latency_forced) = match picked {
        Some((i, s)) => {
            let forced = shards_needed(ctx, candidates[i], &load).is_some_and(|(_, f)| f);
            (candidates[i], s, forced)
        }
        None => {
            findings.infeasible(
                "redis",
                format!(
                    "{:.1} GiB and {:.0} ops/s exceed {MAX_SHARDS} shards of the largest node type",
                    load.memory_gib, load.ops
                ),
            );
            match candidates.last() {
                Some(n) => (*n, MAX_SHARDS, false),
                None => {
                    findings.infeasible("redis", "assumptions list no node types".into());
                    return empty_plan(load);
                }
            }
        }
    };
    let rec_replicas = if ctx.is_production() {
        // One node per AZ: the primary plus a replica in each other AZ.
        ctx.input.az_count.saturating_sub(1).clamp(1, MAX_REPLICAS)
    } else if ctx.failover() {
        1
    } else {
        0
    };
    let rec_fit = fit(ctx, rec_node, rec_shards, &load);
    let binding = if latency_forced {
        Binding::LatencyBudget
    } else if rec_fit.memory_util >= rec_fit.ops_util {
        Binding::Memory
    } else {
        Binding::OpsPerSecond
    };

    let mut notes = vec![
        format!(
            "{:.0} entries (fills {:.1}/s × TTL {} s) × {} B + {} sessions × {} B = {:.2} GiB",
            entries,
            rates.cache_writes_per_s,
            r.ttl_s.v(),
            r.entry_bytes.v(),
            rates.concurrent_sessions,
            r.session_state_bytes.v(),
            load.memory_gib
        ),
        format!(
            "{:.0} ops/s at peak; primaries kept below {} of node ops/s",
            load.ops,
            pct(r.ops_ceiling.v())
        ),
        format!(
            "{rec_replicas} replica(s) per shard: {}",
            if ctx.is_production() {
                "one node per AZ for failover"
            } else if ctx.failover() {
                "failover required"
            } else {
                "no failover required"
            }
        ),
    ];
    if !ctx.allows_burstable() {
        notes.push("burstable (T) nodes excluded in prod".into());
    }

    let ov = ctx.input.overrides.redis.as_ref();
    let (node, shards, replicas) = match ov {
        None => (rec_node.clone(), rec_shards, rec_replicas),
        Some(ov) => {
            notes.push(format!(
                "sizing recommends {} × {} shard(s) × {} replica(s), bound by {}",
                rec_node.name, rec_shards, rec_replicas, binding
            ));
            let node = match &ov.node_type {
                None => rec_node.clone(),
                Some(name) => match r.node_types.iter().find(|n| &n.name == name) {
                    Some(n) => n.clone(),
                    None => {
                        findings.invalid_override(
                            "redis",
                            format!("node type `{name}` is not in the assumptions file"),
                        );
                        rec_node.clone()
                    }
                },
            };
            (
                node,
                ov.shards.unwrap_or(rec_shards),
                ov.replicas_per_shard.unwrap_or(rec_replicas),
            )
        }
    };
    let f = fit(ctx, &node, shards, &load);
    let fail = degraded(ctx, shards, replicas, &f);
    let fail_problem = failure::check(ctx, findings, "redis", &fail, ov.is_some());
    if ov.is_some() {
        let mut short = Vec::new();
        if shards == 0 || replicas > MAX_REPLICAS {
            findings.invalid_override(
                "redis",
                format!(
                    "shards must be ≥ 1 and replicas ≤ {MAX_REPLICAS}, got {shards} and {replicas}"
                ),
            );
        }
        if f.memory_util > 1.0 {
            short.push(format!(
                "{:.2} GiB per shard exceeds {} usable GiB of {}",
                load.memory_gib / f64::from(shards.max(1)),
                round4(node.memory_gib * (1.0 - r.reserved_memory_fraction.v())),
                node.name
            ));
        }
        if f.ops_util > r.ops_ceiling.v() {
            short.push(format!(
                "primary at {} of its ops/s, ceiling {}",
                pct(f.ops_util),
                pct(r.ops_ceiling.v())
            ));
        }
        if ctx.failover() && replicas == 0 {
            short.push("no replica where failover is required".into());
        } else {
            short.extend(fail_problem);
        }
        if !ctx.allows_burstable() && node.burstable {
            short.push(format!(
                "{} is burstable; CPU credits run out under sustained load",
                node.name
            ));
        }
        if !short.is_empty() {
            findings.override_shortfall(
                "redis",
                short.join("; "),
                ctx.is_production(),
                ctx.acknowledged("redis"),
            );
        }
    }

    let nodes = shards.saturating_mul(1 + replicas);
    let cost = match ctx.prices.elasticache_hourly(&node.name) {
        Ok(h) => crate::cost::monthly_hours(f64::from(nodes), h),
        Err(e) => {
            findings.errors.push(e);
            0.0
        }
    };
    RedisPlan {
        node_type: node.name.clone(),
        shards,
        replicas_per_shard: replicas,
        nodes,
        memory_required_gib: round4(load.memory_gib),
        ops_per_s: round4(load.ops),
        modelled_p95_ms: round_ms(f.p95_ms),
        assessment: Assessment::new(
            binding,
            f.memory_util.max(f.ops_util),
            cost,
            ov.is_some(),
            notes,
        )
        .with_failure(&fail),
    }
}

/// The replication group with one shard's primary gone (a node or its AZ).
fn degraded(ctx: &Ctx<'_>, shards: u32, replicas: u32, healthy: &Fit) -> Degraded {
    let nodes = 1 + replicas;
    let what = format!(
        "a shard's primary lost{}",
        if replicas > 0 {
            " (a replica is promoted)"
        } else {
            " (no replica: the shard is down until it is replaced)"
        }
    );
    let budget = f64::from(ctx.input.targets.latency_ms.cache_hit);
    Degraded {
        what,
        // Nodes left in the shard that lost its primary.
        survivors: nodes - 1,
        utilisation: if replicas > 0 && shards > 0 {
            healthy.memory_util.max(healthy.ops_util)
        } else {
            f64::INFINITY
        },
        p95_ms: Some(if replicas > 0 {
            healthy.p95_ms
        } else {
            f64::INFINITY
        }),
        budget_ms: (healthy.p95_ms <= budget).then_some(budget),
    }
}

fn empty_plan(load: Load) -> RedisPlan {
    RedisPlan {
        node_type: String::new(),
        shards: 0,
        replicas_per_shard: 0,
        nodes: 0,
        memory_required_gib: round4(load.memory_gib),
        ops_per_s: round4(load.ops),
        modelled_p95_ms: f64::INFINITY,
        assessment: Assessment::new(Binding::Memory, f64::INFINITY, 0.0, false, Vec::new()),
    }
}
