//! The latency budget check along the critical path.
//!
//! Each stage gets a modelled p95 from the sized resources (or from the
//! assumptions, for stages mangactl does not size) and is checked against its
//! own budget. The critical path is the seed's: edge, auth, memory read,
//! intent, cache, max(service calls, retrieval), first token, streaming,
//! guardrails, delivery. Parallel stages take the max. Summing stage p95s
//! over-estimates the p95 of the sum, so a passing check is conservative.
//!
//! The ML intent stage is on the path when more than 5% of messages reach
//! it: then the p95 message is one the rules could not settle.

use serde::Serialize;

use crate::error::SizingError;
use crate::latency::{LatencyBudgets, Stage};

/// One row of the budget table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetRow {
    /// The stage (its label in JSON, as the table prints it).
    #[serde(serialize_with = "Stage::serialize_label")]
    pub stage: Stage,
    /// Its budget, ms.
    pub budget_ms: u32,
    /// Its modelled p95, ms.
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
    /// Modelled p95 of the critical path (parallel stages take the max), ms.
    pub critical_path_ms: f64,
    /// Sum of the budgets along the same path, ms.
    pub budgeted_path_ms: u32,
    /// Margin kept out of the stage budgets, ms.
    pub margin_ms: u32,
    /// The end-to-end target, ms.
    pub end_to_end_p95_ms: u32,
    /// Target minus (critical path + margin), ms.
    pub slack_ms: f64,
    /// Whether the ML intent stage is on the path (more than 5% of messages use it).
    pub intent_ml_on_path: bool,
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

/// Modelled p95 per stage, with how each was obtained.
#[derive(Debug, Clone)]
pub(crate) struct Modelled {
    pub values: Vec<(Stage, f64, String)>,
}

impl Modelled {
    fn get(&self, stage: Stage) -> f64 {
        self.values
            .iter()
            .find(|(s, _, _)| *s == stage)
            .map_or(f64::INFINITY, |(_, v, _)| *v)
    }
}

/// Checks every stage and the end-to-end path; returns the table and every
/// failure as an error.
pub(crate) fn check(
    budgets: &LatencyBudgets,
    modelled: &Modelled,
    intent_ml_share: f64,
) -> (BudgetTable, Vec<SizingError>) {
    let intent_ml_on_path = intent_ml_share > 1.0 - crate::erlang::P95;
    let parallel = [Stage::ServiceCalls, Stage::Retrieval];
    let on_path = |s: Stage| match s {
        Stage::StreamJitter => false,
        Stage::IntentMl => intent_ml_on_path,
        _ => true,
    };

    let mut errors = Vec::new();
    let mut rows = Vec::new();
    for stage in Stage::BUDGETED {
        let budget = stage.budget_ms(budgets);
        let (value, basis) = modelled.values.iter().find(|(s, _, _)| *s == stage).map_or(
            (f64::INFINITY, String::from("not modelled")),
            |(_, v, b)| (*v, b.clone()),
        );
        let slack = f64::from(budget) - value;
        if slack < -1e-9 {
            errors.push(SizingError::StageOverBudget {
                stage,
                modelled_ms: value,
                budget_ms: budget,
                shortfall_ms: crate::resources::round_ms(-slack),
            });
        }
        rows.push(BudgetRow {
            stage,
            budget_ms: budget,
            modelled_p95_ms: value,
            slack_ms: crate::resources::round_ms(slack),
            on_critical_path: on_path(stage),
            basis,
        });
    }

    let serial = Stage::BUDGETED
        .into_iter()
        .filter(|s| on_path(*s) && !parallel.contains(s));
    let par_model = parallel
        .iter()
        .map(|s| modelled.get(*s))
        .fold(0.0_f64, f64::max);
    let par_budget = parallel
        .iter()
        .map(|s| s.budget_ms(budgets))
        .max()
        .unwrap_or(0);
    let (mut path, mut budgeted) = (par_model, par_budget);
    for s in serial {
        path += modelled.get(s);
        budgeted = budgeted.saturating_add(s.budget_ms(budgets));
    }
    let path = crate::resources::round_ms(path);
    let slack = f64::from(budgets.end_to_end_p95) - f64::from(budgets.margin) - path;
    if slack < -1e-9 {
        errors.push(SizingError::EndToEndOverBudget {
            modelled_ms: path,
            margin_ms: budgets.margin,
            end_to_end_ms: budgets.end_to_end_p95,
            shortfall_ms: crate::resources::round_ms(-slack),
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
                " (the ML intent stage is on the path because more than 5% of messages reach it)"
            } else {
                ""
            }
        ));
    }
    let table = BudgetTable {
        rows,
        critical_path_ms: path,
        budgeted_path_ms: budgeted,
        margin_ms: budgets.margin,
        end_to_end_p95_ms: budgets.end_to_end_p95,
        slack_ms: crate::resources::round_ms(slack),
        intent_ml_on_path,
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
                .map(|s| (s, f(s), "test".to_owned()))
                .collect(),
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
        // first token, streaming, guardrails, delivery = 9 × 10 + max(150, 120).
        let (t, e) = check(&budgets(), &m, 0.04);
        assert!(e
            .iter()
            .all(|e| !matches!(e, SizingError::EndToEndOverBudget { .. })));
        assert_eq!(t.critical_path_ms, 240.0);
        assert!(!t.intent_ml_on_path);
        let (t, _) = check(&budgets(), &m, 0.4);
        assert_eq!(t.critical_path_ms, 250.0);
        assert!(t.intent_ml_on_path);
        assert_eq!(t.notes.len(), 1, "1947 + 200 > 2000 is worth a note");
        // Seed budgets along the path with ML: 1947 ms.
        assert_eq!(
            t.budgeted_path_ms,
            30 + 20 + 10 + 50 + 150 + 2 + 200 + 400 + 985 + 50 + 50
        );
    }

    #[test]
    fn each_stage_over_budget_is_named() {
        let m = modelled(|s| if s == Stage::FirstToken { 450.0 } else { 1.0 });
        let (t, e) = check(&budgets(), &m, 0.4);
        assert!(!t.passes);
        assert_eq!(
            e,
            vec![SizingError::StageOverBudget {
                stage: Stage::FirstToken,
                modelled_ms: 450.0,
                budget_ms: 400,
                shortfall_ms: 50.0
            }]
        );
    }

    #[test]
    fn end_to_end_overrun_is_reported_even_when_stages_fit() {
        let m = modelled(|s| f64::from(s.budget_ms(&budgets())));
        let (t, e) = check(&budgets(), &m, 0.4);
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
