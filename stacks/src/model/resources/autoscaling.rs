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
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scheduled_actions: Vec<ScheduledAction>,
    /// Rendered with the scheduled actions, so that a scale hold
    /// (`src/deploy/holds.rs`) has a property to set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspended_state: Option<SuspendedState>,
}
resource_type!(
    ScalableTarget,
    "AWS::ApplicationAutoScaling::ScalableTarget"
);

/// `SuspendedState`: only scheduled scaling is ever suspended, by an
/// on-call scale record.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SuspendedState {
    pub scheduled_scaling_suspended: bool,
}

/// `ScalableTargetAction` of a scheduled action: the minimum only, so the
/// maximum stays the template's or an on-call engineer's.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalableTargetAction {
    pub min_capacity: u32,
}

/// One recurring scheduled action of a scalable target.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScheduledAction {
    pub scheduled_action_name: String,
    pub schedule: String,
    pub timezone: String,
    pub scalable_target_action: ScalableTargetAction,
}

impl ScheduledAction {
    /// One action per hour of the day, each setting that hour's minimum
    /// (sizing's `schedule::PoolSchedule`), or none when the schedule never
    /// leaves the floor.
    ///
    /// Every hour gets its action, even when it repeats the previous one: a
    /// stack update re-registers the target with the template's
    /// MinCapacity (the floor), and the next hour's action restores the
    /// schedule, so a deploy lowers the minimum for at most an hour.
    /// `cron(0 H * * ? *)` runs daily at H:00 in `Timezone` ("The supported
    /// cron expression format consists of six fields separated by white
    /// spaces: [Minutes] [Hours] [Day_of_Month] [Month] [Day_of_Week]
    /// [Year]", Application Auto Scaling User Guide, "Schedule recurring
    /// scaling actions"); 24 actions are well inside the 200 scheduled
    /// actions a scalable target may have (Application Auto Scaling User
    /// Guide, "Quotas").
    pub fn hourly(name_prefix: &str, hourly_min: &[u32], floor: u32, timezone: &str) -> Vec<Self> {
        if hourly_min.iter().all(|&m| m == floor) {
            return Vec::new();
        }
        hourly_min
            .iter()
            .enumerate()
            .map(|(h, &min)| ScheduledAction {
                scheduled_action_name: format!("{name_prefix}-min-{h:02}h"),
                schedule: format!("cron(0 {h} * * ? *)"),
                timezone: timezone.to_owned(),
                scalable_target_action: ScalableTargetAction { min_capacity: min },
            })
            .collect()
    }
}

/// The suspended state to render beside `actions`: none without actions,
/// otherwise scheduled scaling running.
pub fn suspended_state(actions: &[ScheduledAction]) -> Option<SuspendedState> {
    (!actions.is_empty()).then_some(SuspendedState {
        scheduled_scaling_suspended: false,
    })
}

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
