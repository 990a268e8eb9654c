//! `observability`: CloudWatch alarms derived from the latency budgets and
//! a dashboard that plots each stage against its budget.
//!
//! AWS metrics cover the managed hops (ALB, Redis, DynamoDB, SageMaker,
//! OpenSearch Serverless, CloudFront). The runtime's own per-stage timings
//! arrive as CloudWatch EMF log lines under [`RUNTIME_NAMESPACE`], metric
//! [`STAGE_METRIC`], dimensions `Environment` and `Stage` (runtime/README.md).

use serde_json::{json, Value};

use super::{cache, edge, intent, memory, search, service, Inputs, StackId};
use crate::model::resources::cloudwatch::*;
use crate::model::resources::NameValue;
use crate::model::{Expr, Template};
use sizing::Stage;

pub const RUNTIME_NAMESPACE: &str = "MangaAssist";
pub const STAGE_METRIC: &str = "StageLatency";

/// The stages the dashboard plots: every stage the runtime measures
/// ([`Stage::MEASURED`], emitted as the `Stage` dimension by
/// runtime/src/metrics.rs) except the per-chunk stream jitter.
pub fn plotted_stages() -> impl Iterator<Item = Stage> {
    Stage::MEASURED
        .into_iter()
        .filter(|s| *s != Stage::StreamJitter)
}

/// One budgeted metric: how to find it, its statistic and its budget in
/// the metric's own unit.
struct Budgeted {
    id: &'static str,
    title: String,
    namespace: &'static str,
    metric: &'static str,
    dims: Vec<(&'static str, String)>,
    stat: &'static str,
    budget: f64,
}

pub fn template(i: &Inputs<'_>) -> Template {
    let id = StackId::Observability;
    let mut t = i.template(id, "Budget alarms and the latency dashboard");
    let b = &i.env.targets.latency_ms;
    let env = i.env.name.as_str();

    // Variables spliced into dimension values (and the dashboard body).
    let multi_shard = cache::cluster_mode(&i.sizing.redis);
    let vars: Vec<(&str, Expr)> = vec![
        ("Alb", t.consume(service::ALB_FULL_NAME)),
        ("RedisGroup", t.consume(cache::GROUP_ID)),
        ("Table", t.consume(memory::TABLE_NAME)),
        ("Endpoint", t.consume(intent::ENDPOINT_NAME)),
        ("Variant", t.consume(intent::VARIANT_NAME)),
        ("CollectionId", t.consume(search::COLLECTION_ID)),
        ("CollectionName", t.consume(search::COLLECTION_NAME)),
        ("Distribution", t.consume(edge::DISTRIBUTION_ID)),
    ];
    // The first node of the (first) shard: ElastiCache latency metrics are per node.
    let redis_node = if multi_shard {
        "${RedisGroup}-0001-001"
    } else {
        "${RedisGroup}-001"
    };

    let stage = |s: Stage| {
        vec![
            ("Environment", env.to_owned()),
            ("Stage", s.key().to_owned()),
        ]
    };
    let dims = |d: &[(&'static str, &str)]| {
        d.iter()
            .map(|(k, v)| (*k, (*v).to_owned()))
            .collect::<Vec<_>>()
    };
    let budgeted = vec![
        Budgeted {
            id: "EndToEnd",
            title: format!("ALB target response p95 (budget {} ms)", b.end_to_end_p95),
            namespace: "AWS/ApplicationELB",
            metric: "TargetResponseTime",
            dims: dims(&[("LoadBalancer", "${Alb}")]),
            stat: "p95",
            budget: f64::from(b.end_to_end_p95) / 1000.0,
        },
        Budgeted {
            id: "FirstToken",
            title: format!("LLM first token p95 (budget {} ms)", b.first_token),
            namespace: RUNTIME_NAMESPACE,
            metric: STAGE_METRIC,
            dims: stage(Stage::FirstToken),
            stat: "p95",
            budget: f64::from(b.first_token),
        },
        Budgeted {
            id: "IntentModel",
            title: format!("Intent model latency p95 (budget {} ms)", b.intent_ml),
            namespace: "AWS/SageMaker",
            metric: "ModelLatency",
            dims: dims(&[
                ("EndpointName", "${Endpoint}"),
                ("VariantName", "${Variant}"),
            ]),
            stat: "p95",
            budget: f64::from(b.intent_ml) * 1000.0,
        },
        Budgeted {
            id: "Retrieval",
            title: format!("Vector search latency p95 (budget {} ms)", b.retrieval),
            namespace: "AWS/AOSS",
            metric: "SearchRequestLatency",
            dims: dims(&[
                ("CollectionId", "${CollectionId}"),
                ("CollectionName", "${CollectionName}"),
                ("ClientId", "${AWS::AccountId}"),
            ]),
            stat: "p95",
            budget: f64::from(b.retrieval),
        },
        Budgeted {
            id: "MemoryRead",
            title: format!("DynamoDB query latency (budget {} ms)", b.memory_read),
            namespace: "AWS/DynamoDB",
            metric: "SuccessfulRequestLatency",
            dims: dims(&[("TableName", "${Table}"), ("Operation", "Query")]),
            stat: "Average",
            budget: f64::from(b.memory_read),
        },
        Budgeted {
            id: "CacheHit",
            title: format!("Redis GET latency (budget {} ms)", b.cache_hit),
            namespace: "AWS/ElastiCache",
            metric: "GetTypeCmdsLatency",
            dims: dims(&[("CacheClusterId", redis_node)]),
            stat: "Average",
            budget: f64::from(b.cache_hit) * 1000.0,
        },
    ];

    for m in &budgeted {
        let (statistic, extended) = if m.stat.starts_with('p') {
            (None, Some(m.stat.to_owned()))
        } else {
            (Some(m.stat.to_owned()), None)
        };
        t.add(
            &format!("{}BudgetAlarm", m.id),
            Alarm {
                alarm_description: format!(
                    "MangaAssist {env}: {} over budget for 3 of 5 minutes",
                    m.title
                ),
                namespace: Some(m.namespace.to_owned()),
                metric_name: Some(m.metric.to_owned()),
                dimensions: Some(
                    m.dims
                        .iter()
                        .map(|(k, v)| NameValue::new(*k, dim_value(v, &vars)))
                        .collect(),
                ),
                statistic,
                extended_statistic: extended,
                period: Some(60),
                metrics: None,
                evaluation_periods: 5,
                datapoints_to_alarm: 3,
                threshold: m.budget,
                comparison_operator: "GreaterThanThreshold".into(),
                treat_missing_data: "notBreaching".into(),
            },
        );
    }

    let alb_dim = || vec![NameValue::new("LoadBalancer", dim_value("${Alb}", &vars))];
    let stat = |id: &str, metric: &str| MetricDataQuery {
        id: id.to_owned(),
        label: None,
        expression: None,
        metric_stat: Some(MetricStat {
            metric: Metric {
                namespace: "AWS/ApplicationELB".into(),
                metric_name: metric.to_owned(),
                dimensions: alb_dim(),
            },
            period: 60,
            stat: "Sum".into(),
        }),
        return_data: false,
    };
    t.add(
        "Target5xxRateAlarm",
        Alarm {
            alarm_description: format!(
                "MangaAssist {env}: more than 1% of requests answered 5xx by the runtime"
            ),
            namespace: None,
            metric_name: None,
            dimensions: None,
            statistic: None,
            extended_statistic: None,
            period: None,
            metrics: Some(vec![
                stat("errors", "HTTPCode_Target_5XX_Count"),
                stat("requests", "RequestCount"),
                MetricDataQuery {
                    id: "rate".into(),
                    label: Some("5xx percent".into()),
                    expression: Some("IF(requests > 0, 100 * errors / requests, 0)".into()),
                    metric_stat: None,
                    return_data: true,
                },
            ]),
            evaluation_periods: 5,
            datapoints_to_alarm: 3,
            threshold: 1.0,
            comparison_operator: "GreaterThanThreshold".into(),
            treat_missing_data: "notBreaching".into(),
        },
    );

    let mut widgets: Vec<Value> = Vec::new();
    for (n, m) in budgeted.iter().enumerate() {
        let mut metric: Vec<Value> = vec![m.namespace.into(), m.metric.into()];
        for (k, v) in &m.dims {
            metric.push((*k).into());
            metric.push(v.as_str().into());
        }
        widgets.push(json!({
            "type": "metric",
            "x": (n % 2) * 12, "y": (n / 2) * 6, "width": 12, "height": 6,
            "properties": {
                "title": m.title, "region": "${AWS::Region}", "stat": m.stat, "period": 60, "view": "timeSeries",
                "metrics": [metric],
                "annotations": { "horizontal": [{ "label": "budget", "value": m.budget }] }
            }
        }));
    }
    let stage_metrics: Vec<Value> = plotted_stages()
        .map(|s| {
            json!([
                RUNTIME_NAMESPACE,
                STAGE_METRIC,
                "Environment",
                env,
                "Stage",
                s.key()
            ])
        })
        .collect();
    widgets.push(json!({
        "type": "metric", "x": 0, "y": budgeted.len().div_ceil(2) * 6, "width": 24, "height": 6,
        "properties": { "title": "Runtime stage latency p95 (ms)", "region": "${AWS::Region}", "stat": "p95", "period": 60, "view": "timeSeries", "metrics": stage_metrics }
    }));
    widgets.push(json!({
        "type": "metric", "x": 0, "y": budgeted.len().div_ceil(2) * 6 + 6, "width": 24, "height": 6,
        "properties": { "title": "CloudFront 5xx error rate (%)", "region": "us-east-1", "stat": "Average", "period": 60, "view": "timeSeries",
            "metrics": [["AWS/CloudFront", "5xxErrorRate", "DistributionId", "${Distribution}", "Region", "Global"]] }
    }));
    let body = json!({ "widgets": widgets }).to_string();
    t.add(
        "Dashboard",
        Dashboard {
            dashboard_name: format!("{}-latency", i.prefix()),
            dashboard_body: Expr::sub_with(body, vars.clone()),
        },
    );
    t
}

/// A dimension value: literal, or a `Fn::Sub` over the imported variables.
fn dim_value(v: &str, vars: &[(&str, Expr)]) -> Expr {
    if !v.contains("${") {
        return Expr::Str(v.to_owned());
    }
    let used: Vec<(&str, Expr)> = vars
        .iter()
        .filter(|(k, _)| v.contains(&format!("${{{k}}}")))
        .cloned()
        .collect();
    Expr::sub_with(v, used)
}
