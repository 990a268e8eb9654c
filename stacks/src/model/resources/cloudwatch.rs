//! CloudWatch alarms and dashboards.

use serde::Serialize;
use serde_with::skip_serializing_none;

use super::{resource_type, NameValue};
use crate::model::Expr;

/// An alarm on one metric statistic, or on a metric-math expression.
#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Alarm {
    pub alarm_description: String,
    pub namespace: Option<String>,
    pub metric_name: Option<String>,
    pub dimensions: Option<Vec<NameValue>>,
    pub statistic: Option<String>,
    pub extended_statistic: Option<String>,
    pub period: Option<u32>,
    pub metrics: Option<Vec<MetricDataQuery>>,
    pub evaluation_periods: u32,
    pub datapoints_to_alarm: u32,
    pub threshold: f64,
    pub comparison_operator: String,
    /// `breaching`, `notBreaching`, `ignore` or `missing`; chosen per alarm.
    pub treat_missing_data: String,
    /// Notified when the alarm fires.
    pub alarm_actions: Vec<Expr>,
    /// Notified when it clears, so whoever was paged knows.
    #[serde(rename = "OKActions")]
    pub ok_actions: Vec<Expr>,
}
resource_type!(Alarm, "AWS::CloudWatch::Alarm");

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDataQuery {
    pub id: String,
    pub label: Option<String>,
    pub expression: Option<String>,
    pub metric_stat: Option<MetricStat>,
    pub return_data: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricStat {
    pub metric: Metric,
    pub period: u32,
    pub stat: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Metric {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<NameValue>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Dashboard {
    pub dashboard_name: String,
    /// The body is a JSON string; `Fn::Sub` splices imported names into it.
    pub dashboard_body: Expr,
}
resource_type!(Dashboard, "AWS::CloudWatch::Dashboard");
