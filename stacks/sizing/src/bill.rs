//! The monthly bill a finance team can sign: traffic over the day, every
//! line the deployment pays for, cost per message and per session, and the
//! cheaper options with their latency consequences.
//!
//! The capacity plan ([`crate::resources`]) sizes for the peak hour; each
//! resource's `monthly_cost_usd` is that capacity held all month (and usage
//! at the day's average). The bill instead walks the day hour by hour with
//! the hourly profile (`targets.traffic.hourly_profile`, or the assumptions'
//! default shape `bill.hourly_profile`), each hour's load a share of the
//! peak:
//! - autoscaled capacity (Fargate tasks, SageMaker instances) runs
//!   `max(minimum, ⌈peak count × share⌉)` in each hour;
//! - fixed capacity (Redis, DAX, OpenSearch's minimum OCUs) is billed all
//!   month, as the plan has it;
//! - per-request and per-token usage (Bedrock, DynamoDB on-demand) scales
//!   with the mean share;
//! - lines the plan does not size come from the region's `data/prices/REGION.yaml` (`usage`):
//!   the ALB's hours and LCUs (the largest of new connections, active
//!   connections and processed bytes, per hour), CloudFront's data out and
//!   WebSocket upgrade requests, the NAT gateways and the Bedrock traffic
//!   they carry, CloudWatch metrics, alarms and log ingestion.
//!
//! Prompt caching is counted only for a model that supports it (the
//! assumptions' `prompt_caching`); none of the shipped models does, so no
//! discount is taken. Bedrock Guardrails are not deployed (the runtime's
//! guardrails run in process, `runtime/src/pipeline/guardrails.rs`); their
//! cost is an option. The hourly minimum is the plan's scheduled minimum
//! capacity (`schedule.rs`), which the service and intent stacks render as
//! scheduled actions: the bill prices the hours the schedule keeps.

use serde::Serialize;

use crate::assumptions::Assumptions;
use crate::cost::{fargate_task_hour, round_cents, Prices, HOURS_PER_MONTH};
use crate::error::SizingError;
use crate::input::SizingInput;
use crate::plan::SizingPlan;

/// Days in the 730-hour month.
const DAYS_PER_MONTH: f64 = HOURS_PER_MONTH / 24.0;

/// One line of the bill.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BillLine {
    /// What is billed (`service (Fargate)`, `ALB`, …).
    pub item: String,
    /// Monthly amount, USD.
    pub monthly_usd: f64,
    /// How the amount was obtained.
    pub basis: String,
}

/// A cheaper (or safer) configuration and what it changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostOption {
    /// The option.
    pub option: String,
    /// Monthly change of the bill, USD (negative saves).
    pub monthly_change_usd: f64,
    /// What it does to latency, and how sure that is.
    pub latency: String,
    /// Where the price comes from.
    pub source: String,
}

/// The monthly bill.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bill {
    /// Load per hour of the day as a share of the peak hour (24 values,
    /// the highest 1).
    pub hourly_load: Vec<f64>,
    /// Where the profile comes from (the environment file or the default).
    pub profile_source: String,
    /// Messages a month.
    pub messages_per_month: f64,
    /// Sessions (conversations) a month.
    pub sessions_per_month: f64,
    /// Every line.
    pub lines: Vec<BillLine>,
    /// Their sum, USD.
    pub total_monthly_usd: f64,
    /// Total over messages, USD.
    pub per_message_usd: f64,
    /// Total over sessions, USD.
    pub per_session_usd: f64,
    /// The plan's own figure (peak capacity all month, usage at the
    /// average), for comparison.
    pub plan_monthly_usd: f64,
    /// Options and their effect.
    pub options: Vec<CostOption>,
}

/// The 24 hourly shares of the peak from the environment's profile or the
/// default, normalised so the busiest hour is 1.
pub fn hourly_load(input: &SizingInput, a: &Assumptions) -> (Vec<f64>, String) {
    let (raw, source) = match &input.targets.traffic.hourly_profile {
        Some(p) => (
            p.clone(),
            "targets.traffic.hourly_profile (environment file)".to_owned(),
        ),
        None => (
            a.bill.hourly_profile.values.clone(),
            format!("default shape: {}", a.bill.hourly_profile.source),
        ),
    };
    let max = raw.iter().copied().fold(0.0_f64, f64::max);
    if max <= 0.0 || !max.is_finite() {
        return (vec![1.0; 24], source);
    }
    (raw.iter().map(|v| (v / max).max(0.0)).collect(), source)
}

/// The bill for a sized plan.
pub fn monthly_bill(
    input: &SizingInput,
    a: &Assumptions,
    prices: &Prices,
    plan: &SizingPlan,
) -> Result<Bill, SizingError> {
    let b = &a.bill;
    let u = &prices.usage;
    let (load, profile_source) = hourly_load(input, a);
    let hours = load.len().max(1) as f64;
    let mean = load.iter().sum::<f64>() / hours;
    let days = DAYS_PER_MONTH * 24.0 / hours;
    let r = &plan.rates;
    let t = &input.targets.traffic;
    // Usage in the plan is at the day's average rate (peak / peak_factor);
    // the profile's day has `mean` × the peak.
    let usage_scale = mean * t.peak_factor.max(1.0);

    let messages_per_month = r.messages_per_s * mean * 3600.0 * hours * days;
    let session_s = (b.session_minutes.v() * 60.0).max(1.0);
    let sessions_per_month =
        f64::from(t.concurrent_sessions) * mean * 3600.0 * hours * days / session_s;

    let mut lines = Vec::new();
    let mut line = |item: &str, usd: f64, basis: String| {
        lines.push(BillLine {
            item: item.to_owned(),
            monthly_usd: round_cents(usd),
            basis,
        });
    };

    // Autoscaled capacity, hour by hour.
    let s = &plan.service;
    let task_hours: f64 = plan
        .schedule
        .service
        .hourly_min
        .iter()
        .map(|&m| f64::from(m))
        .sum::<f64>()
        * days;
    let task_hour = fargate_task_hour(&prices.fargate, s.cpu, s.memory_mib);
    let fargate = task_hours * task_hour;
    line(
        "service (Fargate)",
        fargate,
        format!(
            "{:.0} task-hours: max(min {}, ⌈{} × hourly share⌉) per hour, at ${task_hour:.5}/task-hour",
            task_hours, s.min_tasks, s.tasks
        ),
    );
    for (name, key) in [
        ("redis", "redis"),
        ("dax", "dax"),
        ("opensearch", "opensearch"),
    ] {
        let usd = plan.cost.by_resource.get(key).copied().unwrap_or(0.0);
        line(
            name,
            usd,
            "fixed capacity all month (the plan's)".to_owned(),
        );
    }
    let sm = &plan.sagemaker;
    let sm_hourly = prices.sagemaker_hourly(&sm.instance_type)?;
    let sm_hours: f64 = plan
        .schedule
        .sagemaker
        .hourly_min
        .iter()
        .map(|&m| f64::from(m))
        .sum::<f64>()
        * days;
    line(
        "sagemaker",
        sm_hours * sm_hourly,
        format!(
            "{:.0} instance-hours: max(min {}, ⌈{} × hourly share⌉), at ${sm_hourly}/h",
            sm_hours, sm.min_instances, sm.instances
        ),
    );
    let ddb = plan
        .cost
        .by_resource
        .get("dynamodb")
        .copied()
        .unwrap_or(0.0);
    let ddb_on_demand = matches!(plan.dynamodb.billing, crate::input::Billing::OnDemand);
    line(
        "dynamodb",
        if ddb_on_demand {
            ddb * usage_scale
        } else {
            ddb
        },
        if ddb_on_demand {
            format!(
                "on-demand requests at the profile's mean ({:.0}% of peak)",
                mean * 100.0
            )
        } else {
            "provisioned capacity all month".to_owned()
        },
    );
    let bedrock = plan.cost.by_resource.get("bedrock").copied().unwrap_or(0.0) * usage_scale;
    let mut caching = Vec::new();
    for m in &plan.bedrock.models {
        caching.push(format!(
            "{} {}",
            m.model_id,
            if a.model(&m.model_id)?.prompt_caching {
                "supported but not modelled (no discount taken)"
            } else {
                "not supported (no discount)"
            }
        ));
    }
    line(
        "bedrock",
        bedrock,
        format!(
            "tokens at the profile's mean ({:.0}% of peak); prompt caching: {}",
            mean * 100.0,
            caching.join("; ")
        ),
    );

    // What the plan does not size.
    let gb = |bytes: f64| bytes / 1e9;
    let msg_bytes = b.bytes_up_per_message.v() + b.bytes_down_per_message.v();
    let mut lcu_hours = 0.0;
    let mut peak_dims = [
        ("active connections", 0.0),
        ("new connections", 0.0),
        ("processed bytes", 0.0),
    ];
    for f in &load {
        let sessions = f64::from(t.concurrent_sessions) * f;
        let dims = [
            sessions / u.alb_lcu_active_connections_per_min.v().max(1.0),
            sessions / session_s / u.alb_lcu_new_connections_per_s.v().max(1e-9),
            gb(r.messages_per_s * f * 3600.0 * msg_bytes) / u.alb_lcu_gb_per_hour.v().max(1e-9),
        ];
        lcu_hours += dims.iter().copied().fold(0.0, f64::max);
        for (p, d) in peak_dims.iter_mut().zip(dims) {
            p.1 = f64::max(p.1, d);
        }
    }
    lcu_hours *= days;
    let binding = peak_dims
        .iter()
        .fold(("", -1.0), |b, d| if d.1 > b.1 { *d } else { b });
    line(
        "ALB",
        HOURS_PER_MONTH * u.alb_hour.v() + lcu_hours * u.alb_lcu_hour.v(),
        format!(
            "730 h + {lcu_hours:.0} LCU-hours ({} bind: {:.2} LCU at peak)",
            binding.0, binding.1
        ),
    );
    line(
        "CloudFront",
        gb(messages_per_month * msg_bytes) * u.cloudfront_data_out_per_gb.v()
            + sessions_per_month / 10_000.0 * u.cloudfront_https_per_10k.v(),
        format!(
            "{:.0} GB of frames ({} B a message) + one HTTPS upgrade request per session",
            gb(messages_per_month * msg_bytes),
            msg_bytes
        ),
    );
    let nats = if input.is_production {
        input.az_count.max(1)
    } else {
        1
    };
    let llm_share = if r.messages_per_s > 0.0 {
        r.llm_messages_per_s / r.messages_per_s
    } else {
        0.0
    };
    let tokens_per_llm_message = if r.llm_messages_per_s > 0.0 {
        (r.average_input_tokens_per_s + r.average_output_tokens_per_s) * t.peak_factor.max(1.0)
            / r.llm_messages_per_s
    } else {
        0.0
    };
    let nat_gb =
        gb(messages_per_month * llm_share * tokens_per_llm_message * b.chars_per_token.v());
    line(
        "NAT gateways",
        f64::from(nats) * HOURS_PER_MONTH * u.nat_gateway_hour.v() + nat_gb * u.nat_gateway_per_gb.v(),
        format!(
            "{nats} gateway(s) + {nat_gb:.0} GB of Bedrock requests and streams (no Bedrock interface endpoint in the network stack)"
        ),
    );
    let log_gb = gb(messages_per_month * b.log_bytes_per_message.v());
    line(
        "CloudWatch",
        b.custom_metrics.v() * u.cloudwatch_metric_month.v()
            + b.alarms.v() * u.cloudwatch_alarm_month.v()
            + log_gb * u.cloudwatch_logs_per_gb.v(),
        format!(
            "{} metrics, {} alarms, {log_gb:.0} GB of logs",
            b.custom_metrics.v(),
            b.alarms.v()
        ),
    );

    let total: f64 = lines.iter().map(|l| l.monthly_usd).sum();
    let per = |n: f64| if n > 0.0 { total / n } else { 0.0 };

    // Options.
    let mut options = Vec::new();
    let arm_hour = fargate_task_hour(&prices.fargate_arm, s.cpu, s.memory_mib);
    options.push(CostOption {
        option: "ARM (Graviton) Fargate tasks".to_owned(),
        monthly_change_usd: round_cents(task_hours * (arm_hour - task_hour)),
        latency: "not measured: cpu_ms_per_message, which sets the task count and the CPU stages' p95, was measured on x86 (scripts/bench-scenarios); re-measure it on arm64 before switching".to_owned(),
        source: prices.fargate_arm.source.clone(),
    });
    let redis = plan.cost.by_resource.get("redis").copied().unwrap_or(0.0);
    options.push(CostOption {
        option: "ElastiCache for Valkey instead of Redis OSS (same node types)".to_owned(),
        monthly_change_usd: round_cents(-redis * u.valkey_node_discount.v()),
        latency: "same protocol and client; no published latency difference for node-based clusters, so sizing keeps the Redis GET p95".to_owned(),
        source: u.valkey_node_discount.source.clone(),
    });
    // Bedrock Guardrails on every LLM message: input and output, content
    // filters and PII, in text units of 1,000 characters (rounded up).
    let (input_chars, output_chars) = if r.llm_messages_per_s > 0.0 {
        (
            r.average_input_tokens_per_s * t.peak_factor.max(1.0) / r.llm_messages_per_s
                * b.chars_per_token.v(),
            r.average_output_tokens_per_s * t.peak_factor.max(1.0) / r.llm_messages_per_s
                * b.chars_per_token.v(),
        )
    } else {
        (0.0, 0.0)
    };
    let units = (input_chars / 1000.0).ceil() + (output_chars / 1000.0).ceil();
    let guardrails = messages_per_month * llm_share * units / 1000.0
        * (u.guardrails_content_per_1k_text_units.v() + u.guardrails_pii_per_1k_text_units.v());
    options.push(CostOption {
        option: "Amazon Bedrock Guardrails (content filters and PII) on every LLM message".to_owned(),
        monthly_change_usd: round_cents(guardrails),
        latency: "adds the guardrail evaluation to the path (input before the model, output while streaming); AWS publishes no latency figure, so it is not in the budget".to_owned(),
        source: u.guardrails_content_per_1k_text_units.source.clone(),
    });

    Ok(Bill {
        hourly_load: load.iter().map(|v| (v * 1e4).round() / 1e4).collect(),
        profile_source,
        messages_per_month: messages_per_month.round(),
        sessions_per_month: sessions_per_month.round(),
        lines,
        total_monthly_usd: round_cents(total),
        per_message_usd: (per(messages_per_month) * 1e6).round() / 1e6,
        per_session_usd: (per(sessions_per_month) * 1e4).round() / 1e4,
        plan_monthly_usd: plan.cost.total_monthly_usd,
        options,
    })
}
