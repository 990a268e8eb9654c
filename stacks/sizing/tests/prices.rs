//! Prices that follow the environment's region (issue 9): the shipped Tokyo
//! environment is priced with data/prices/ap-northeast-1.yaml, a region
//! without a table with us-east-1's and a warning. Expectations are worked
//! by hand from the two tables in the comments.

mod common;

use common::*;
use sizing::*;



fn cost_warnings(plan: &SizingPlan) -> Vec<&str> {
    plan.warnings
        .iter()
        .filter(|w| w.resource == "cost")
        .map(|w| w.message.as_str())
        .collect()
}

#[test]
fn tokyo_is_billed_at_tokyo_prices() {
    let input = from_env_file("tokyo");
    assert_eq!(input.region, "ap-northeast-1");
    let plan = size(&input).unwrap_or_else(|e| panic!("{e}"));
    let b = plan.bill.as_ref().expect("bill");
    // 2 tasks of 0.5 vCPU / 1 GiB, min 2: ⌈2 × share⌉ is 1 only where the
    // share is at most 0.5, which never keeps fewer than min 2, so 2 × 730 =
    // 1,460 task-hours. Tokyo: 0.5 × $0.05056 + 1 × $0.00553 = $0.03081 a
    // task-hour; × 1,460 = $44.98 (us-east-1: 0.5 × $0.04048 + $0.004445 =
    // $0.024685; × 1,460 = $36.04).
    assert_eq!((plan.service.tasks, plan.service.min_tasks), (2, 2));
    assert_eq!((plan.service.cpu, plan.service.memory_mib), (512, 1024));
    close(line(b, "service (Fargate)").monthly_usd, 44.98, 0.005);

    let a = Assumptions::embedded().expect("assumptions");
    let us = Prices::embedded_for("us-east-1").expect("us-east-1 prices");
    let at_us = size_with(&input, a, us).unwrap_or_else(|e| panic!("{e}"));
    let ub = at_us.bill.as_ref().expect("bill");
    close(line(ub, "service (Fargate)").monthly_usd, 36.04, 0.005);
    // NAT: one gateway (tokyo is not production), 730 h × $0.062 = $45.26
    // (us-east-1 $0.045: $32.85), and the same GB at $0.062 against $0.045.
    let (nat, us_nat) = (
        line(b, "NAT gateways").monthly_usd,
        line(ub, "NAT gateways").monthly_usd,
    );
    close(nat - 45.26, (us_nat - 32.85) * 0.062 / 0.045, 0.05);
    // ALB: 730 h × $0.0243 = $17.74 (us-east-1 $0.0225: $16.43); the LCUs
    // are $0.008 in both.
    close(
        line(b, "ALB").monthly_usd - line(ub, "ALB").monthly_usd,
        730.0 * (0.0243 - 0.0225),
        0.02,
    );
    assert!(
        b.total_monthly_usd > ub.total_monthly_usd,
        "{} vs {}",
        b.total_monthly_usd,
        ub.total_monthly_usd
    );

    // No "prices are us-east-1's" warning; the stand-ins are listed.
    let warnings = cost_warnings(&plan);
    assert!(
        !warnings.iter().any(|w| w.starts_with("prices are")),
        "{warnings:?}"
    );
    let stand_ins = warnings
        .iter()
        .find(|w| w.contains("stand-ins"))
        .unwrap_or_else(|| panic!("no stand-in warning: {warnings:?}"));
    assert!(
        stand_ins.contains("elasticache.cache.t4g.micro"),
        "{stand_ins}"
    );
    assert!(
        stand_ins.contains("bedrock.anthropic.claude-3-5-sonnet-20240620-v1:0"),
        "{stand_ins}"
    );
    // Sourced Tokyo entries are not listed as stand-ins.
    for sourced in [
        "usage.nat_gateway_hour",
        "opensearch_serverless",
        "elasticache.cache.r7g.large,",
    ] {
        assert!(
            !stand_ins.contains(sourced),
            "{sourced} listed: {stand_ins}"
        );
    }
    // Every listed stand-in is an entry of the Tokyo table with a source
    // that says whose figure it holds.
    let tokyo = Prices::embedded_for("ap-northeast-1").expect("tokyo prices");
    let entries = tokyo.entries();
    for s in &tokyo.stand_ins {
        let (_, e) = entries
            .iter()
            .find(|(n, _)| n == s)
            .expect("listed entry exists");
        assert!(e.source().contains("stand-in"), "{s}: {}", e.source());
    }
}

#[test]
fn a_region_without_a_table_is_priced_at_us_east_1_with_a_warning() {
    // Seoul serves both of Tokyo's models (Claude 3.5 Sonnet in Region, Nova
    // Micro through apac.) but has no price table.
    let mut input = from_env_file("tokyo");
    input.region = "ap-northeast-2".into();
    let plan = size(&input).unwrap_or_else(|e| panic!("{e}"));
    let warnings = cost_warnings(&plan);
    let w = warnings
        .iter()
        .find(|w| w.starts_with("prices are us-east-1's"))
        .unwrap_or_else(|| panic!("no fallback warning: {warnings:?}"));
    assert!(w.contains("none for ap-northeast-2"), "{w}");
    assert!(w.contains("us-east-1, ap-northeast-1"), "{w}");
    // us-east-1's table has no stand-ins.
    assert!(
        !warnings.iter().any(|w| w.contains("stand-ins")),
        "{warnings:?}"
    );
    // At us-east-1 prices: the same 1,460 task-hours at $0.024685 = $36.04.
    let b = plan.bill.as_ref().expect("bill");
    close(line(b, "service (Fargate)").monthly_usd, 36.04, 0.005);
}

#[test]
fn us_east_1_environments_carry_no_price_warning() {
    let plan = size(&prod()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        cost_warnings(&plan).is_empty(),
        "{:?}",
        cost_warnings(&plan)
    );
}
