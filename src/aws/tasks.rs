//! The [`TaskRunner`] trait: one-off ECS tasks and their logs, for
//! `mangactl index` (logic in `src/deploy/index.rs`), which runs
//! `manga-runtime index` inside the VPC because the OpenSearch Serverless
//! collection is reachable only from there.
//!
//! | what | API |
//! |---|---|
//! | the service's container and its log configuration | ECS `DescribeTaskDefinition` |
//! | start the task | ECS `RunTask` |
//! | follow it | ECS `DescribeTasks` |
//! | its output | CloudWatch Logs `GetLogEvents` |
//!
//! [`SdkTaskRunner`] implements it with the AWS SDK; `src/fakes/tasks.rs`
//! (feature `fakes`) is the double fed the ECS API reference's response
//! documents, for what moto cannot do (moto's tasks never fail to start and
//! their containers always report exit code 0). Plain types only: the
//! logic never sees SDK types, and every failed call is an [`AwsError`].

use std::fmt;

use async_trait::async_trait;
use serde::Serialize;

use super::error::{AwsError, ErrorClass};

pub type TaskResult<T> = Result<T, AwsError>;

/// Where the `awslogs` driver sends a container's output (its
/// `logConfiguration.options`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AwsLogs {
    /// `awslogs-group`.
    pub group: String,
    /// `awslogs-region`, if set.
    pub region: Option<String>,
    /// `awslogs-stream-prefix`, if set (Fargate requires one).
    pub stream_prefix: Option<String>,
}

impl AwsLogs {
    /// The log stream of `container` in task `task_id`: "the log stream
    /// takes the following format: prefix-name/container-name/ecs-task-id"
    /// (Amazon ECS Developer Guide, "Using the awslogs log driver",
    /// `awslogs-stream-prefix`; also
    /// https://docs.aws.amazon.com/prescriptive-guidance/latest/implementing-logging-monitoring-cloudwatch/ec2-fargate-logs.html:
    /// `<awslogs-stream-prefix>/<container_name>/<task_id>`). Without a
    /// prefix the stream is named after the container's Docker ID, which
    /// the API does not report, so there is no stream to name.
    pub fn stream(&self, container: &str, task_id: &str) -> Option<String> {
        self.stream_prefix
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(|p| format!("{p}/{container}/{task_id}"))
    }
}

/// A container of a task definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerDefinition {
    pub name: String,
    pub essential: bool,
    /// `None` when the container does not log with `awslogs`.
    pub logs: Option<AwsLogs>,
}

/// A task definition revision, as much of it as a one-off run needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskDefinition {
    pub arn: String,
    pub containers: Vec<ContainerDefinition>,
}

impl TaskDefinition {
    pub fn container(&self, name: &str) -> Option<&ContainerDefinition> {
        self.containers.iter().find(|c| c.name == name)
    }
}

/// One `RunTask` call: a single Fargate task of `task_definition` in the
/// given subnets and security groups, with one container's command
/// overridden.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunTaskRequest {
    pub cluster: String,
    pub task_definition: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    /// `ENABLED` or `DISABLED`.
    pub assign_public_ip: String,
    /// The container whose command is overridden.
    pub container: String,
    pub command: Vec<String>,
    /// Up to 128 letters, numbers, hyphens and underscores (API reference).
    pub started_by: String,
}

impl RunTaskRequest {
    /// The request document as the ECS API reference spells it (RunTask,
    /// request syntax), for `--dry-run`. The SDK sends the same fields; it
    /// also adds a `clientToken` of its own, so a retried call does not
    /// start a second task
    /// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/ECS_Idempotency.html).
    pub fn to_api_json(&self) -> serde_json::Value {
        serde_json::json!({
            "cluster": self.cluster,
            "taskDefinition": self.task_definition,
            "count": 1,
            "launchType": "FARGATE",
            "startedBy": self.started_by,
            "propagateTags": "TASK_DEFINITION",
            "networkConfiguration": {
                "awsvpcConfiguration": {
                    "subnets": self.subnets,
                    "securityGroups": self.security_groups,
                    "assignPublicIp": self.assign_public_ip,
                }
            },
            "overrides": {
                "containerOverrides": [
                    { "name": self.container, "command": self.command }
                ]
            }
        })
    }
}

/// A `failures` entry of `RunTask` or `DescribeTasks`: the call succeeded,
/// the task did not ("API failure reasons", Amazon ECS Developer Guide).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskFailure {
    pub arn: Option<String>,
    pub reason: String,
    pub detail: Option<String>,
}

impl fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)?;
        if let Some(d) = &self.detail {
            write!(f, " ({d})")?;
        }
        if let Some(a) = &self.arn {
            write!(f, " [{a}]")?;
        }
        Ok(())
    }
}

/// What `RunTask` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// The task's ARN.
    Task(String),
    /// No task was started; ECS said why.
    Failed(Vec<TaskFailure>),
}

/// A container of a running or stopped task (`DescribeTasks`
/// `tasks[].containers[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerState {
    pub name: String,
    pub last_status: Option<String>,
    /// Set once the container has exited; `None` when it never ran.
    pub exit_code: Option<i32>,
    /// A short reason (`OutOfMemoryError: Container killed due to memory
    /// usage`, `CannotPullContainerError: …`).
    pub reason: Option<String>,
}

/// A task as `DescribeTasks` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskState {
    pub arn: String,
    /// `PROVISIONING`, `PENDING`, `ACTIVATING`, `RUNNING`, `DEACTIVATING`,
    /// `STOPPING`, `DEPROVISIONING`, `STOPPED`, `DELETED` (task lifecycle,
    /// Amazon ECS Developer Guide).
    pub last_status: String,
    pub desired_status: Option<String>,
    /// `TaskFailedToStart`, `EssentialContainerExited`, `UserInitiated`,
    /// `ServiceSchedulerInitiated`, `SpotInterruption`, `TerminationNotice`
    /// (API reference, Task `stopCode`; "Stopped tasks error codes").
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    pub containers: Vec<ContainerState>,
}

impl TaskState {
    /// Whether the task has ended: STOPPED, or DELETED (a stopped task ECS
    /// has already cleaned up).
    pub fn is_stopped(&self) -> bool {
        matches!(self.last_status.as_str(), "STOPPED" | "DELETED")
    }

    pub fn container(&self, name: &str) -> Option<&ContainerState> {
        self.containers.iter().find(|c| c.name == name)
    }
}

/// The task ID: the last segment of the task ARN (`…:task/cluster/ID` in
/// the long ARN format, `…:task/ID` in the old one).
pub fn task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// One page of a log stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogPage {
    /// The events' messages, oldest first.
    pub lines: Vec<String>,
    /// Where the next read starts (`nextForwardToken`).
    pub next_token: Option<String>,
}

/// One-off ECS tasks and their logs.
#[async_trait]
pub trait TaskRunner: Send + Sync + fmt::Debug {
    /// `DescribeTaskDefinition`; `Ok(None)` when it does not exist.
    async fn task_definition(&self, arn: &str) -> TaskResult<Option<TaskDefinition>>;
    /// `RunTask` with one task.
    async fn run_task(&self, request: &RunTaskRequest) -> TaskResult<Started>;
    /// `DescribeTasks` of one task; `Ok(None)` when ECS does not know it
    /// (yet: the API is eventually consistent).
    async fn describe_task(&self, cluster: &str, arn: &str) -> TaskResult<Option<TaskState>>;
    /// `GetLogEvents` from the head of `stream` (or from `token`);
    /// `Ok(None)` when the stream does not exist (yet).
    async fn log_events(
        &self,
        group: &str,
        stream: &str,
        token: Option<&str>,
    ) -> TaskResult<Option<LogPage>>;
}

/// [`TaskRunner`] through the AWS SDK, in the environment's region.
#[derive(Debug, Clone)]
pub struct SdkTaskRunner {
    ecs: aws_sdk_ecs::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
}

impl SdkTaskRunner {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        SdkTaskRunner {
            ecs: aws_sdk_ecs::Client::new(config),
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
        }
    }
}

fn missing<T>(e: AwsError) -> TaskResult<Option<T>> {
    if e.class == ErrorClass::NotFound {
        Ok(None)
    } else {
        Err(e)
    }
}

fn failure(f: &aws_sdk_ecs::types::Failure) -> TaskFailure {
    TaskFailure {
        arn: f.arn().map(str::to_owned),
        reason: f.reason().unwrap_or("no reason given").to_owned(),
        detail: f.detail().map(str::to_owned),
    }
}

#[async_trait]
impl TaskRunner for SdkTaskRunner {
    async fn task_definition(&self, arn: &str) -> TaskResult<Option<TaskDefinition>> {
        const OP: &str = "DescribeTaskDefinition";
        let out = match self
            .ecs
            .describe_task_definition()
            .task_definition(arn)
            .send()
            .await
        {
            Ok(o) => o,
            // A missing revision is a ClientException (no dedicated code).
            Err(e) => {
                let e = AwsError::from_sdk("ECS", OP, Some(arn), e);
                if e.code() == Some("ClientException")
                    && e.message()
                        .to_ascii_lowercase()
                        .contains("unable to describe")
                {
                    return Ok(None);
                }
                return missing(e);
            }
        };
        let Some(td) = out.task_definition() else {
            return Ok(None);
        };
        let containers = td
            .container_definitions()
            .iter()
            .map(|c| {
                let logs = c
                    .log_configuration()
                    .filter(|l| l.log_driver().as_str() == "awslogs")
                    .and_then(|l| {
                        let o = l.options()?;
                        Some(AwsLogs {
                            group: o.get("awslogs-group")?.clone(),
                            region: o.get("awslogs-region").cloned(),
                            stream_prefix: o.get("awslogs-stream-prefix").cloned(),
                        })
                    });
                ContainerDefinition {
                    name: c.name().unwrap_or_default().to_owned(),
                    // "If the essential parameter of a container is marked
                    // as true ... All tasks must have at least one essential
                    // container" and it defaults to true (API reference,
                    // ContainerDefinition).
                    essential: c.essential().unwrap_or(true),
                    logs,
                }
            })
            .collect();
        Ok(Some(TaskDefinition {
            arn: td.task_definition_arn().unwrap_or(arn).to_owned(),
            containers,
        }))
    }

    async fn run_task(&self, r: &RunTaskRequest) -> TaskResult<Started> {
        use aws_sdk_ecs::types::{
            AssignPublicIp, AwsVpcConfiguration, ContainerOverride, LaunchType,
            NetworkConfiguration, PropagateTags, TaskOverride,
        };
        let vpc = AwsVpcConfiguration::builder()
            .set_subnets(Some(r.subnets.clone()))
            .set_security_groups(Some(r.security_groups.clone()))
            .assign_public_ip(AssignPublicIp::from(r.assign_public_ip.as_str()))
            .build()
            .map_err(|e| {
                AwsError::unanswered(
                    "ECS",
                    "RunTask",
                    Some(&r.cluster),
                    format!("building the request: {e}"),
                    ErrorClass::Other,
                )
            })?;
        let overrides = TaskOverride::builder()
            .container_overrides(
                ContainerOverride::builder()
                    .name(&r.container)
                    .set_command(Some(r.command.clone()))
                    .build(),
            )
            .build();
        let out = self
            .ecs
            .run_task()
            .cluster(&r.cluster)
            .task_definition(&r.task_definition)
            .count(1)
            .launch_type(LaunchType::Fargate)
            .started_by(&r.started_by)
            // The environment's tags (cost allocation) on the task, as on
            // the service's tasks; tagging on creation needs
            // ecs:TagResource besides ecs:RunTask
            // (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/supported-iam-actions-tagging.html).
            .propagate_tags(PropagateTags::TaskDefinition)
            .network_configuration(
                NetworkConfiguration::builder()
                    .awsvpc_configuration(vpc)
                    .build(),
            )
            .overrides(overrides)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ECS", "RunTask", Some(&r.cluster), e))?;
        if let Some(arn) = out.tasks().iter().find_map(|t| t.task_arn()) {
            return Ok(Started::Task(arn.to_owned()));
        }
        let mut failures: Vec<TaskFailure> = out.failures().iter().map(failure).collect();
        if failures.is_empty() {
            failures.push(TaskFailure {
                arn: None,
                reason: "RunTask returned neither a task nor a failure".into(),
                detail: None,
            });
        }
        Ok(Started::Failed(failures))
    }

    async fn describe_task(&self, cluster: &str, arn: &str) -> TaskResult<Option<TaskState>> {
        let out = self
            .ecs
            .describe_tasks()
            .cluster(cluster)
            .tasks(arn)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ECS", "DescribeTasks", Some(arn), e))?;
        // An unknown task is a `failures` entry (reason MISSING), not an error.
        let Some(t) = out
            .tasks()
            .iter()
            .find(|t| t.task_arn().is_some_and(|a| task_id(a) == task_id(arn)))
        else {
            return Ok(None);
        };
        Ok(Some(TaskState {
            arn: t.task_arn().unwrap_or(arn).to_owned(),
            last_status: t.last_status().unwrap_or("UNKNOWN").to_owned(),
            desired_status: t.desired_status().map(str::to_owned),
            stop_code: t.stop_code().map(|c| c.as_str().to_owned()),
            stopped_reason: t
                .stopped_reason()
                .filter(|r| !r.is_empty())
                .map(str::to_owned),
            containers: t
                .containers()
                .iter()
                .map(|c| ContainerState {
                    name: c.name().unwrap_or_default().to_owned(),
                    last_status: c.last_status().map(str::to_owned),
                    exit_code: c.exit_code(),
                    reason: c.reason().filter(|r| !r.is_empty()).map(str::to_owned),
                })
                .collect(),
        }))
    }

    async fn log_events(
        &self,
        group: &str,
        stream: &str,
        token: Option<&str>,
    ) -> TaskResult<Option<LogPage>> {
        let resource = format!("{group}:{stream}");
        let out = match self
            .logs
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .start_from_head(true)
            .set_next_token(token.map(str::to_owned))
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) => {
                return missing(AwsError::from_sdk(
                    "CloudWatch Logs",
                    "GetLogEvents",
                    Some(&resource),
                    e,
                ))
            }
        };
        Ok(Some(LogPage {
            lines: out
                .events()
                .iter()
                .filter_map(|e| e.message().map(|m| m.trim_end_matches('\n').to_owned()))
                .collect(),
            next_token: out.next_forward_token().map(str::to_owned),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_follow_the_awslogs_format() {
        let logs = AwsLogs {
            group: "/mangaassist/dev/runtime".into(),
            region: None,
            stream_prefix: Some("runtime".into()),
        };
        assert_eq!(
            logs.stream("runtime", "0f3a").as_deref(),
            Some("runtime/runtime/0f3a")
        );
        let none = AwsLogs {
            stream_prefix: None,
            ..logs
        };
        assert_eq!(none.stream("runtime", "0f3a"), None);
    }

    #[test]
    fn task_ids_come_from_either_arn_format() {
        assert_eq!(
            task_id("arn:aws:ecs:us-east-1:123456789012:task/c/0f3a9e"),
            "0f3a9e"
        );
        assert_eq!(
            task_id("arn:aws:ecs:us-east-1:123456789012:task/0f3a9e"),
            "0f3a9e"
        );
    }
}
