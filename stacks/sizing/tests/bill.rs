//! The monthly bill (issue 15): the day's traffic hour by hour, the lines the
//! capacity plan does not size, cost per message and per session, and the
//! options. Expectations are worked by hand from data/prices/us-east-1.yaml and
//! data/assumptions.yaml in the comments.

mod common;

use common::*;
use sizing::*;



#[test]
fn prod_over_the_default_day_by_hand() {
    let plan = size(&prod()).unwrap_or_else(|e| panic!("{e}"));
    let b = plan.bill.as_ref().expect("bill");
    // The default shape sums to 15.47 over 24 hours: mean 0.644583.
    assert_eq!(b.hourly_load.len(), 24);
    close(b.hourly_load.iter().sum::<f64>(), 15.47, 1e-9);
    // Messages: 500/s at peak × 0.644583 × 86,400 s × 30.4167 days
    // (730 h) = 847.0 M.
    close(b.messages_per_month / 1e6, 847.0, 0.05);
    // Sessions: 10,000 × 0.644583 × 86,400 × 30.4167 / 600 s = 28.23 M.
    close(b.sessions_per_month / 1e6, 28.23, 0.01);

    // Fargate: 6 tasks at peak (the simple tier on its faster model holds
    // its streams for less time), min 5. ⌈6 × share⌉ per hour against 5:
    // 6 only above 5/6 = 0.833, so 5 hours at 6 (0.85, 0.88, 0.95, 0.98,
    // 1.00) and 19 at 5: 95 + 30 = 125 task-hours a day, × 30.4167 =
    // 3,802.1; at 1 vCPU / 2 GiB, $0.04048 + 2 × $0.004445 = $0.04937 an
    // hour: $187.71.
    close(
        line(b, "service (Fargate)").monthly_usd,
        3802.08 * 0.04937,
        0.05,
    );
    // SageMaker: 2 instances at peak and min 2: 2 × 730 h × $0.408 = $595.68.
    close(line(b, "sagemaker").monthly_usd, 595.68, 0.01);
    // Fixed capacity is the plan's.
    for r in ["redis", "dax", "opensearch"] {
        close(line(b, r).monthly_usd, plan.cost.by_resource[r], 1e-9);
    }
    // Usage: the plan's is at the day's average (peak / 1.5); the profile's
    // day is 0.644583 × peak, so × 0.966875.
    close(
        line(b, "bedrock").monthly_usd,
        plan.cost.by_resource["bedrock"] * (15.47 / 24.0) * 1.5,
        1.0,
    );
    close(
        line(b, "dynamodb").monthly_usd,
        plan.cost.by_resource["dynamodb"] * (15.47 / 24.0) * 1.5,
        0.01,
    );
    // ALB: per hour the largest LCU dimension. At peak: active connections
    // 10,000 / 3,000 = 3.33; new connections 10,000 / 600 s / 25 = 0.67;
    // processed bytes 500 msg/s × 3,400 B × 3,600 s = 6.12 GB → 6.12 LCU.
    // Bytes bind in every hour (all scale with the share): 6.12 × 15.47 ×
    // 30.4167 = 2,879.8 LCU-hours × $0.008 = $23.04, + 730 h × $0.0225 =
    // $16.43: $39.47.
    close(line(b, "ALB").monthly_usd, 23.04 + 16.43, 0.05);
    // NAT: prod runs one per AZ (3) × 730 h × $0.045 = $98.55, plus the
    // Bedrock traffic at $0.045/GB.
    assert!(line(b, "NAT gateways").monthly_usd > 98.55);
    // CloudWatch: 20 metrics × $0.30 + 20 alarms × $0.10 = $8, plus logs
    // 847.0 M × 1,500 B = 1,270.5 GB × $0.50 = $635.25.
    close(line(b, "CloudWatch").monthly_usd, 8.0 + 635.25, 0.1);

    // The sum, and per message / per session from it.
    let sum: f64 = b.lines.iter().map(|l| l.monthly_usd).sum();
    close(b.total_monthly_usd, sum, 0.01);
    close(b.per_message_usd, sum / b.messages_per_month, 1e-6);
    close(b.per_session_usd, sum / b.sessions_per_month, 1e-4);
    // Below the plan's peak-capacity-all-month figure: autoscaling runs
    // fewer tasks off-peak and usage follows the day.
    assert!(b.total_monthly_usd < b.plan_monthly_usd + 2000.0);

    // Options: ARM saves (1 − ($0.03238 + 2 × $0.00356) / $0.04937) =
    // 20.0% of Fargate; Valkey 20% of Redis; Bedrock Guardrails cost.
    let opt = |name: &str| {
        b.options
            .iter()
            .find(|o| o.option.starts_with(name))
            .unwrap_or_else(|| panic!("{name}"))
    };
    close(
        opt("ARM").monthly_change_usd,
        -3802.08 * (0.04937 - (0.03238 + 2.0 * 0.00356)),
        0.05,
    );
    close(
        opt("ElastiCache for Valkey").monthly_change_usd,
        -0.2 * plan.cost.by_resource["redis"],
        0.01,
    );
    assert!(opt("Amazon Bedrock Guardrails").monthly_change_usd > 0.0);
}

#[test]
fn a_flat_day_holds_the_peak_and_the_profile_must_agree_with_peak_factor() {
    // Flat at the peak all day, with peak_factor 1 (no warning): the tasks
    // never scale in, and usage is the plan's (its average is the peak).
    let mut input = prod();
    input.targets.traffic.peak_factor = 1.0;
    input.targets.traffic.hourly_profile = Some(vec![3.0; 24]);
    let plan = match size(&input) {
        Ok(p) => p,
        Err(e) => *e.plan.expect("plan"),
    };
    let b = plan.bill.as_ref().expect("bill");
    assert!(b.hourly_load.iter().all(|f| *f == 1.0));
    let task_hour = 0.04937;
    close(
        line(b, "service (Fargate)").monthly_usd,
        f64::from(plan.service.tasks) * 730.0 * task_hour,
        0.05,
    );
    close(
        line(b, "bedrock").monthly_usd,
        plan.cost.by_resource["bedrock"],
        0.01,
    );
    assert!(b.profile_source.contains("environment file"));
    assert!(!plan.warnings.iter().any(|w| w.resource == "bill"));

    // The same flat day with peak_factor 1.5 says the peak is 1.5 × the
    // mean while the profile says 1.0: a warning names both.
    input.targets.traffic.peak_factor = 1.5;
    let plan = match size(&input) {
        Ok(p) => p,
        Err(e) => *e.plan.expect("plan"),
    };
    assert!(
        plan.warnings.iter().any(|w| w.resource == "bill"
            && w.message.contains("1.00× the day's mean")
            && w.message.contains("peak_factor is 1.5")),
        "{:?}",
        plan.warnings
    );
}
