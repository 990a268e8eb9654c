//! Failure sizing (issue 15): with one AZ's nodes (at least one) gone every
//! pool stays stable and, in prod, its stage within budget. Expectations are
//! worked by hand from data/assumptions.yaml in the comments.

mod common;

use common::*;
use sizing::*;


#[test]
fn seed_prod_survives_one_az_for_every_pool() {
    let plan = size(&prod()).unwrap_or_else(|e| panic!("{e}"));
    let l = &plan.budget;
    let budget = |stage: Stage| f64::from(l.row(stage).expect("row").budget_ms);
    for (name, a, stage) in [
        ("service", &plan.service.assessment, None),
        ("redis", &plan.redis.assessment, Some(Stage::CacheHit)),
        ("dax", &plan.dax.assessment, Some(Stage::MemoryRead)),
        (
            "opensearch",
            &plan.opensearch.assessment,
            Some(Stage::Retrieval),
        ),
        (
            "sagemaker",
            &plan.sagemaker.assessment,
            Some(Stage::IntentMl),
        ),
    ] {
        let d = a.degraded_utilisation.unwrap_or(f64::INFINITY);
        assert!(d < 1.0, "{name}: degraded ρ {d}");
        assert!(
            a.notes
                .iter()
                .any(|n| n.contains("one AZ of") || n.contains("primary lost")),
            "{name}: {:?}",
            a.notes
        );
        if let Some(stage) = stage {
            let p = a.degraded_p95_ms.expect("degraded p95");
            assert!(p <= budget(stage), "{name}: degraded p95 {p} ms");
        }
    }
    // SageMaker by hand: 2 × ml.c6i.2xlarge, one lost → 8 workers for
    // 4 Erlangs. Erlang C(8, 4) = 0.0590; the M/M/c wait p95 would be
    // ln(0.0590 / 0.05) / (8 × 50 − 200) = 0.83 ms. Inference is log-normal
    // with mean 20 ms and p95 35 ms: 1.645σ − σ²/2 = ln 1.75 gives σ = 0.385,
    // C_s² = e^σ² − 1 = 0.160, so Allen–Cunneen scales the wait by
    // (1 + 0.160) / 2 = 0.58: 0.48 ms. 15 ms overhead + 35 ms p95 + 0.48 =
    // 50.5 ms.
    close(
        plan.sagemaker.assessment.degraded_p95_ms.expect("p95"),
        50.5,
        0.05,
    );
    // DAX by hand, the runtime's reads (all on the primary): 500 msg/s × 7
    // reads (head + 6 turns) = 3,500/s, 3,395 hits + 105 misses, + 500
    // consistent head reads passed through (cost of a miss), + 1,000
    // writes/s: 3,395 + 605 × 10 + 1,000 × 25 = 34,445 normalized. One of 3
    // dax.r5.large lost, the new primary takes the same: 34,445 / 60,000 =
    // 0.574, as healthy.
    close(
        plan.dax.assessment.degraded_utilisation.expect("ρ"),
        34_445.0 / 60_000.0,
        1e-4,
    );
    close(
        plan.dax.assessment.utilisation_at_peak,
        34_445.0 / 60_000.0,
        1e-4,
    );
    // Redis: a replica is promoted and reads stay on primaries, so nothing
    // changes with the failure.
    assert_eq!(
        plan.redis.assessment.degraded_utilisation,
        Some(plan.redis.assessment.utilisation_at_peak)
    );
}

#[test]
fn sagemaker_two_instances_do_not_survive_losing_one_in_prod() {
    // 200 intents/s × 20 ms = 4 Erlangs. 2 × ml.c6i.xlarge = 8 workers at
    // ρ = 0.5; losing one leaves 4 workers at ρ = 1.0 → unstable, an error in
    // prod. 3 × ml.c6i.xlarge: losing one leaves 8 workers at ρ = 0.5.
    let mut input = prod_with_capacity();
    input.overrides.sagemaker = Some(SageMakerOverride {
        instance_type: Some("ml.c6i.xlarge".into()),
        instances: Some(2),
        max_instances: Some(8),
    });
    let err = size(&input).expect_err("2 × xlarge do not survive an AZ");
    assert!(
        matches!(err.errors.as_slice(), [SizingError::OverrideShortfall { resource, detail }]
            if resource == "sagemaker" && detail.contains("100%") && detail.contains("unstable")),
        "{err}"
    );
    let plan = err.plan.expect("plan");
    close(
        plan.sagemaker.assessment.degraded_utilisation.expect("ρ"),
        1.0,
        1e-9,
    );

    let plan = size(&prod_with_capacity()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.sagemaker.instances, 3);
    close(
        plan.sagemaker.assessment.degraded_utilisation.expect("ρ"),
        0.5,
        1e-9,
    );
}

#[test]
fn dax_primary_carries_every_read_so_a_larger_type_not_more_nodes() {
    // The runtime reads on the primary (read-your-writes), so the primary
    // carries 34,445 normalized requests/s at prod's peak
    // (seed_prod_survives_one_az_for_every_pool). A type of 40,000 keeps
    // 28,000 below its 70% ceiling: too few at any node count. The next type
    // (120,000, ceiling 84,000) carries it at 28.7%, at the prod floor of 3.
    let mut a = Assumptions::embedded().expect("assumptions").clone();
    let base = a
        .dax
        .node_types
        .iter()
        .find(|n| n.name == "dax.r5.large")
        .expect("r5.large")
        .clone();
    let mut small = base.clone();
    small.normalized_rps = 40_000.0;
    let mut large = base;
    large.name = "dax.r5.xlarge".into();
    large.normalized_rps = 120_000.0;
    a.dax.node_types = vec![small, large];
    let prices = Prices::embedded_for("us-east-1").expect("prices");
    let plan = match size_with(&prod(), &a, prices) {
        Ok(p) => p,
        Err(e) => *e.plan.expect("plan"),
    };
    assert!(plan.dax.enabled);
    assert_eq!(plan.dax.node_type, "dax.r5.xlarge");
    assert_eq!(plan.dax.nodes, 3);
    close(plan.dax.normalized_rps, 34_445.0, 1e-6);
    close(
        plan.dax.assessment.utilisation_at_peak,
        34_445.0 / 120_000.0,
        1e-4,
    );
    // Losing an AZ changes nothing on the primary.
    close(
        plan.dax.assessment.degraded_utilisation.expect("ρ"),
        34_445.0 / 120_000.0,
        1e-4,
    );
}

#[test]
fn redis_survives_a_primary_loss_only_with_a_replica() {
    // Staging requires failover: a replica is promoted, ρ unchanged.
    let plan = size(&staging()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.redis.replicas_per_shard, 1);
    assert_eq!(
        plan.redis.assessment.degraded_utilisation,
        Some(plan.redis.assessment.utilisation_at_peak)
    );
    // Dev has no replica: the shard is down until replaced (infinite ρ),
    // noted but not warned (a single node promises no failover).
    let plan = size(&dev()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        plan.redis.assessment.degraded_utilisation,
        Some(f64::INFINITY)
    );
    assert!(
        !plan.warnings.iter().any(|w| w.resource == "redis"),
        "{:?}",
        plan.warnings
    );
}

#[test]
fn opensearch_eight_ocus_do_not_survive_an_az_in_prod() {
    // 375 retrievals/s × 2 searches × 12 ms = 9 Erlangs; 8 OCUs split 4 + 4
    // leave 8 threads at ρ = 9 / 8 = 1.125 with one AZ gone (healthy, 16
    // threads run at 56%, inside the 70% ceiling).
    let mut input = prod_with_capacity();
    if let Some(o) = input.overrides.opensearch.as_mut() {
        o.search_ocu_min = Some(8);
    }
    let err = size(&input).expect_err("8 OCUs do not survive an AZ");
    assert!(
        matches!(err.errors.as_slice(), [SizingError::OverrideShortfall { resource, detail }]
            if resource == "opensearch" && detail.contains("112%")),
        "{err}"
    );
}

#[test]
fn service_az_loss_is_a_warning_where_failover_is_not_required() {
    // Prod's traffic in a dev-shaped environment (2 AZs, no failover) with 4
    // explicit tasks: 4 tasks over 2 AZs lose 2, and 2 × 250 = 500 stream
    // permits hold 819.51 streams (plan.rs prod_rates_by_hand) at ρ = 1.64 →
    // a warning; the count stays.
    let mut input = prod();
    input.env_name = "dev".into();
    input.is_production = false;
    input.failover_required = false;
    input.az_count = 2;
    input.overrides.service = Some(ServiceOverride {
        cpu: Some(1024),
        memory_mib: Some(2048),
        tasks: Some(4),
        min_tasks: Some(3),
        max_tasks: Some(12),
    });
    let plan = plan_of(&input);
    assert_eq!(plan.service.tasks, 4);
    close(
        plan.service.assessment.degraded_utilisation.expect("ρ"),
        819.51 / 500.0,
        1e-4,
    );
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.resource == "service" && w.message.contains("unstable")),
        "{:?}",
        plan.warnings
    );
    // With failover required the same traffic is sized to survive: the
    // streams alone need 819.51 / 150 → 6 tasks; 6 over 2 AZs lose 3 and
    // keep 3 × 250 = 750 permits (ρ = 1.09), 7 lose ceil(7 / 2) = 4 and keep
    // the same 750, 8 lose 4 and keep 4 × 250 = 1000 (ρ = 0.82) → 8.
    input.failover_required = true;
    input.overrides.service = None;
    let plan = plan_of(&input);
    assert_eq!(plan.service.tasks, 8);
    assert_eq!(plan.service.assessment.binding, Binding::AzLoss);
    // Target tracking keeps 8 at peak: streams target below 819.51 / 7 =
    // 117.07 → 117 (819.51 / 117 = 7.004 → 8).
    assert_eq!(plan.service.target_streams_per_task, 117);
}
