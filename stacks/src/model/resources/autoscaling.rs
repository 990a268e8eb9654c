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

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetTracking {
    pub target_value: f64,
    pub predefined_metric_specification: PredefinedMetric,
    pub scale_in_cooldown: u32,
    pub scale_out_cooldown: u32,
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
