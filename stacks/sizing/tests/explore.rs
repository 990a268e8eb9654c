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
        Prices::embedded_for("us-east-1").expect("prices"),
    )
}

#[test]
fn the_service_flips_where_the_stream_rules_say() {
    let (a, p) = data();
    let e = explore::explain(&prod(), a, p, "service").expect("explain");
    assert_eq!(e.result, "6 × 1 vCPU / 2 GiB (in-flight streams)");
    let sessions = e
        .inputs
        .iter()
        .find(|s| s.input == "targets.traffic.concurrent_sessions")
        .expect("sessions decide the service");
    assert_eq!(sessions.origin, explore::Origin::Environment);
    // Streams grow in proportion to sessions from 819.51 at 10,000
    // (plan.rs prod_rates_by_hand). Healthy, streams need ⌈streams / 150⌉
    // tasks (250 × 0.6); losing an AZ, the tasks left must hold them at 250
    // each.
    // Above: past 900 streams the healthy rule needs a 7th task, at
    // 10,000 × 900 / 819.51 = 10,982.2 sessions (7 over 3 AZs lose 3, and
    // 4 × 250 = 1,000 still hold 900). The bisection (geometric steps of
    // 0.54%) lands at or just above it.
    let above = sessions.flips_above.as_ref().expect("above");
    assert!((10_982.0..=11_045.0).contains(&above.value), "{above:?}");
    assert!(above.result.starts_with("7 × 1 vCPU / 2 GiB"), "{above:?}");
    // Below: 5 tasks do from 750 streams down (healthy 5 × 150; 5 over 3
    // AZs lose 2 and 3 × 250 = 750 hold them): 10,000 × 750 / 819.51 =
    // 9,151.8 sessions.
    let below = sessions.flips_below.as_ref().expect("below");
    assert!((9_100.0..=9_152.0).contains(&below.value), "{below:?}");
    assert!(below.result.starts_with("5 × 1 vCPU / 2 GiB"), "{below:?}");
    // The design limit of 250 streams per task: near 819.51 / (6 × 0.6) =
    // 227.6 the healthy rule needs a 7th task (a 9% move, within one
    // bisection step of the sessions').
    let pos = |name: &str| e.inputs.iter().position(|s| s.input == name);
    let limit = &e.inputs[pos("orchestrator.max_streams_per_task").expect("limit")];
    let b = limit.flips_below.as_ref().expect("below");
    assert!((226.3..=228.9).contains(&b.value), "{b:?}");
    assert!(b.result.starts_with("7 × 1 vCPU / 2 GiB"), "{b:?}");
    // An input that does not feed the service is not listed.
    assert!(pos("dax.hit_p95_ms").is_none());
    // Only the configured models' figures are inputs: the default's and
    // the simple tier's (llm.tiers), whose stream time sets its streams.
    let models: Vec<&str> = e
        .inputs
        .iter()
        .filter(|s| s.input.starts_with("bedrock.models."))
        .map(|s| s.input.as_str())
        .collect();
    assert!(
        models
            .iter()
            .all(|s| s.contains("claude-3-5-sonnet-20240620") || s.contains("nova-micro-v1")),
        "{models:?}"
    );
    assert!(
        models.iter().any(|s| s.contains("nova-micro-v1")),
        "{models:?}"
    );
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
