//! [`FakeTasks`]: a double of the ECS task and CloudWatch Logs calls behind
//! [`crate::aws::TaskRunner`], for what moto cannot produce: moto's tasks
//! never fail to start, report no stop code, and their containers always
//! exit 0; and no moto task writes logs. Tests script:
//!
//! - the `DescribeTasks` answers, one per call (the last repeats), each a
//!   `tasks[]` element of the response as the ECS API reference documents
//!   it (`lastStatus`, `desiredStatus`, `stopCode`, `stoppedReason`,
//!   `containers[].name/lastStatus/exitCode/reason`), or `None` for a task
//!   ECS does not show yet (a `failures` entry `MISSING`: the API is
//!   eventually consistent);
//! - `RunTask`'s `failures` (then no task starts);
//! - the lines the container writes and after which `DescribeTasks` call
//!   each is visible in the log stream. `GetLogEvents` answers for the one
//!   stream the `awslogs` driver would write (`prefix/container/task-id`)
//!   and `ResourceNotFoundException` for any other, or before the first
//!   line; pages hold at most [`PAGE`] events, and at the end of the stream
//!   `nextForwardToken` is the token passed in, as the API reference says.

use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use serde_json::Value;

use crate::aws::tasks::{
    AwsLogs, ContainerDefinition, ContainerState, LogPage, RunTaskRequest, Started, TaskDefinition,
    TaskFailure, TaskResult, TaskRunner, TaskState,
};
use crate::aws::AwsError;

/// The task ID every started task gets.
pub const TASK_ID: &str = "0f3a9e2b7c1d4e5f8a6b9c0d1e2f3a4b";

/// Events per `GetLogEvents` page (small, so paging is exercised).
pub const PAGE: usize = 2;

/// What the fake holds; tests read it back.
#[derive(Debug, Default, Clone)]
pub struct TasksState {
    pub task_definition: Option<TaskDefinition>,
    /// `RunTask` answers these failures instead of starting a task.
    pub run_failures: Vec<TaskFailure>,
    /// `DescribeTasks` answers, in order; the last repeats.
    pub describes: Vec<Option<Value>>,
    /// (visible after this many DescribeTasks calls, line).
    pub lines: Vec<(usize, String)>,
    /// The RunTask requests received.
    pub requests: Vec<RunTaskRequest>,
    /// Operations answered, in order.
    pub calls: Vec<String>,
    /// Log streams asked for.
    pub streams_read: Vec<String>,
    pub describe_calls: usize,
    /// The next call of an operation fails with this error.
    pub failures: std::collections::BTreeMap<&'static str, AwsError>,
}

#[derive(Debug, Default, Clone)]
pub struct FakeTasks {
    state: Arc<Mutex<TasksState>>,
}

impl FakeTasks {
    /// A task definition `arn` with the service's `runtime` container logging
    /// with `awslogs` to `log_group`, stream prefix `runtime`, as the service
    /// stack renders it.
    pub fn new(arn: &str, log_group: &str) -> Self {
        let fake = FakeTasks::default();
        fake.edit(|s| {
            s.task_definition = Some(TaskDefinition {
                arn: arn.to_owned(),
                containers: vec![ContainerDefinition {
                    name: "runtime".into(),
                    essential: true,
                    logs: Some(AwsLogs {
                        group: log_group.to_owned(),
                        region: Some("us-east-1".into()),
                        stream_prefix: Some("runtime".into()),
                    }),
                }],
            });
        });
        fake
    }

    fn lock(&self) -> MutexGuard<'_, TasksState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn edit<R>(&self, f: impl FnOnce(&mut TasksState) -> R) -> R {
        f(&mut self.lock())
    }

    pub fn state(&self) -> TasksState {
        self.lock().clone()
    }

    /// The ARN of the task RunTask starts in `cluster`.
    pub fn task_arn(cluster: &str) -> String {
        format!("arn:aws:ecs:us-east-1:123456789012:task/{cluster}/{TASK_ID}")
    }

    /// The `DescribeTasks` answers (ECS API reference `tasks[]` elements;
    /// `taskArn` may be left out).
    pub fn script(&self, describes: Vec<Option<Value>>) {
        self.edit(|s| s.describes = describes);
    }

    /// Lines of the container's output, each visible after `n` DescribeTasks calls.
    pub fn write_lines(&self, lines: &[(usize, &str)]) {
        self.edit(|s| {
            s.lines = lines.iter().map(|(n, l)| (*n, (*l).to_owned())).collect();
        });
    }

    fn take_failure(s: &mut TasksState, op: &'static str) -> TaskResult<()> {
        s.calls.push(op.to_owned());
        match s.failures.remove(op) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// A `tasks[]` element of a DescribeTasks response, as the API reference
/// spells it.
fn task_from_api(v: &Value, arn: &str) -> TaskState {
    TaskState {
        arn: text(v, "taskArn").unwrap_or_else(|| arn.to_owned()),
        last_status: text(v, "lastStatus").unwrap_or_else(|| "UNKNOWN".into()),
        desired_status: text(v, "desiredStatus"),
        stop_code: text(v, "stopCode"),
        stopped_reason: text(v, "stoppedReason"),
        containers: v
            .get("containers")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .map(|c| ContainerState {
                        name: text(c, "name").unwrap_or_default(),
                        last_status: text(c, "lastStatus"),
                        exit_code: c
                            .get("exitCode")
                            .and_then(Value::as_i64)
                            .and_then(|n| i32::try_from(n).ok()),
                        reason: text(c, "reason"),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

#[async_trait]
impl TaskRunner for FakeTasks {
    async fn task_definition(&self, arn: &str) -> TaskResult<Option<TaskDefinition>> {
        let mut s = self.lock();
        Self::take_failure(&mut s, "DescribeTaskDefinition")?;
        Ok(s.task_definition.clone().filter(|t| t.arn == arn))
    }

    async fn run_task(&self, request: &RunTaskRequest) -> TaskResult<Started> {
        let mut s = self.lock();
        Self::take_failure(&mut s, "RunTask")?;
        s.requests.push(request.clone());
        if !s.run_failures.is_empty() {
            return Ok(Started::Failed(s.run_failures.clone()));
        }
        Ok(Started::Task(Self::task_arn(&request.cluster)))
    }

    async fn describe_task(&self, cluster: &str, arn: &str) -> TaskResult<Option<TaskState>> {
        let mut s = self.lock();
        Self::take_failure(&mut s, "DescribeTasks")?;
        if arn != Self::task_arn(cluster) {
            return Ok(None);
        }
        let i = s.describe_calls.min(s.describes.len().saturating_sub(1));
        s.describe_calls += 1;
        Ok(s.describes
            .get(i)
            .cloned()
            .flatten()
            .map(|v| task_from_api(&v, arn)))
    }

    async fn log_events(
        &self,
        group: &str,
        stream: &str,
        token: Option<&str>,
    ) -> TaskResult<Option<LogPage>> {
        let mut s = self.lock();
        Self::take_failure(&mut s, "GetLogEvents")?;
        s.streams_read.push(stream.to_owned());
        let Some(logs) = s
            .task_definition
            .as_ref()
            .and_then(|t| t.container("runtime"))
            .and_then(|c| c.logs.clone())
        else {
            return Ok(None);
        };
        let visible: Vec<&String> = s
            .lines
            .iter()
            .filter(|(n, _)| *n <= s.describe_calls)
            .map(|(_, l)| l)
            .collect();
        // The driver creates the stream with the container's first write.
        if group != logs.group
            || Some(stream) != logs.stream("runtime", TASK_ID).as_deref()
            || visible.is_empty()
        {
            return Ok(None);
        }
        let from: usize = token
            .and_then(|t| t.strip_prefix("f/"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let to = visible.len().min(from + PAGE);
        let lines: Vec<String> = visible
            .get(from..to)
            .unwrap_or_default()
            .iter()
            .map(|l| (*l).clone())
            .collect();
        // At the end of the stream, the token passed in comes back.
        let next = if lines.is_empty() {
            token.map_or_else(|| format!("f/{from}"), str::to_owned)
        } else {
            format!("f/{to}")
        };
        Ok(Some(LogPage {
            lines,
            next_token: Some(next),
        }))
    }
}
