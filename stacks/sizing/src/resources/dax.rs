//! DynamoDB Accelerator: whether it is needed, node type and node count.
//!
//! DAX exists only to bring conversation-memory reads under the `memory_read`
//! budget. When DynamoDB's own p95 already fits, DAX is not deployed. When it
//! is, load is counted in the DAX sizing guide's normalized requests: a hit
//! costs 1, a miss about 10 and a write-through about 25.
//!
//! The load is the runtime's (runtime/src/backends/aws/dax.rs): per message a
//! GetItem of the session head, then `turn_reads_per_message` GetItems of the
//! history turns in parallel, and on the save two writes (the turn and the
//! head) and a strongly consistent head read that passes through to DynamoDB
//! (costed as a miss). For read-your-writes every read goes to the
//! *primary* (a write updates the primary's item cache first), so the primary
//! carries all of it: adding nodes adds failover, not capacity, and the
//! primary's node type bounds the cluster. The memory-read stage is the head
//! read followed by the slowest of the parallel turn reads.
//!
//! Failure sizing ([`super::failure`]): DAX places nodes in different AZs and
//! fails over to a replica when the primary fails; losing one AZ of
//! `az_count` loses `ceil(n / az_count)` nodes (at least one). Reads then
//! spread over the survivors while every write still lands on the new
//! primary. Where failover is required the count is raised until the
//! survivors' primary stays below ρ = 1 and, in prod, the `memory_read` p95
//! on the survivors fits its budget.

use serde::Serialize;

use crate::assumptions::DaxNodeType;
use crate::erlang::{allen_cunneen, Mmc, P95};
use crate::error::Findings;
use crate::path::Dist;

use super::failure::{self, Degraded};
use super::{pct, round4, round_ms, Assessment, Binding, Ctx};

/// A DAX cluster has at most 11 nodes (one primary, ten replicas).
pub const MAX_NODES: u32 = 11;

/// The sized DAX cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DaxPlan {
    /// Whether to deploy DAX at all.
    pub enabled: bool,
    /// Node type (the type that would be used when `enabled` is false).
    pub node_type: String,
    /// Node count; 0 when not enabled.
    pub nodes: u32,
    /// Item cache working set, GiB.
    pub item_cache_gib: f64,
    /// Normalized requests per second at peak (hits + 10 × misses + 25 × writes).
    pub normalized_rps: f64,
    /// Modelled p95 of a memory read (through DAX, or DynamoDB alone), ms.
    pub modelled_p95_ms: f64,
    /// The item cache TTL (`record-ttl-millis` of the memory stack's
    /// parameter group), ms: [`item_ttl_ms`].
    pub item_ttl_ms: u64,
    /// Binding constraint, utilisation, cost and notes.
    pub assessment: Assessment,
}

struct Load {
    reads_norm: f64,
    writes_norm: f64,
    memory_gib: f64,
    /// Requests (reads and writes) per second.
    requests: f64,
    /// Mean normalized cost of a request.
    mean_cost: f64,
    /// Squared coefficient of variation of a request's cost (and so of its
    /// service time): hits, misses and writes cost 1, 10 and 25.
    cost_cv2: f64,
}

/// The DAX cluster as an M/G/c queue of requests: λ = requests/s, a
/// request's mean service time = mean cost / node normalized rps. The
/// offered load equals normalized requests / node rps; the service time is a
/// mixture of three fixed costs, whose C² enters Allen–Cunneen.
fn queue(n: &DaxNodeType, load: &Load) -> (Mmc, f64) {
    (
        Mmc {
            arrival_rate: load.requests,
            service_rate: n.normalized_rps / load.mean_cost.max(1e-12),
            // Every request is the primary's (reads on the primary for
            // read-your-writes), whatever the node count.
            servers: 1,
        },
        load.cost_cv2,
    )
}

/// The item cache TTL: long enough that the oldest history turn a message
/// reads is still cached (the `turn_reads_per_message`-th turn back is that
/// many message intervals old, 60 s / messages per session per minute),
/// rounded up to a whole minute plus one, between 1 and 10 minutes. A
/// shorter TTL turns those reads into misses; a longer one only lengthens the
/// staleness it bounds (a head written straight to DynamoDB while DAX was
/// unreachable, seen through DAX once its cached copy expires). DAX's
/// default is 5 minutes (Amazon DynamoDB Developer Guide, "Configuring TTL
/// settings", https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/DAX.cluster-management.html#DAX.cluster-management.custom-settings.ttl).
pub fn item_ttl_ms(turn_reads: f64, messages_per_session_per_minute: f64) -> u64 {
    let interval_s = 60.0 / messages_per_session_per_minute.max(1e-9);
    let span_min = (turn_reads.max(0.0) * interval_s / 60.0).ceil();
    let minutes = if span_min.is_finite() {
        span_min + 1.0
    } else {
        10.0
    };
    (minutes.clamp(1.0, 10.0) as u64) * 60_000
}

/// Reads per second the runtime sends DAX at peak (the head and the history
/// turns) and strongly consistent reads it passes through.
pub(crate) fn reads_per_s(ctx: &Ctx<'_>) -> (f64, f64) {
    let d = &ctx.a.dax;
    let m = ctx.rates.messages_per_s;
    (
        m * (1.0 + d.turn_reads_per_message.v().max(0.0)),
        m * d.consistent_reads_per_message.v().max(0.0),
    )
}

/// The memory read's latency distribution: a mixture of hits (the hit round
/// trip, log-normal with its p95 and shape `sigma`, plus the queue wait) and
/// misses (DynamoDB's read, log-normal with its p95, plus the extra hop and
/// the wait), with the item-cache hit ratio; DynamoDB's read alone without
/// DAX. No tail is dropped: 3% of misses move the stage's p95 above the hit
/// p95.
pub(crate) fn stage_dist(ctx: &Ctx<'_>, plan: &DaxPlan, sigma: f64) -> Dist {
    let d = &ctx.a.dax;
    let ddb = Dist::lognormal_p95_sigma(ctx.a.dynamodb.read_p95_ms.v(), sigma);
    if !plan.enabled {
        return ddb;
    }
    let Some(n) = d.node_types.iter().find(|n| n.name == plan.node_type) else {
        return Dist::Point(f64::INFINITY);
    };
    read_path(ctx, n, &load_of(ctx), sigma)
}

/// The memory read through a cluster of `n` (its primary serves every
/// request, so the node count does not enter): the session head, then the
/// history turns at once (the slowest of them), each read a hit or a miss.
fn read_path(ctx: &Ctx<'_>, n: &DaxNodeType, load: &Load, sigma: f64) -> Dist {
    let d = &ctx.a.dax;
    let ddb = Dist::lognormal_p95_sigma(ctx.a.dynamodb.read_p95_ms.v(), sigma);
    let (q, cv2) = queue(n, load);
    let wait = Dist::queue_wait(
        q.prob_wait(),
        q.mean_wait_if_waiting() * allen_cunneen(cv2) * 1000.0,
    );
    let hit = d.item_cache_hit_ratio.v().clamp(0.0, 1.0);
    let one_read = Dist::Mixture(vec![
        (
            hit,
            Dist::Sum(vec![
                Dist::lognormal_p95_sigma(d.hit_p95_ms.v(), sigma),
                wait.clone(),
            ]),
        ),
        (
            1.0 - hit,
            Dist::Sum(vec![ddb, Dist::Point(d.miss_overhead_ms.v()), wait]),
        ),
    ]);
    let turns = d.turn_reads_per_message.v().round().max(0.0) as usize;
    if turns == 0 {
        return one_read;
    }
    Dist::Sum(vec![one_read.clone(), Dist::Max(vec![one_read; turns])])
}

fn load_of(ctx: &Ctx<'_>) -> Load {
    let d = &ctx.a.dax;
    let r = ctx.rates;
    let hit = d.item_cache_hit_ratio.v();
    let (mf, wf) = (d.miss_cost_factor.v(), d.write_cost_factor.v());
    let (reads, consistent) = reads_per_s(ctx);
    // A strongly consistent read passes through: a miss's cost.
    let (hits, misses, writes) = (
        reads * hit,
        reads * (1.0 - hit) + consistent,
        r.memory_writes_per_s,
    );
    let requests = hits + misses + writes;
    let (m1, m2) = if requests > 0.0 {
        (
            (hits + misses * mf + writes * wf) / requests,
            (hits + misses * mf * mf + writes * wf * wf) / requests,
        )
    } else {
        (1.0, 1.0)
    };
    Load {
        reads_norm: hits + misses * mf,
        writes_norm: r.memory_writes_per_s * wf,
        memory_gib: f64::from(r.concurrent_sessions) * ctx.a.dynamodb.item_kb.v() * 1024.0
            / f64::from(1u32 << 30),
        requests,
        mean_cost: m1,
        cost_cv2: (m2 / (m1 * m1) - 1.0).max(0.0),
    }
}

/// The primary's utilisation: it serves every read and write, so the node
/// count does not enter (the failure case's survivors change nothing but
/// the floor).
fn primary_util(n: &DaxNodeType, load: &Load) -> f64 {
    (load.writes_norm + load.reads_norm) / n.normalized_rps
}

/// Modelled p95 of the memory read through a cluster of `n`: the p95 of
/// the stage's own distribution ([`read_path`], by the seeded Monte Carlo),
/// so sizing and the budget table agree.
fn read_p95_ms(ctx: &Ctx<'_>, n: &DaxNodeType, load: &Load) -> f64 {
    let (q, _) = queue(n, load);
    if q.utilisation() >= 1.0 {
        return f64::INFINITY;
    }
    read_path(ctx, n, load, ctx.a.path.lognormal_sigma.v()).quantile(P95)
}

/// The cluster with the nodes of one AZ gone.
fn degraded(ctx: &Ctx<'_>, n: &DaxNodeType, nodes: u32, load: &Load) -> Degraded {
    let (lost, what) = Degraded::describe(nodes, ctx.input.az_count, "node");
    let survivors = nodes - lost;
    let budget = f64::from(ctx.input.targets.latency_ms.memory_read);
    let (utilisation, p95) = if survivors == 0 {
        (f64::INFINITY, f64::INFINITY)
    } else {
        (primary_util(n, load), read_p95_ms(ctx, n, load))
    };
    Degraded {
        what,
        survivors,
        utilisation,
        p95_ms: Some(p95),
        // Only where the healthy cluster can meet the budget at all.
        budget_ms: (read_p95_ms(ctx, n, load) <= budget).then_some(budget),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Limit {
    Fits(u32),
    Memory,
    Writes,
    Reads,
}

/// Nodes `n` needs (≥ floor), or why it cannot (a primary too slow for the
/// budget is `Reads`: more nodes do not help it).
fn nodes_needed(ctx: &Ctx<'_>, n: &DaxNodeType, floor: u32, load: &Load) -> Limit {
    let d = &ctx.a.dax;
    let cap = n.normalized_rps * d.utilisation_ceiling.v();
    if load.memory_gib > n.memory_gib * d.usable_memory_fraction.v() {
        return Limit::Memory;
    }
    // The primary carries everything (reads included): more nodes do not
    // relieve it.
    if load.writes_norm >= cap {
        return Limit::Writes;
    }
    if load.writes_norm + load.reads_norm >= cap {
        return Limit::Reads;
    }
    let base = floor.max(1);
    let budget = f64::from(ctx.input.targets.latency_ms.memory_read);
    // The primary's queue is the same for any node count: when its wait
    // breaks the budget only a larger node type helps (when the hit alone
    // misses it, no type does and the budget check names it).
    if read_p95_ms(ctx, n, load) > budget && d.hit_p95_ms.v() <= budget {
        return Limit::Reads;
    }
    let k = base;
    if !ctx.failover() {
        return Limit::Fits(k);
    }
    match failure::smallest_surviving(k, MAX_NODES, |m| degraded(ctx, n, m, load).survives(ctx)) {
        Some(m) => Limit::Fits(m),
        None => Limit::Reads,
    }
}

/// Nodes `n` needs without the failure case (to tell whether it decided).
fn healthy_nodes(ctx: &Ctx<'_>, n: &DaxNodeType, floor: u32, load: &Load) -> Option<u32> {
    let d = &ctx.a.dax;
    let cap = n.normalized_rps * d.utilisation_ceiling.v();
    if load.memory_gib > n.memory_gib * d.usable_memory_fraction.v()
        || load.writes_norm + load.reads_norm >= cap
    {
        return None;
    }
    let base = floor.max(1);
    let budget = f64::from(ctx.input.targets.latency_ms.memory_read);
    if read_p95_ms(ctx, n, load) > budget && d.hit_p95_ms.v() <= budget {
        return None;
    }
    Some(base)
}

/// Sizes DAX and applies the `capacity.dax` override.
pub(crate) fn size(ctx: &Ctx<'_>, findings: &mut Findings) -> DaxPlan {
    let d = &ctx.a.dax;
    let ttl_ms = item_ttl_ms(
        d.turn_reads_per_message.v(),
        ctx.input.targets.traffic.messages_per_session_per_minute,
    );
    let r = ctx.rates;
    let hit = d.item_cache_hit_ratio.v();
    let load = load_of(ctx);
    let ddb_p95 = ctx.a.dynamodb.read_p95_ms.v();
    let budget = ctx.input.targets.latency_ms.memory_read;
    let needed = ddb_p95 > f64::from(budget);
    let floor = if ctx.is_production() {
        // AWS recommends at least three nodes in different AZs for production.
        3
    } else if ctx.failover() {
        2
    } else {
        1
    };

    let candidates: Vec<&DaxNodeType> = d
        .node_types
        .iter()
        .filter(|n| ctx.allows_burstable() || !n.burstable)
        .collect();
    let limits: Vec<Limit> = candidates
        .iter()
        .map(|n| nodes_needed(ctx, n, floor, &load))
        .collect();
    let picked = super::pick_type(candidates.len(), floor, |i| match limits[i] {
        Limit::Fits(k) => Some(k),
        _ => None,
    });
    let healthy = super::pick_type(candidates.len(), floor, |i| {
        healthy_nodes(ctx, candidates[i], floor, &load)
    });
    let (rec_idx, rec_nodes) = match picked {
        Some(p) => p,
        None => {
            if needed {
                findings.infeasible(
                    "dax",
                    format!(
                        "{:.0} normalized requests/s ({:.0} of them writes on the primary) exceed {MAX_NODES} nodes of every node type",
                        load.reads_norm + load.writes_norm,
                        load.writes_norm
                    ),
                );
            }
            (candidates.len().saturating_sub(1), MAX_NODES)
        }
    };
    let Some(rec_node) = candidates.get(rec_idx).copied() else {
        findings.infeasible("dax", "assumptions list no node types".into());
        return DaxPlan {
            enabled: false,
            node_type: String::new(),
            nodes: 0,
            item_cache_gib: round4(load.memory_gib),
            normalized_rps: round4(load.reads_norm + load.writes_norm),
            modelled_p95_ms: round_ms(ddb_p95),
            item_ttl_ms: ttl_ms,
            assessment: Assessment::new(Binding::NotNeeded, 0.0, 0.0, false, Vec::new()),
        };
    };
    let binding = if !needed {
        Binding::NotNeeded
    } else if ctx.failover() && picked.is_some() && healthy != picked {
        Binding::AzLoss
    } else {
        match limits.get(rec_idx) {
            Some(Limit::Fits(k)) if *k > floor => Binding::OpsPerSecond,
            _ => {
                // At the floor: the smallest type would do unless a smaller
                // one was ruled out by memory or primary writes.
                match rec_idx.checked_sub(1).and_then(|i| limits.get(i)) {
                    Some(Limit::Memory) => Binding::Memory,
                    Some(Limit::Writes) => Binding::PrimaryWrites,
                    Some(Limit::Reads | Limit::Fits(..)) => Binding::OpsPerSecond,
                    None if ctx.failover() => Binding::MultiAzMinimum,
                    None => Binding::Minimum,
                }
            }
        }
    };

    let mut notes = vec![if needed {
        format!("needed: DynamoDB p95 {ddb_p95} ms exceeds the memory_read budget {budget} ms")
    } else {
        format!("not needed: DynamoDB p95 {ddb_p95} ms fits the memory_read budget {budget} ms")
    }];
    let (reads, consistent) = reads_per_s(ctx);
    notes.push(format!(
        "{reads:.0} reads/s (the session head + {} history turns a message) at {} hits + {consistent:.0} consistent reads/s passed through + {:.0} writes/s through DAX = {:.0} normalized requests/s, all on the primary (reads there for read-your-writes)",
        d.turn_reads_per_message.v(),
        pct(hit),
        r.memory_writes_per_s,
        load.reads_norm + load.writes_norm
    ));
    if ctx.is_production() {
        notes.push("prod keeps at least 3 nodes across AZs".into());
    }

    let ov = ctx.input.overrides.dax.as_ref();
    let overridden = ov.is_some();
    let (enabled, node, nodes) = match ov {
        None => (needed, rec_node.clone(), if needed { rec_nodes } else { 0 }),
        Some(ov) => {
            if !needed {
                notes.push("enabled by the override although the budget does not need it".into());
            }
            notes.push(format!(
                "sizing recommends {} × {}, bound by {}",
                rec_nodes, rec_node.name, binding
            ));
            let node = match &ov.node_type {
                None => rec_node.clone(),
                Some(name) => match d.node_types.iter().find(|n| &n.name == name) {
                    Some(n) => n.clone(),
                    None => {
                        findings.invalid_override(
                            "dax",
                            format!("node type `{name}` is not in the assumptions file"),
                        );
                        rec_node.clone()
                    }
                },
            };
            (true, node, ov.nodes.unwrap_or(rec_nodes))
        }
    };

    if overridden {
        if nodes == 0 || nodes > MAX_NODES {
            findings.invalid_override("dax", format!("nodes must be 1..={MAX_NODES}, got {nodes}"));
        } else {
            let mut short = Vec::new();
            let util = primary_util(&node, &load);
            if util > d.utilisation_ceiling.v() {
                short.push(format!(
                    "primary at {} of its capacity, ceiling {}",
                    pct(util),
                    pct(d.utilisation_ceiling.v())
                ));
            }
            if load.memory_gib > node.memory_gib * d.usable_memory_fraction.v() {
                short.push(format!(
                    "item cache {:.2} GiB exceeds {}",
                    load.memory_gib, node.name
                ));
            }
            if nodes < floor && needed {
                short.push(format!("{nodes} node(s), availability needs {floor}"));
            }
            if !ctx.allows_burstable() && node.burstable {
                short.push(format!("{} is burstable", node.name));
            }
            if !short.is_empty() {
                findings.override_shortfall(
                    "dax",
                    short.join("; "),
                    ctx.is_production(),
                    ctx.acknowledged("dax"),
                );
            }
        }
    }

    let fail = enabled.then(|| degraded(ctx, &node, nodes, &load));
    if let Some(problem) = fail
        .as_ref()
        .and_then(|f| failure::check(ctx, findings, "dax", f, overridden))
    {
        findings.override_shortfall("dax", problem, ctx.is_production(), ctx.acknowledged("dax"));
    }
    let (p95, util, cost) = if enabled {
        let cost = match ctx.prices.dax_hourly(&node.name) {
            Ok(h) => crate::cost::monthly_hours(f64::from(nodes), h),
            Err(e) => {
                findings.errors.push(e);
                0.0
            }
        };
        let mem_util = load.memory_gib / (node.memory_gib * d.usable_memory_fraction.v());
        (
            read_p95_ms(ctx, &node, &load),
            primary_util(&node, &load).max(mem_util),
            cost,
        )
    } else {
        (ddb_p95, 0.0, 0.0)
    };
    DaxPlan {
        enabled,
        node_type: node.name.clone(),
        nodes,
        item_cache_gib: round4(load.memory_gib),
        normalized_rps: round4(load.reads_norm + load.writes_norm),
        modelled_p95_ms: round_ms(p95),
        item_ttl_ms: ttl_ms,
        assessment: match &fail {
            Some(f) => Assessment::new(binding, util, cost, overridden, notes).with_failure(f),
            None => Assessment::new(binding, util, cost, overridden, notes),
        },
    }
}
