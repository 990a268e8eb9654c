//! [`ElbTargetHealth`]: this task's own target in its ALB target group, for the drain
//! watcher (`server/watch.rs`). One `DescribeTargetHealth` per poll (AWS SDK for Rust,
//! `aws-sdk-elasticloadbalancingv2`), asking for exactly one target: the task's private
//! IPv4 address and its container port, as ECS registers a task of an `awsvpc` service
//! whose target group has target type `ip`.
//!
//! The target id is `MANGA_TARGET_ID` when set, else the task's address from the ECS
//! task metadata endpoint v4: "`${ECS_CONTAINER_METADATA_URI_V4}/task` This path returns
//! metadata for the task", whose `Containers[].Networks[]` carry `"NetworkMode":
//! "awsvpc"` and `"IPv4Addresses": ["10.0.0.108"]` (Amazon ECS Developer Guide, "Amazon
//! ECS task metadata endpoint version 4", task metadata JSON response and example,
//! docs.aws.amazon.com/AmazonECS/latest/developerguide/task-metadata-endpoint-v4.html).
//! The endpoint is the ECS agent's local HTTP endpoint, not an AWS API, so it is read
//! with `reqwest`; the address is looked up on the first poll that needs it (a failure
//! is retried at the next poll) and kept.
//!
//! States (`TargetHealth.State`, ELB API Reference): `draining` and `unhealthy.draining`
//! are a drain in progress (reason `Target.DeregistrationInProgress`: "The target is in
//! the process of being deregistered and the deregistration delay period has not
//! expired"); reason `Target.NotRegistered` (state `unused`) means "The target is not
//! registered with the target group"; every other state is a registered target.

use crate::server::{TargetHealth, TargetHealthError, TargetState};
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    TargetDescription, TargetHealthReasonEnum, TargetHealthStateEnum,
};
use serde_json::Value;
use std::time::Duration;
use tokio::sync::OnceCell;

/// Where the task's own target id comes from.
#[derive(Debug, Clone)]
pub enum TargetId {
    /// Given (`MANGA_TARGET_ID`).
    Fixed(String),
    /// The first awsvpc IPv4 address in `${uri}/task` (`ECS_CONTAINER_METADATA_URI_V4`).
    TaskMetadata(String),
}

#[derive(Debug)]
pub struct ElbTargetHealth {
    client: aws_sdk_elasticloadbalancingv2::Client,
    target_group_arn: String,
    source: TargetId,
    port: u16,
    resolved: OnceCell<String>,
    http: reqwest::Client,
}

impl ElbTargetHealth {
    /// `port`: the port the target is registered with (the container port, `MANGA_PORT`).
    pub fn new(
        config: &aws_config::SdkConfig,
        target_group_arn: &str,
        source: TargetId,
        port: u16,
    ) -> Result<Self, TargetHealthError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| TargetHealthError::TargetId(e.to_string()))?;
        Ok(ElbTargetHealth {
            client: aws_sdk_elasticloadbalancingv2::Client::new(config),
            target_group_arn: target_group_arn.to_string(),
            source,
            port,
            resolved: OnceCell::new(),
            http,
        })
    }

    async fn target_id(&self) -> Result<&str, TargetHealthError> {
        self.resolved
            .get_or_try_init(|| async {
                match &self.source {
                    TargetId::Fixed(id) => Ok(id.clone()),
                    TargetId::TaskMetadata(uri) => {
                        let id = self.read_task_metadata(uri).await?;
                        tracing::info!(target_id = %id, "target id from the task metadata endpoint");
                        Ok(id)
                    }
                }
            })
            .await
            .map(String::as_str)
    }

    async fn read_task_metadata(&self, uri: &str) -> Result<String, TargetHealthError> {
        let url = format!("{}/task", uri.trim_end_matches('/'));
        let err = |m: String| TargetHealthError::TargetId(format!("{url}: {m}"));
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| err(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(err(format!("HTTP {}", resp.status())));
        }
        let text = resp.text().await.map_err(|e| err(e.to_string()))?;
        let body: Value = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
        task_ipv4(&body)
            .ok_or_else(|| err("no awsvpc IPv4 address in Containers[].Networks[]".into()))
    }
}

/// The task's private IPv4 address: the first `IPv4Addresses` entry of an `awsvpc`
/// network of any container (all containers of an awsvpc task share its ENI).
pub fn task_ipv4(task: &Value) -> Option<String> {
    task["Containers"]
        .as_array()?
        .iter()
        .filter_map(|c| c["Networks"].as_array())
        .flatten()
        .filter(|n| n["NetworkMode"].as_str().is_none_or(|m| m == "awsvpc"))
        .find_map(|n| n["IPv4Addresses"][0].as_str().map(str::to_string))
}

/// The watcher's view of one `TargetHealth`.
pub fn classify(
    state: Option<&TargetHealthStateEnum>,
    reason: Option<&TargetHealthReasonEnum>,
) -> TargetState {
    match state {
        Some(TargetHealthStateEnum::Draining | TargetHealthStateEnum::UnhealthyDraining) => {
            TargetState::Draining
        }
        _ if reason == Some(&TargetHealthReasonEnum::NotRegistered) => TargetState::NotRegistered,
        Some(TargetHealthStateEnum::Unused) if reason.is_none() => TargetState::NotRegistered,
        Some(s) => TargetState::Serving(s.as_str().to_string()),
        None => TargetState::Serving("unknown".into()),
    }
}

#[async_trait]
impl TargetHealth for ElbTargetHealth {
    async fn state(&self) -> Result<TargetState, TargetHealthError> {
        let id = self.target_id().await?;
        let out = self
            .client
            .describe_target_health()
            .target_group_arn(&self.target_group_arn)
            .targets(
                TargetDescription::builder()
                    .id(id)
                    .port(i32::from(self.port))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| TargetHealthError::Api(super::describe(&e)))?;
        let health = out
            .target_health_descriptions()
            .iter()
            .find(|d| d.target().and_then(TargetDescription::id) == Some(id))
            .and_then(|d| d.target_health())
            .ok_or_else(|| {
                TargetHealthError::Api(format!("no health for target {id} in the response"))
            })?;
        Ok(classify(health.state(), health.reason()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_task_address_is_read_from_the_documented_task_response() {
        // Shaped like the example task response of the v4 endpoint's documentation.
        let task = json!({
            "Cluster": "arn:aws:ecs:us-west-2:111122223333:cluster/default",
            "KnownStatus": "RUNNING",
            "Containers": [{
                "Name": "query-metadata",
                "Networks": [{
                    "NetworkMode": "awsvpc",
                    "IPv4Addresses": ["10.0.0.108"],
                    "IPv4SubnetCIDRBlock": "10.0.0.0/24",
                    "PrivateDNSName": "ip-10-0-0-108.us-west-2.compute.internal"
                }]
            }]
        });
        assert_eq!(task_ipv4(&task).as_deref(), Some("10.0.0.108"));
        assert_eq!(task_ipv4(&json!({"Containers": [{"Name": "x"}]})), None);
        assert_eq!(task_ipv4(&json!({"KnownStatus": "RUNNING"})), None);
    }

    #[test]
    fn draining_states_are_drains_and_unused_is_not_registered() {
        use TargetHealthReasonEnum as R;
        use TargetHealthStateEnum as S;
        assert_eq!(
            classify(Some(&S::Draining), Some(&R::DeregistrationInProgress)),
            TargetState::Draining
        );
        assert_eq!(
            classify(Some(&S::UnhealthyDraining), None),
            TargetState::Draining
        );
        assert_eq!(
            classify(Some(&S::Unused), Some(&R::NotRegistered)),
            TargetState::NotRegistered
        );
        assert_eq!(
            classify(Some(&S::Healthy), None),
            TargetState::Serving("healthy".into())
        );
        // moto answers `unavailable` for an IP it never saw registered.
        assert_eq!(
            classify(Some(&S::Unavailable), Some(&R::NotRegistered)),
            TargetState::NotRegistered
        );
        assert_eq!(
            classify(Some(&S::Unused), Some(&R::NotInUse)),
            TargetState::Serving("unused".into())
        );
    }
}
