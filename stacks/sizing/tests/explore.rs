//! The explorer (issue 15): which inputs decide a resource and where each
//! changes it, and the plan across a traffic range. Flip points are worked
//! by hand from the failure and stream rules in the comments.

mod common;

use common::*;
use sizing::explore::{self, ExploreError};
use sizing::*;

fn data() -> (&'static Assumptions, &'static Prices) {
    (
        Assumptions::embedded().expect("assumptions"),
        Prices::embedded().expect("prices"),
    )
}

#[test]
fn the_service_flips_where_the_stream_rules_say() {
    let (a, p) = data();
    let e = explore::explain(&prod(), a, p, "service").expect("explain");
    assert_eq!(e.result, "7 × 1 vCPU / 2 GiB (in-flight streams)");
    let sessions = e
        .inputs
        .iter()
        .find(|s| s.input == "targets.traffic.concurrent_sessions")
        .expect("sessions decide the service");
    assert_eq!(sessions.origin, explore::Origin::Environment);
    // Above: 7 tasks over 3 AZs lose 3 with an AZ; the 4 left hold
    // 4 × 250 = 1,000 streams. Streams grow in proportion to sessions from
    // 984.77 at 10,000, so past 10,000 × 1,000 / 984.77 = 10,154.7 sessions
    // the AZ loss needs an 8th task. The bisection (8 geometric steps over
    // ×1 to ×4, 0.54% each) lands at or just above it.
    let above = sessions.flips_above.as_ref().expect("above");
    assert!((10_154.0..=10_210.0).contains(&above.value), "{above:?}");
    assert!(above.result.starts_with("8 × 1 vCPU / 2 GiB"), "{above:?}");
    // Below: healthy, streams need ⌈streams / 150⌉ tasks (250 × 0.6); 6 do
    // below 900 streams: 10,000 × 900 / 984.77 = 9,139.2 sessions (6 tasks
    // over 3 AZs lose 2, and 4 × 250 = 1,000 still hold 900).
    let below = sessions.flips_below.as_ref().expect("below");
    assert!((9_080.0..=9_140.0).contains(&below.value), "{below:?}");
    assert!(below.result.starts_with("6 × 1 vCPU / 2 GiB"), "{below:?}");
    // Sorted by the nearest change: the design limit of 250 streams per
    // task (a 1.6% move: 984.77 / 4 = 246.2 per task after an AZ loss)
    // comes before the sessions.
    let pos = |name: &str| e.inputs.iter().position(|s| s.input == name);
    assert!(pos("orchestrator.max_streams_per_task") < pos("targets.traffic.concurrent_sessions"));
    let limit = &e.inputs[pos("orchestrator.max_streams_per_task").expect("limit")];
    let b = limit.flips_below.as_ref().expect("below");
    assert!((244.9..=246.2).contains(&b.value), "{b:?}");
    // An input that does not feed the service is not listed.
    assert!(pos("dax.hit_p95_ms").is_none());
    // Only the configured model's figures are inputs.
    assert!(e
        .inputs
        .iter()
        .filter(|s| s.input.starts_with("bedrock.models."))
        .all(|s| s.input.contains("claude-3-5-sonnet-20240620")));
}

#[test]
fn a_tier_mix_that_must_sum_to_100_is_a_range_edge_not_a_change() {
    // Every tier share alone is invalid away from its value (the mix must
    // sum to 100), so none of them is listed for any resource.
    let (a, p) = data();
    let e = explore::explain(&prod(), a, p, "redis").expect("explain");
    assert!(
        !e.inputs
            .iter()
            .any(|s| s.input.starts_with("targets.tier_mix")),
        "{:#?}",
        e.inputs
    );
    assert!(matches!(
        explore::explain(&prod(), a, p, "nope"),
        Err(ExploreError::UnknownResource(..))
    ));
}

#[test]
fn a_sweep_grows_capacity_with_load_and_names_bad_fields() {
    let (a, p) = data();
    let values = explore::steps(2_000.0, 20_000.0, 4);
    assert_eq!(values, [2_000.0, 8_000.0, 14_000.0, 20_000.0]);
    let rows = explore::sweep(&prod(), a, p, "sessions", &values).expect("sweep");
    assert_eq!(rows.len(), 4);
    for w in rows.windows(2) {
        assert!(w[0].tasks <= w[1].tasks, "{rows:#?}");
        assert!(w[0].bill_monthly_usd < w[1].bill_monthly_usd, "{rows:#?}");
    }
    // Every step sizes within prod's accepted shortfalls (the LLM stages
    // do not depend on load).
    assert!(rows.iter().all(|r| r.verdict == "accepted"), "{rows:#?}");
    // At 10,000 it is the shipped plan.
    let at = explore::sweep(&prod(), a, p, "concurrent_sessions", &[10_000.0]).expect("sweep");
    let plan = size(&prod()).expect("plan");
    assert_eq!(at[0].tasks, plan.service.tasks);
    close_to(at[0].critical_path_ms, plan.budget.critical_path_ms);
    // A ratio past 1 is invalid, not an error of the sweep.
    let bad = explore::sweep(&prod(), a, p, "cache_hit_ratio", &[0.5, 1.5]).expect("sweep");
    assert_eq!(bad[1].verdict, "invalid");
    assert!(matches!(
        explore::sweep(&prod(), a, p, "colour", &[1.0]),
        Err(ExploreError::UnknownField(_))
    ));
}

fn close_to(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-9, "{a} vs {b}");
}
