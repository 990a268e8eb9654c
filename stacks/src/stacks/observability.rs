//! `observability`: CloudWatch alarms derived from the latency budgets and
//! the service's health, an SNS topic (encrypted with this stack's own KMS
//! key) that every alarm notifies when it fires and when it clears, the
//! environment file's `alerts` subscriptions, and a dashboard that plots
//! the same metrics.
//!
//! AWS metrics cover the managed hops (ALB, Redis, DynamoDB, SageMaker,
//! OpenSearch Serverless, CloudFront). The runtime's own per-stage timings
//! arrive as CloudWatch EMF log lines under [`RUNTIME_NAMESPACE`], metric
//! [`STAGE_METRIC`], dimensions `Environment` and `Stage` (runtime/README.md).

use serde_json::{json, Value};

use super::{cache, edge, intent, memory, search, service, Inputs, StackId};
use crate::model::resources::cloudwatch::*;
use crate::model::resources::iam::{Effect, PolicyDocument, Principal, Statement};
use crate::model::resources::kms::Key;
use crate::model::resources::sns::{Subscription, Topic};
use crate::model::resources::NameValue;
use crate::model::{pseudo, Expr, Template};
use sizing::Stage;

pub const RUNTIME_NAMESPACE: &str = "MangaAssist";
pub const STAGE_METRIC: &str = "StageLatency";
/// 1 when a stage missed its budget, else 0, per message (runtime/src/emf.rs):
/// its `Average` is the miss rate.
pub const MISS_METRIC: &str = "BudgetMiss";
/// Connected WebSocket sessions of one task, sampled every few seconds
/// (dimension `Environment` only): the service scales on its `Average`.
pub const SESSIONS_METRIC: &str = "ActiveSessions";
/// LLM streams one task relays at the sample time (same cadence and use).
pub const STREAMS_METRIC: &str = "LlmStreamsInFlight";
/// Every budget is a p95: more than 5% of messages missing one is a miss
/// of the budget itself.
const MISS_RATE_THRESHOLD: f64 = 0.05;

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

/// `memory_read` → `MemoryRead`, for logical IDs.
fn camel(key: &str) -> String {
    key.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The alarm topic and its key; returns what every alarm notifies.
fn alarm_topic(i: &Inputs<'_>, t: &mut Template) -> Vec<Expr> {
    let tags = i.tags(StackId::Observability);
    // A customer-managed key, not aws/sns: CloudWatch publishes alarm
    // notifications to an encrypted topic only if the key's policy lets
    // the cloudwatch.amazonaws.com principal use it, and the AWS managed
    // key's policy cannot be changed (Amazon SNS Developer Guide, "Enable
    // compatibility between event sources from AWS services and encrypted
    // topics").
    let key = t.add(
        "AlarmTopicKey",
        Key {
            description: format!("MangaAssist {}: encrypts the alarm topic", i.env.name),
            enable_key_rotation: true,
            key_policy: PolicyDocument::new({
                let mut statements = super::kms_base_statements();
                statements.push(Statement {
                    sid: Some("CloudWatchAlarmsPublish".into()),
                    effect: Effect::Allow,
                    principal: Some(Principal::Service("cloudwatch.amazonaws.com".into())),
                    action: vec!["kms:Decrypt".into(), "kms:GenerateDataKey*".into()],
                    resource: Some(vec!["*".into()]),
                    condition: None,
                });
                statements
            }),
            tags: tags.clone(),
        },
    );
    let topic = t.add(
        "AlarmTopic",
        Topic {
            topic_name: format!("{}-alarms", i.prefix()),
            display_name: format!("MangaAssist {} alarms", i.env.name),
            kms_master_key_id: key.id(),
            tags,
        },
    );
    let a = &i.env.alerts;
    let subscriptions = a
        .email
        .iter()
        .map(|e| ("email", e))
        .chain(a.https.iter().map(|h| ("https", h)));
    for (n, (protocol, endpoint)) in subscriptions.enumerate() {
        t.add(
            &format!("AlarmSubscription{}", n + 1),
            Subscription {
                topic_arn: topic.arn(),
                protocol: protocol.into(),
                endpoint: endpoint.clone(),
            },
        );
    }
    std::iter::once(topic.arn())
        .chain(a.sns_topic_arns.iter().map(Expr::from))
        .collect()
}

pub fn template(i: &Inputs<'_>) -> Template {
    let id = StackId::Observability;
    let mut t = i.template(
        id,
        "Budget and health alarms, their encrypted topic and the latency dashboard",
    );
    let actions = alarm_topic(i, &mut t);
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
        ("Cluster", t.consume(service::CLUSTER_NAME)),
        ("Service", t.consume(service::SERVICE_NAME)),
        ("TargetGroup", t.consume(service::TARGET_GROUP_FULL_NAME)),
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
        // The runtime's own end-to-end timing, not the ALB's
        // TargetResponseTime: over a WebSocket the ALB sees only the
        // upgrade request, never a message's answer.
        Budgeted {
            id: "EndToEnd",
            title: format!("End-to-end p95 (budget {} ms)", b.end_to_end_p95),
            namespace: RUNTIME_NAMESPACE,
            metric: STAGE_METRIC,
            dims: stage(Stage::EndToEnd),
            stat: "p95",
            budget: f64::from(b.end_to_end_p95),
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
                // No messages, no latency datapoints: idle is not slow. A
                // runtime that stops emitting is the task-count alarm's.
                treat_missing_data: "notBreaching".into(),
                alarm_actions: actions.clone(),
                ok_actions: actions.clone(),
            },
        );
    }

    // The share of messages that missed each stage's budget.
    let env_stage_dims = |s: Stage| {
        vec![
            NameValue::new("Environment", env),
            NameValue::new("Stage", s.key()),
        ]
    };
    for s in Stage::MEASURED {
        t.add(
            &format!("{}BudgetMissAlarm", camel(s.key())),
            Alarm {
                alarm_description: format!(
                    "MangaAssist {env}: more than {:.0}% of messages missed the {} budget for 3 of 5 minutes",
                    MISS_RATE_THRESHOLD * 100.0,
                    s.label()
                ),
                namespace: Some(RUNTIME_NAMESPACE.into()),
                metric_name: Some(MISS_METRIC.into()),
                dimensions: Some(env_stage_dims(s)),
                statistic: Some("Average".into()),
                extended_statistic: None,
                period: Some(60),
                metrics: None,
                evaluation_periods: 5,
                datapoints_to_alarm: 3,
                threshold: MISS_RATE_THRESHOLD,
                comparison_operator: "GreaterThanThreshold".into(),
                // A stage with no messages has no misses.
                treat_missing_data: "notBreaching".into(),
                alarm_actions: actions.clone(),
                ok_actions: actions.clone(),
            },
        );
    }

    let metric =
        |id: &str, namespace: &str, name: &str, dims: Vec<NameValue>, stat: &str| MetricDataQuery {
            id: id.to_owned(),
            label: None,
            expression: None,
            metric_stat: Some(MetricStat {
                metric: Metric {
                    namespace: namespace.to_owned(),
                    metric_name: name.to_owned(),
                    dimensions: dims,
                },
                period: 60,
                stat: stat.to_owned(),
            }),
            return_data: false,
        };
    // Running below desired: Container Insights' service metrics (the
    // cluster turns Container Insights on, service stack), "RunningTaskCount"
    // and "DesiredTaskCount" in ECS/ContainerInsights by ClusterName and
    // ServiceName (CloudWatch User Guide, "Amazon ECS Container Insights
    // metrics"). Five minutes, so a deploy's task replacement does not page.
    let service_dims = || {
        vec![
            NameValue::new("ClusterName", dim_value("${Cluster}", &vars)),
            NameValue::new("ServiceName", dim_value("${Service}", &vars)),
        ]
    };
    t.add(
        "TasksBelowDesiredAlarm",
        Alarm {
            alarm_description: format!(
                "MangaAssist {env}: fewer runtime tasks running than desired for 5 minutes"
            ),
            namespace: None,
            metric_name: None,
            dimensions: None,
            statistic: None,
            extended_statistic: None,
            period: None,
            metrics: Some(vec![
                metric(
                    "running",
                    "ECS/ContainerInsights",
                    "RunningTaskCount",
                    service_dims(),
                    "Minimum",
                ),
                metric(
                    "desired",
                    "ECS/ContainerInsights",
                    "DesiredTaskCount",
                    service_dims(),
                    "Maximum",
                ),
                MetricDataQuery {
                    id: "missing".into(),
                    label: Some("tasks missing".into()),
                    expression: Some("desired - running".into()),
                    metric_stat: None,
                    return_data: true,
                },
            ]),
            evaluation_periods: 5,
            datapoints_to_alarm: 5,
            threshold: 0.0,
            comparison_operator: "GreaterThanThreshold".into(),
            // Container Insights reports a running service every minute;
            // silence means the service (or its metrics) is gone.
            treat_missing_data: "breaching".into(),
            alarm_actions: actions.clone(),
            ok_actions: actions.clone(),
        },
    );
    t.add(
        "UnhealthyTargetsAlarm",
        Alarm {
            alarm_description: format!(
                "MangaAssist {env}: a runtime target failing the load balancer's health checks for 3 of 5 minutes"
            ),
            namespace: Some("AWS/ApplicationELB".into()),
            metric_name: Some("UnHealthyHostCount".into()),
            dimensions: Some(vec![
                NameValue::new("TargetGroup", dim_value("${TargetGroup}", &vars)),
                NameValue::new("LoadBalancer", dim_value("${Alb}", &vars)),
            ]),
            statistic: Some("Maximum".into()),
            extended_statistic: None,
            period: Some(60),
            metrics: None,
            evaluation_periods: 5,
            datapoints_to_alarm: 3,
            threshold: 0.0,
            comparison_operator: "GreaterThanThreshold".into(),
            // No datapoint means no registered targets, which the
            // task-count alarm reports; one page per cause.
            treat_missing_data: "notBreaching".into(),
            alarm_actions: actions.clone(),
            ok_actions: actions.clone(),
        },
    );
    // "InvocationThrottles … Number of invocations that the system
    // throttled", AWS/Bedrock by ModelId (Amazon Bedrock User Guide,
    // "Monitor bedrock-runtime inference using CloudWatch metrics").
    // One alarm per model the tiers invoke (`llm.tiers`): each has its own
    // quota, so each can be throttled alone.
    let used_models: Vec<String> = i
        .env
        .llm
        .models()
        .into_iter()
        .filter(|m| !m.tiers.is_empty())
        .map(|m| m.model_id)
        .collect();
    for (n, model) in used_models.iter().enumerate() {
        let name = if n == 0 {
            "LlmThrottlesAlarm".to_owned()
        } else {
            format!("LlmThrottlesAlarm{}", n + 1)
        };
        t.add(
            &name,
            Alarm {
                alarm_description: format!(
                    "MangaAssist {env}: Bedrock throttled {model} in 3 of 5 minutes (quota or provisioned throughput exhausted)"
                ),
                namespace: Some("AWS/Bedrock".into()),
                metric_name: Some("InvocationThrottles".into()),
                dimensions: Some(vec![NameValue::new("ModelId", model.as_str())]),
                statistic: Some("Sum".into()),
                extended_statistic: None,
                period: Some(60),
                metrics: None,
                evaluation_periods: 5,
                datapoints_to_alarm: 3,
                threshold: 0.0,
                comparison_operator: "GreaterThanThreshold".into(),
                // Published only when the model is called: no calls, no throttles.
                treat_missing_data: "notBreaching".into(),
                alarm_actions: actions.clone(),
                ok_actions: actions.clone(),
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
    // Over a WebSocket the ALB counts the upgrade request only, so this is
    // the share of connection attempts the runtime refused with a 5xx (at
    // capacity, draining, not ready) plus the health and page requests:
    // still a meaningful "customers cannot connect", not a message metric.
    t.add(
        "Target5xxRateAlarm",
        Alarm {
            alarm_description: format!(
                "MangaAssist {env}: more than 1% of connection attempts answered 5xx by the runtime"
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
            // No requests, no errors.
            treat_missing_data: "notBreaching".into(),
            alarm_actions: actions.clone(),
            ok_actions: actions.clone(),
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
    let y = budgeted.len().div_ceil(2) * 6 + 12;
    let miss_metrics: Vec<Value> = Stage::MEASURED
        .into_iter()
        .map(|s| {
            json!([
                RUNTIME_NAMESPACE,
                MISS_METRIC,
                "Environment",
                env,
                "Stage",
                s.key()
            ])
        })
        .collect();
    widgets.push(json!({
        "type": "metric", "x": 0, "y": y, "width": 24, "height": 6,
        "properties": { "title": "Budget miss rate by stage (alarm above 0.05)", "region": "${AWS::Region}", "stat": "Average", "period": 60, "view": "timeSeries", "metrics": miss_metrics,
            "annotations": { "horizontal": [{ "label": "alarm", "value": MISS_RATE_THRESHOLD }] } }
    }));
    widgets.push(json!({
        "type": "metric", "x": 0, "y": y + 6, "width": 8, "height": 6,
        "properties": { "title": "Runtime tasks: running vs desired", "region": "${AWS::Region}", "stat": "Average", "period": 60, "view": "timeSeries",
            "metrics": [
                ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", "${Cluster}", "ServiceName", "${Service}"],
                ["ECS/ContainerInsights", "DesiredTaskCount", "ClusterName", "${Cluster}", "ServiceName", "${Service}"]
            ] }
    }));
    widgets.push(json!({
        "type": "metric", "x": 8, "y": y + 6, "width": 8, "height": 6,
        "properties": { "title": "Unhealthy targets", "region": "${AWS::Region}", "stat": "Maximum", "period": 60, "view": "timeSeries",
            "metrics": [["AWS/ApplicationELB", "UnHealthyHostCount", "TargetGroup", "${TargetGroup}", "LoadBalancer", "${Alb}"]] }
    }));
    widgets.push(json!({
        "type": "metric", "x": 16, "y": y + 6, "width": 8, "height": 6,
        "properties": { "title": "Bedrock throttles", "region": "${AWS::Region}", "stat": "Sum", "period": 60, "view": "timeSeries",
            "metrics": used_models.iter().map(|m| json!(["AWS/Bedrock", "InvocationThrottles", "ModelId", m])).collect::<Vec<_>>() }
    }));
    let body = json!({ "widgets": widgets }).to_string();
    t.add(
        "Dashboard",
        Dashboard {
            dashboard_name: format!("{}-latency", i.prefix()),
            dashboard_body: Expr::sub_with(body, vars.clone()),
        },
    );
    t.output(
        "AlarmTopicArn",
        actions.first().cloned().unwrap_or_else(pseudo::no_value),
        "Topic every alarm notifies (subscribe more endpoints here)",
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
