//! Property tests: more traffic never yields less capacity, a tighter budget
//! never yields less capacity, and sizing is deterministic.

mod common;

use proptest::prelude::*;
use sizing::*;

/// Every count the plan sizes, so "less capacity" means any of them shrinking.
fn counts(p: &SizingPlan) -> Vec<(&'static str, u64)> {
    vec![
        ("service.tasks", u64::from(p.service.tasks)),
        ("service.min_tasks", u64::from(p.service.min_tasks)),
        ("service.max_tasks", u64::from(p.service.max_tasks)),
        (
            "service.cpu_units_total",
            u64::from(p.service.tasks) * u64::from(p.service.cpu),
        ),
        ("redis.shards", u64::from(p.redis.shards)),
        ("redis.nodes", u64::from(p.redis.nodes)),
        ("dax.nodes", u64::from(p.dax.nodes)),
        ("dynamodb.rcu", u64::from(p.dynamodb.rcu)),
        ("dynamodb.wcu", u64::from(p.dynamodb.wcu)),
        (
            "opensearch.search_ocu_min",
            u64::from(p.opensearch.search_ocu_min),
        ),
        (
            "opensearch.search_ocu_max",
            u64::from(p.opensearch.search_ocu_max),
        ),
        (
            "opensearch.indexing_ocu_min",
            u64::from(p.opensearch.indexing_ocu_min),
        ),
        ("sagemaker.instances", u64::from(p.sagemaker.instances)),
        (
            "sagemaker.min_instances",
            u64::from(p.sagemaker.min_instances),
        ),
        (
            "sagemaker.max_instances",
            u64::from(p.sagemaker.max_instances),
        ),
    ]
}

fn assert_no_less(before: &SizingPlan, after: &SizingPlan) -> Result<(), TestCaseError> {
    for ((name, b), (_, a)) in counts(before).into_iter().zip(counts(after)) {
        prop_assert!(a >= b, "{name} fell from {b} to {a}");
    }
    Ok(())
}

prop_compose! {
    fn environment()(
        sessions in 1u32..=60_000,
        msgs in 0.2f64..=6.0,
        peak in 1.0f64..=3.0,
        hit in 0.0f64..=1.0,
        rules in 0.0f64..=1.0,
        is_production in any::<bool>(),
        failover in any::<bool>(),
        az in 1u32..=4,
    ) -> SizingInput {
        let mut i = common::prod();
        i.env_name = "prop".into();
        i.is_production = is_production;
        i.failover_required = failover;
        i.az_count = az;
        let t = &mut i.targets.traffic;
        t.concurrent_sessions = sessions;
        t.messages_per_session_per_minute = msgs;
        t.peak_factor = peak;
        t.cache_hit_ratio = hit;
        t.rules_confident_share = rules;
        i
    }
}

fn has_budget_error(input: &SizingInput) -> bool {
    match size(input) {
        Ok(_) => false,
        Err(e) => e.errors.iter().any(|e| {
            matches!(
                e,
                SizingError::StageOverBudget { .. } | SizingError::EndToEndOverBudget { .. }
            )
        }),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn more_traffic_never_yields_less_capacity(
        base in environment(),
        which in 0usize..3,
        factor in 1.0f64..=4.0,
    ) {
        let mut more = base.clone();
        let t = &mut more.targets.traffic;
        match which {
            0 => {
                t.concurrent_sessions =
                    ((f64::from(t.concurrent_sessions) * factor).round() as u32).max(t.concurrent_sessions)
            }
            1 => t.messages_per_session_per_minute *= factor,
            _ => t.peak_factor *= factor,
        }
        let before = common::plan_of(&base);
        let after = common::plan_of(&more);
        assert_no_less(&before, &after)?;
    }

    #[test]
    fn a_tighter_budget_never_yields_less_capacity(
        base in environment(),
        stage in 0usize..Stage::BUDGETED.len(),
        cut in 0.0f64..=1.0,
    ) {
        let stage = Stage::BUDGETED[stage];
        let before = common::plan_of(&base);
        let row = before.budget.row(stage).cloned();
        let slack = row.as_ref().map_or(0.0, |r| r.slack_ms.max(0.0));
        // Tighten by up to the stage's slack (at least 1 ms), so the target
        // stays one that more capacity can meet.
        let delta = ((slack * cut).floor() as u32).max(1);
        let mut tighter = base.clone();
        let field = stage.budget_mut(&mut tighter.targets.latency_ms);
        *field = field.saturating_sub(delta);
        // Compare only targets that can still be met: a budget no capacity
        // can meet is an error, and its plan is not a sizing to compare.
        prop_assume!(!has_budget_error(&base) && !has_budget_error(&tighter));
        let after = common::plan_of(&tighter);
        assert_no_less(&before, &after)?;
    }

    #[test]
    fn sizing_is_deterministic(input in environment()) {
        let a = size(&input);
        let b = size(&input);
        let plan = |r: &Result<SizingPlan, SizingErrors>| match r {
            Ok(p) => Some(p.clone()),
            Err(e) => e.plan.as_deref().cloned(),
        };
        prop_assert_eq!(plan(&a), plan(&b));
        prop_assert_eq!(
            a.as_ref().err().map(|e| e.errors.clone()),
            b.as_ref().err().map(|e| e.errors.clone())
        );
    }
}
