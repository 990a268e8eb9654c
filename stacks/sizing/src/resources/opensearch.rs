//! OpenSearch Serverless: search and indexing OCU minimum and maximum.
//!
//! Retrieval's budget covers the query embedding plus the searches: the
//! runtime's hybrid retriever sends `searches_per_retrieval` (a BM25 and a
//! k-NN search) at once and waits for both, so the pool carries that many
//! searches per retrieval query and the stage is embedding + the slower
//! search. The search side is an M/G/c pool of search threads (a few per
//! OCU), sized with Erlang C and the Allen–Cunneen correction so that
//! embedding p95 + search p95 + queue wait p95 fits the `retrieval` budget
//! (one search's p95: the max of the two is in the stage distribution and
//! the path, not in the pool's sizing target). Serverless scales OCUs up in minutes, not seconds, so
//! the minimum must carry the peak; the maximum leaves room beyond it.
//! Indexing is sized from the catalogue update rate, doubled by the standby
//! replica in a second AZ.
//!
//! Failure sizing ([`super::failure`]): AWS documents that redundancy keeps
//! "standby nodes in another Availability Zone" but not how search OCUs
//! split between the two AZs. Assumed: with standby replicas the search OCUs
//! are split evenly over two AZs and losing one AZ leaves `floor(n / 2)`;
//! without them every OCU is in one AZ and its loss leaves none. Where
//! failover is required the minimum is raised until the surviving search
//! threads stay below ρ = 1 and, in prod, keep the `retrieval` p95 inside its
//! budget. Indexing keeps the undoubled need in the surviving AZ by
//! construction and is not re-checked.

use serde::Serialize;

use crate::erlang::{allen_cunneen, pool_p95, smallest_pool, Mmc, PoolTarget};
use crate::error::Findings;
use crate::path::Dist;

use super::failure::{self, Degraded};
use super::{ceil_u32, pct, round4, round_ms, Assessment, Binding, Ctx};

/// Most search OCUs the failure search considers.
const MAX_OCUS: u32 = 100_000;

/// The collection with one AZ gone: `ocus` search OCUs, with or without
/// standby replicas in a second AZ.
fn degraded(ctx: &Ctx<'_>, target: &PoolTarget, ocus: u32, standby: bool) -> Degraded {
    let o = &ctx.a.opensearch;
    let threads = o.search_threads_per_ocu.v().max(1.0);
    // Serverless uses two AZs when it keeps standby replicas, whatever the
    // environment's own AZ count.
    let (lost, what) = if standby {
        Degraded::describe(ocus, 2, "search OCU")
    } else {
        (
            ocus,
            format!("the collection's AZ lost: {ocus} of {ocus} search OCUs (no standby replicas)"),
        )
    };
    let survivors = ocus - lost;
    let servers = ceil_u32(f64::from(survivors) * threads);
    let budget = f64::from(ctx.input.targets.latency_ms.retrieval);
    Degraded {
        what,
        survivors,
        utilisation: if servers == 0 {
            f64::INFINITY
        } else {
            target.arrival_rate / target.service_rate / f64::from(servers)
        },
        p95_ms: Some(o.embedding_p95_ms.v() + pool_p95(target, servers) * 1000.0),
        budget_ms: (target.service_p95 <= target.budget).then_some(budget),
    }
}

/// The sized collection capacity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenSearchPlan {
    /// Minimum search OCUs (carries the peak).
    pub search_ocu_min: u32,
    /// Maximum search OCUs.
    pub search_ocu_max: u32,
    /// Minimum indexing OCUs.
    pub indexing_ocu_min: u32,
    /// Maximum indexing OCUs.
    pub indexing_ocu_max: u32,
    /// Standby replicas in a second AZ.
    pub standby_replicas: bool,
    /// Searches per second at peak (retrieval queries × searches per retrieval).
    pub queries_per_s: f64,
    /// Modelled p95 of retrieval (embedding + search + wait), ms.
    pub modelled_p95_ms: f64,
    /// Binding constraint, utilisation, cost and notes.
    pub assessment: Assessment,
}

/// Retrieval's latency distribution for the sized collection: embedding
/// (log-normal with its p95 and shape `sigma`) + queue wait on the search
/// threads (Erlang C, Allen–Cunneen) + search (log-normal from mean and p95).
pub(crate) fn stage_dist(ctx: &Ctx<'_>, plan: &OpenSearchPlan, sigma: f64) -> Dist {
    let o = &ctx.a.opensearch;
    let threads = o.search_threads_per_ocu.v().max(1.0);
    let q = Mmc {
        arrival_rate: plan.queries_per_s,
        service_rate: 1000.0 / o.search_mean_ms.v(),
        servers: ceil_u32(f64::from(plan.search_ocu_min) * threads),
    };
    let cv2 = crate::path::lognormal_cv2(o.search_mean_ms.v(), o.search_p95_ms.v());
    let one_search = Dist::Sum(vec![
        Dist::queue_wait(
            q.prob_wait(),
            q.mean_wait_if_waiting() * allen_cunneen(cv2) * 1000.0,
        ),
        Dist::lognormal_mean_p95(o.search_mean_ms.v(), o.search_p95_ms.v()),
    ]);
    let n = o.searches_per_retrieval.v().round().max(1.0) as usize;
    Dist::Sum(vec![
        Dist::lognormal_p95_sigma(o.embedding_p95_ms.v(), sigma),
        Dist::Max(vec![one_search; n]),
    ])
}

/// Sizes the collection and applies the `capacity.opensearch` override.
pub(crate) fn size(ctx: &Ctx<'_>, findings: &mut Findings) -> OpenSearchPlan {
    let o = &ctx.a.opensearch;
    let r = ctx.rates;
    let threads = o.search_threads_per_ocu.v().max(1.0);
    let embed = o.embedding_p95_ms.v();
    let budget_ms = f64::from(ctx.input.targets.latency_ms.retrieval);
    let rec_standby = ctx.failover();
    let floor = |standby: bool| if standby { 2 } else { 1 };

    let searches_per_s = r.retrieval_queries_per_s * o.searches_per_retrieval.v().max(1.0);
    let target = PoolTarget {
        arrival_rate: searches_per_s,
        service_rate: 1000.0 / o.search_mean_ms.v(),
        service_p95: o.search_p95_ms.v() / 1000.0,
        // M/G/c: the search time is log-normal with its mean and p95.
        service_cv2: crate::path::lognormal_cv2(o.search_mean_ms.v(), o.search_p95_ms.v()),
        budget: (budget_ms - embed) / 1000.0,
        utilisation_ceiling: o.utilisation_ceiling.v(),
        min_servers: 1,
    };
    let pool = smallest_pool(&target);
    let needed = ceil_u32(f64::from(pool.servers) / threads);
    let healthy_min = needed.max(floor(rec_standby));
    let rec_min = if ctx.failover() {
        failure::smallest_surviving(healthy_min, MAX_OCUS, |n| {
            degraded(ctx, &target, n, rec_standby).survives(ctx)
        })
        .unwrap_or(MAX_OCUS)
    } else {
        healthy_min
    };
    let rec_max = rec_min.max(ceil_u32(f64::from(rec_min) * o.max_ocu_factor.v()));
    let idx_need = ceil_u32(o.indexing_docs_per_s.v() / o.indexing_docs_per_ocu_per_s.v()).max(1);
    let idx_min_for = |standby: bool| idx_need * if standby { 2 } else { 1 };
    let rec_idx_min = idx_min_for(rec_standby);
    let rec_idx_max = rec_idx_min.max(ceil_u32(f64::from(rec_idx_min) * o.max_ocu_factor.v()));
    let binding = if rec_min > healthy_min {
        Binding::AzLoss
    } else if needed <= floor(rec_standby) {
        if rec_standby {
            Binding::MultiAzMinimum
        } else {
            Binding::Minimum
        }
    } else if pool.latency_bound {
        Binding::LatencyBudget
    } else {
        Binding::OpsPerSecond
    };

    let mut notes = vec![
        format!(
            "{:.1} retrieval queries/s at peak × {} searches each (hybrid) = {searches_per_s:.1} searches/s on {} search threads per OCU ({} ms mean, {} ms p95) below {}",
            r.retrieval_queries_per_s,
            o.searches_per_retrieval.v(),
            threads,
            o.search_mean_ms.v(),
            o.search_p95_ms.v(),
            pct(o.utilisation_ceiling.v())
        ),
        format!(
            "retrieval p95 = embedding {embed} ms + search p95 + queue wait p95 (Erlang C, {} threads)",
            pool.servers
        ),
        "minimum carries the peak: Serverless adds OCUs in minutes, not seconds".into(),
    ];

    let ov = ctx.input.overrides.opensearch.as_ref();
    let (standby, s_min, s_max, i_min, i_max) = match ov {
        None => (rec_standby, rec_min, rec_max, rec_idx_min, rec_idx_max),
        Some(ov) => {
            notes.push(format!(
                "sizing recommends search {rec_min}..={rec_max}, indexing {rec_idx_min}..={rec_idx_max} OCUs, bound by {binding}"
            ));
            let standby = ov.standby_replicas.unwrap_or(rec_standby);
            let s_min = ov.search_ocu_min.unwrap_or(rec_min);
            let i_min = ov.indexing_ocu_min.unwrap_or_else(|| idx_min_for(standby));
            (
                standby,
                s_min,
                ov.search_ocu_max.unwrap_or_else(|| s_min.max(rec_max)),
                i_min,
                ov.indexing_ocu_max
                    .unwrap_or_else(|| i_min.max(rec_idx_max)),
            )
        }
    };

    let servers = ceil_u32(f64::from(s_min) * threads);
    let p95_ms = embed + pool_p95(&target, servers) * 1000.0;
    let utilisation = searches_per_s * o.search_mean_ms.v() / 1000.0 / f64::from(servers.max(1));
    let fail = degraded(ctx, &target, s_min, standby);
    let fail_problem = failure::check(ctx, findings, "opensearch", &fail, ov.is_some());
    if ov.is_some() {
        let mut short = Vec::new();
        if s_min == 0 || s_min > s_max || i_min == 0 || i_min > i_max {
            findings.invalid_override(
                "opensearch",
                format!("OCU ranges must be 1 ≤ min ≤ max, got search {s_min}..={s_max}, indexing {i_min}..={i_max}"),
            );
        }
        if utilisation > o.utilisation_ceiling.v() {
            short.push(format!(
                "{s_min} search OCUs run at {} at peak, ceiling {}",
                pct(utilisation),
                pct(o.utilisation_ceiling.v())
            ));
        }
        if i_min < idx_min_for(standby) {
            short.push(format!(
                "{i_min} indexing OCUs, the update rate{} needs {}",
                if standby { " with a standby" } else { "" },
                idx_min_for(standby)
            ));
        }
        if ctx.failover() && !standby {
            short.push("no standby replicas where failover is required".into());
        }
        if standby && s_min < 2 {
            short.push("standby replicas need at least 2 search OCUs (one per AZ)".into());
        }
        if !ctx.failover() || standby {
            // Without standby replicas the line above already says why.
            short.extend(fail_problem);
        }
        if !short.is_empty() {
            findings.override_shortfall(
                "opensearch",
                short.join("; "),
                ctx.is_production(),
                ctx.acknowledged("opensearch"),
            );
        }
    }

    let ocu_hour = ctx.prices.opensearch_serverless.ocu_hour;
    let cost = crate::cost::monthly_hours(f64::from(s_min + i_min), ocu_hour);
    notes.push(format!(
        "costed at the minimum; up to ${:.2}/month at the maximum",
        crate::cost::monthly_hours(f64::from(s_max + i_max), ocu_hour)
    ));
    OpenSearchPlan {
        search_ocu_min: s_min,
        search_ocu_max: s_max,
        indexing_ocu_min: i_min,
        indexing_ocu_max: i_max,
        standby_replicas: standby,
        queries_per_s: round4(searches_per_s),
        modelled_p95_ms: round_ms(p95_ms),
        assessment: Assessment::new(binding, utilisation, cost, ov.is_some(), notes)
            .with_failure(&fail),
    }
}
