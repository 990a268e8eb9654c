//! The latency budget check: each stage against its budget, and the whole
//! path against the end-to-end p95.
//!
//! Each stage comes as a latency distribution ([`crate::path::Dist`]) from
//! the sized resources (or from the assumptions, for stages mangactl does
//! not size); its row checks the stage's own p95 against its budget. The
//! path is the seed's: edge, auth, memory read, intent rules, the ML intent
//! model for the messages the rules do not settle, cache, max(service calls,
//! retrieval), first token, streaming, guardrails, delivery. Its p95 is not
//! the sum of the stage p95s (quantiles do not add, and the max of p95s
//! understates the p95 of a max): [`crate::path::compose`] draws the whole
//! path by a seeded Monte Carlo, with the ML intent stage as a branch that
//! `1 − rules_confident_share` of messages take and DAX misses as a branch
//! of the memory read, however small their shares. The old sum of stage
//! p95s is kept in the table for comparison ([`BudgetTable::sum_of_stage_p95_ms`]).

use serde::Serialize;

use crate::error::SizingError;
use crate::latency::{LatencyBudgets, Stage};
use crate::path::{
    compose, compose_samples, empirical_quantile, mixture_quantile, Dist, PathStage,
};
use crate::resources::round_ms;

/// One row of the budget table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetRow {
    /// The stage (its label in JSON, as the table prints it).
    #[serde(serialize_with = "Stage::serialize_label")]
    pub stage: Stage,
    /// Its budget, ms.
    pub budget_ms: u32,
    /// Its modelled p95 (of the stage alone, for the messages that run it), ms.
    pub modelled_p95_ms: f64,
    /// Budget minus modelled (negative when over), ms.
    pub slack_ms: f64,
    /// Whether the stage counts towards the end-to-end path.
    pub on_critical_path: bool,
    /// How the modelled value was obtained.
    pub basis: String,
}

/// The budget table and end-to-end result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetTable {
    /// One row per stage, in path order.
    pub rows: Vec<BudgetRow>,
    /// Modelled p95 of the whole path (Monte Carlo over the stage
    /// distributions, parallel stages as a max), ms.
    pub critical_path_ms: f64,
    /// Modelled median of the whole path, ms.
    pub critical_path_p50_ms: f64,
    /// Modelled 99th percentile of the whole path, ms.
    pub critical_path_p99_ms: f64,
    /// For comparison only: the sum of the on-path stage p95s (the max of
    /// the parallel pair's), the figure the check used before the path was
    /// composed as distributions. Neither a bound nor the verdict.
    pub sum_of_stage_p95_ms: f64,
    /// Sum of the budgets along the same path, ms.
    pub budgeted_path_ms: u32,
    /// Margin kept out of the stage budgets, ms.
    pub margin_ms: u32,
    /// The end-to-end target, ms.
    pub end_to_end_p95_ms: u32,
    /// Target minus (critical path + margin), ms.
    pub slack_ms: f64,
    /// Whether the ML intent stage is on the path (any message reaches it;
    /// it enters the path as a branch with that share).
    pub intent_ml_on_path: bool,
    /// Each response tier's own path (its stream in place of the slowest
    /// covered tier's; the template tier without the LLM stages), the
    /// complex tier included.
    pub tiers: Vec<TierLatency>,
    /// The p95 over all messages, the tier mix drawn message by message
    /// (the complex tier included), ms. Not the verdict: the seed's
    /// end-to-end target covers the tiers marked `within_end_to_end_target`.
    pub all_messages_p95_ms: f64,
    /// Whether every stage and the path fit.
    pub passes: bool,
    /// Observations about the budgets themselves (not failures).
    pub notes: Vec<String>,
}

impl BudgetTable {
    /// The row of a stage.
    pub fn row(&self, stage: Stage) -> Option<&BudgetRow> {
        self.rows.iter().find(|r| r.stage == stage)
    }
}

/// One response tier's latency as the customer sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierLatency {
    /// The tier's name (`template`, `simple_llm`, `standard_llm`, `complex`).
    pub tier: String,
    /// Its share of messages, percent.
    pub share_pct: f64,
    /// First token from message receipt, p95 (no LLM: none), ms.
    pub first_token_p95_ms: Option<f64>,
    /// End to end, p95 (the path without the margin), ms.
    pub end_to_end_p95_ms: f64,
    /// Whether the seed's end-to-end target covers this tier.
    pub within_end_to_end_target: bool,
}

/// Latency distribution per stage, with how each was obtained, and the
/// response tiers' own streams.
#[derive(Debug, Clone)]
pub(crate) struct Modelled {
    pub values: Vec<(Stage, Dist, String)>,
    pub tiers: Vec<TierPath>,
}

/// A response tier as the per-tier paths take it.
#[derive(Debug, Clone)]
pub(crate) struct TierPath {
    pub name: &'static str,
    /// Share of messages, 0 to 1.
    pub share: f64,
    /// Its model's first token; `None` for a tier without the LLM.
    pub first_token: Option<Dist>,
    /// Its stream (first to last token) at its model's speed; `None` for a
    /// tier without the LLM.
    pub streaming: Option<Dist>,
    pub within_target: bool,
}

/// The stages the runtime's `first_token` covers: from message receipt
/// (the edge is before it) to the first token frame written, so every
/// stage before the model's first token, and that.
const BEFORE_FIRST_TOKEN: [Stage; 8] = [
    Stage::Auth,
    Stage::MemoryRead,
    Stage::IntentRules,
    Stage::IntentMl,
    Stage::CacheHit,
    Stage::ServiceCalls,
    Stage::Retrieval,
    Stage::FirstToken,
];

/// The stages of a tier answered without the LLM (a template or a cached
/// answer): no service calls, retrieval, model or guardrails.
const WITHOUT_LLM: [Stage; 7] = [
    Stage::Edge,
    Stage::Auth,
    Stage::MemoryRead,
    Stage::IntentRules,
    Stage::IntentMl,
    Stage::CacheHit,
    Stage::Delivery,
];

/// The parallel pair's group in [`PathStage::parallel_group`].
const PARALLEL: u32 = 1;

/// Checks every stage and the end-to-end path; returns the table and every
/// failure as an error.
pub(crate) fn check(
    budgets: &LatencyBudgets,
    modelled: &Modelled,
    intent_ml_share: f64,
) -> (BudgetTable, Vec<SizingError>) {
    let ml_share = intent_ml_share.clamp(0.0, 1.0);
    let intent_ml_on_path = ml_share > 0.0;
    let parallel = [Stage::ServiceCalls, Stage::Retrieval];
    let share = |s: Stage| match s {
        Stage::StreamJitter => 0.0,
        Stage::IntentMl => ml_share,
        _ => 1.0,
    };
    let on_path = |s: Stage| share(s) > 0.0;

    // Every budgeted stage goes through the composition (a stage off the
    // path with share 0), so each row's p95 comes from the same place.
    let missing = (Dist::Point(f64::INFINITY), String::from("not modelled"));
    let stages: Vec<(Stage, &Dist, &str)> = Stage::BUDGETED
        .into_iter()
        .map(|stage| {
            let (d, b) = modelled
                .values
                .iter()
                .find(|(s, _, _)| *s == stage)
                .map_or((&missing.0, missing.1.as_str()), |(_, d, b)| {
                    (d, b.as_str())
                });
            (stage, d, b)
        })
        .collect();
    // The path with only the stages `keep` accepts (the others off it, so
    // every draw of the rest stays put) and, optionally, another tier's
    // model: its first token and stream.
    let variant = |keep: &dyn Fn(Stage) -> bool, tier: Option<&TierPath>| -> Vec<PathStage> {
        stages
            .iter()
            .map(|(stage, d, _)| PathStage {
                dist: match (stage, tier) {
                    (
                        Stage::FirstToken,
                        Some(TierPath {
                            first_token: Some(f),
                            ..
                        }),
                    ) => f.clone(),
                    (
                        Stage::Streaming,
                        Some(TierPath {
                            streaming: Some(s), ..
                        }),
                    ) => s.clone(),
                    _ => (*d).clone(),
                },
                share: if keep(*stage) { share(*stage) } else { 0.0 },
                parallel_group: parallel.contains(stage).then_some(PARALLEL),
            })
            .collect()
    };
    let figures = compose(&variant(&|_| true, None));
    // The customer's first token: from receipt, every stage before it.
    let (mut before_first, _) =
        compose_samples(&variant(&|s| BEFORE_FIRST_TOKEN.contains(&s), None));
    let first_token_from_receipt = empirical_quantile(&mut before_first, 0.95);
    let tier_samples: Vec<(&TierPath, Vec<f64>)> = modelled
        .tiers
        .iter()
        .map(|t| {
            let path = match &t.streaming {
                Some(_) => variant(&|_| true, Some(t)),
                None => variant(&|s| WITHOUT_LLM.contains(&s), None),
            };
            (t, compose_samples(&path).0)
        })
        .collect();
    let tiers: Vec<TierLatency> = tier_samples
        .iter()
        .map(|(t, samples)| TierLatency {
            tier: t.name.to_owned(),
            share_pct: round_ms(t.share * 100.0),
            // The same draws before the model, this tier's model after.
            first_token_p95_ms: t.first_token.is_some().then(|| {
                let (mut s, _) =
                    compose_samples(&variant(&|s| BEFORE_FIRST_TOKEN.contains(&s), Some(t)));
                round_ms(empirical_quantile(&mut s, 0.95))
            }),
            end_to_end_p95_ms: round_ms(empirical_quantile(&mut samples.clone(), 0.95)),
            within_end_to_end_target: t.within_target,
        })
        .collect();
    let all_messages_p95_ms = round_ms(mixture_quantile(
        &tier_samples
            .iter()
            .map(|(t, s)| (t.share, s.as_slice()))
            .collect::<Vec<_>>(),
        0.95,
    ));

    let mut errors = Vec::new();
    let mut rows = Vec::new();
    let (mut serial_sum, mut par_max) = (0.0_f64, 0.0_f64);
    let (mut budgeted, mut par_budget) = (0_u32, 0_u32);
    for ((stage, _, basis), p95) in stages.iter().zip(&figures.stage_p95_ms) {
        let stage = *stage;
        let budget = stage.budget_ms(budgets);
        let own = round_ms(*p95);
        // The first token as the runtime times it: from message receipt.
        let (p95, basis) = if stage == Stage::FirstToken {
            (
                first_token_from_receipt,
                format!(
                    "from message receipt: the stages before it (auth to retrieval, Monte Carlo) and the model's first token, {basis}"
                ),
            )
        } else {
            (*p95, (*basis).to_owned())
        };
        let value = round_ms(p95);
        let slack = f64::from(budget) - value;
        if slack < -1e-9 {
            errors.push(SizingError::StageOverBudget {
                stage,
                modelled_ms: value,
                budget_ms: budget,
                shortfall_ms: round_ms(-slack),
            });
        }
        if on_path(stage) {
            if parallel.contains(&stage) {
                par_max = par_max.max(own);
                par_budget = par_budget.max(budget);
            } else {
                serial_sum += own;
                budgeted = budgeted.saturating_add(budget);
            }
        }
        rows.push(BudgetRow {
            stage,
            budget_ms: budget,
            modelled_p95_ms: value,
            slack_ms: round_ms(slack),
            on_critical_path: on_path(stage),
            basis,
        });
    }
    let budgeted = budgeted.saturating_add(par_budget);
    let path = round_ms(figures.p95_ms);
    let slack = f64::from(budgets.end_to_end_p95) - (path + f64::from(budgets.margin));
    if slack < -1e-9 {
        errors.push(SizingError::EndToEndOverBudget {
            modelled_ms: path,
            margin_ms: budgets.margin,
            end_to_end_ms: budgets.end_to_end_p95,
            shortfall_ms: round_ms(-slack),
        });
    }

    let mut notes = Vec::new();
    let allocated = u64::from(budgeted) + u64::from(budgets.margin);
    if allocated > u64::from(budgets.end_to_end_p95) {
        // Not an error: the modelled path is what must fit. But a stage may
        // only use its whole budget while others leave slack.
        notes.push(format!(
            "stage budgets along the path sum to {budgeted} ms + {} ms margin = {allocated} ms, more than end_to_end_p95 {} ms{}",
            budgets.margin,
            budgets.end_to_end_p95,
            if intent_ml_on_path {
                format!(
                    " (the ML intent budget counts: {:.0}% of messages reach it)",
                    ml_share * 100.0
                )
            } else {
                String::new()
            }
        ));
    }
    let table = BudgetTable {
        rows,
        critical_path_ms: path,
        critical_path_p50_ms: round_ms(figures.p50_ms),
        critical_path_p99_ms: round_ms(figures.p99_ms),
        sum_of_stage_p95_ms: round_ms(serial_sum + par_max),
        budgeted_path_ms: budgeted,
        margin_ms: budgets.margin,
        end_to_end_p95_ms: budgets.end_to_end_p95,
        slack_ms: round_ms(slack),
        intent_ml_on_path,
        tiers,
        all_messages_p95_ms,
        passes: errors.is_empty(),
        notes,
    };
    (table, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budgets() -> LatencyBudgets {
        LatencyBudgets::SEED
    }

    fn modelled(f: impl Fn(Stage) -> f64) -> Modelled {
        Modelled {
            values: Stage::BUDGETED
                .into_iter()
                .map(|s| (s, Dist::Point(f(s)), "test".to_owned()))
                .collect(),
            tiers: Vec::new(),
        }
    }

    #[test]
    fn parallel_stages_take_the_max_and_ml_joins_when_common() {
        let m = modelled(|s| match s {
            Stage::ServiceCalls => 150.0,
            Stage::Retrieval => 120.0,
            _ => 10.0,
        });
        // Serial on-path stages without ML: edge, auth, memory, rules, cache,
        // first token, streaming, guardrails, delivery = 9 × 10 + max(150, 120)
        // = 240 ms. With 4% of messages through ML the path is 250 ms for
        // those 4% and 240 ms for the other 96%, so its p95 is 240 ms: the ML
        // branch is on the path, but too rare to reach the p95.
        let (t, e) = check(&budgets(), &m, 0.04);
        assert!(e
            .iter()
            .all(|e| !matches!(e, SizingError::EndToEndOverBudget { .. })));
        assert_eq!(t.critical_path_ms, 240.0);
        assert!(t.intent_ml_on_path);
        // 6% of messages through ML: more than 5% of paths are 250 ms.
        let (t, _) = check(&budgets(), &m, 0.06);
        assert_eq!(t.critical_path_ms, 250.0);
        let (t, _) = check(&budgets(), &m, 0.0);
        assert!(!t.intent_ml_on_path);
        assert_eq!(t.critical_path_ms, 240.0);
        let (t, _) = check(&budgets(), &m, 0.4);
        assert_eq!(t.critical_path_ms, 250.0);
        assert_eq!(
            (t.critical_path_p50_ms, t.critical_path_p99_ms),
            (240.0, 250.0)
        );
        assert_eq!(t.sum_of_stage_p95_ms, 250.0);
        assert!(t.intent_ml_on_path);
        assert_eq!(t.notes.len(), 1, "1947 + 200 > 2000 is worth a note");
        // Seed budgets along the path with ML: 1947 ms.
        assert_eq!(
            t.budgeted_path_ms,
            30 + 20 + 10 + 50 + 150 + 2 + 200 + 400 + 985 + 50 + 50
        );
    }

    /// The example through the check: memory read and cache each
    /// 0 ms for 96% of messages and 13 ms for 4% (independent), every other
    /// stage a fixed 10 ms, ML off the path. Each of the two stages has
    /// p95 0, so the sum of stage p95s is 9 × 10 − 2 × 10 + 150 (service
    /// calls) = 220 ms. But P(either is 13 ms) = 1 − 0.96² = 7.84% > 5%, so
    /// the path's p95 is 220 + 13 = 233 ms.
    #[test]
    fn rare_slow_branches_raise_the_path_p95_above_the_sum_of_p95s() {
        let mut m = modelled(|s| match s {
            Stage::ServiceCalls => 150.0,
            Stage::Retrieval => 120.0,
            _ => 10.0,
        });
        for (s, d, _) in &mut m.values {
            if matches!(s, Stage::MemoryRead | Stage::CacheHit) {
                *d = Dist::Point(13.0).sometimes(0.04);
            }
        }
        let (t, _) = check(&budgets(), &m, 0.0);
        assert_eq!(
            t.row(Stage::MemoryRead).map(|r| r.modelled_p95_ms),
            Some(0.0)
        );
        assert_eq!(t.sum_of_stage_p95_ms, 220.0);
        assert_eq!(t.critical_path_ms, 233.0);
    }

    #[test]
    fn each_stage_over_budget_is_named() {
        let m = modelled(|s| if s == Stage::FirstToken { 450.0 } else { 1.0 });
        let (t, e) = check(&budgets(), &m, 0.4);
        assert!(!t.passes);
        // From receipt: auth, memory, rules, ML (40% of messages, so in the
        // p95), cache and max(service calls, retrieval), 1 ms each, before
        // the model's 450 ms: 456 ms.
        assert_eq!(
            e,
            vec![SizingError::StageOverBudget {
                stage: Stage::FirstToken,
                modelled_ms: 456.0,
                budget_ms: 400,
                shortfall_ms: 56.0
            }]
        );
    }

    #[test]
    fn end_to_end_overrun_is_reported_even_when_stages_fit() {
        // The first token is timed from receipt, so its budget covers the
        // stages before it: 20 + 10 + 50 + 150 + 2 + 200 + 400 = 832 ms.
        let mut b = budgets();
        b.first_token = 832;
        let m = modelled(|s| f64::from(s.budget_ms(&budgets())));
        let (t, e) = check(&b, &m, 0.4);
        // Every stage exactly at budget, ML on the path: 1947 ms + 200 ms margin.
        assert_eq!(t.critical_path_ms, 1947.0);
        assert_eq!(
            e,
            vec![SizingError::EndToEndOverBudget {
                modelled_ms: 1947.0,
                margin_ms: 200,
                end_to_end_ms: 2000,
                shortfall_ms: 147.0
            }]
        );
    }
}
