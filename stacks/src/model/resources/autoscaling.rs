//! Application Auto Scaling: scalable targets and target-tracking policies
//! (ECS service task count, SageMaker variant instance count).

use serde::Serialize;

use super::resource_type;
use crate::model::{Expr, Handle};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalableTarget {
    pub min_capacity: u32,
    pub max_capacity: u32,
    pub resource_id: Expr,
    pub scalable_dimension: String,
    pub service_namespace: String,
}
resource_type!(
    ScalableTarget,
    "AWS::ApplicationAutoScaling::ScalableTarget"
);

impl Handle<ScalableTarget> {
    pub fn id(&self) -> Expr {
        self.reference()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PredefinedMetric {
    pub predefined_metric_type: String,
}

/// One dimension of a customized metric.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDimension {
    pub name: String,
    pub value: Expr,
}

/// A CloudWatch metric a target-tracking policy holds at its target
/// (`CustomizedMetricSpecification`). Application Auto Scaling requires a
/// metric that changes in inverse proportion to capacity, such as a
/// per-task average.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomizedMetric {
    pub metric_name: String,
    pub namespace: String,
    pub dimensions: Vec<MetricDimension>,
    pub statistic: String,
    pub unit: String,
}

/// What a target-tracking policy tracks: one of the predefined metrics or a
/// customized one (CloudFormation takes exactly one of the two properties).
#[derive(Debug, Clone)]
pub enum TrackedMetric {
    Predefined(PredefinedMetric),
    Customized(CustomizedMetric),
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetTracking {
    pub target_value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predefined_metric_specification: Option<PredefinedMetric>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customized_metric_specification: Option<CustomizedMetric>,
    pub scale_in_cooldown: u32,
    pub scale_out_cooldown: u32,
}

impl TargetTracking {
    /// Target tracking of `metric` at `target_value`.
    pub fn new(
        metric: TrackedMetric,
        target_value: f64,
        scale_in_cooldown: u32,
        scale_out_cooldown: u32,
    ) -> TargetTracking {
        let (predefined, customized) = match metric {
            TrackedMetric::Predefined(p) => (Some(p), None),
            TrackedMetric::Customized(c) => (None, Some(c)),
        };
        TargetTracking {
            target_value,
            predefined_metric_specification: predefined,
            customized_metric_specification: customized,
            scale_in_cooldown,
            scale_out_cooldown,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalingPolicy {
    pub policy_name: String,
    pub policy_type: String,
    pub scaling_target_id: Expr,
    pub target_tracking_scaling_policy_configuration: TargetTracking,
}
resource_type!(ScalingPolicy, "AWS::ApplicationAutoScaling::ScalingPolicy");
