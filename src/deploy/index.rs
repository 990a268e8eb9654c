//! `mangactl index`: runs `manga-runtime index` (which creates and fills the
//! OpenSearch index, `runtime/src/backends/aws/index.rs`) where it can reach
//! the collection: a one-off ECS task inside the VPC. The CLI file is
//! `src/cli/index.rs`; the ECS and CloudWatch Logs calls go through
//! [`TaskRunner`] (`src/aws/tasks.rs`).
//!
//! 1. [`prepare`] reads the deployed service stack: its `ClusterName` and
//!    `TaskDefinitionArn` outputs, and the private subnets and service
//!    security group its parameters carry (the values its ECS service's
//!    `AwsvpcConfiguration` was given, `stacks/src/stacks/service.rs`); then
//!    the task definition's `runtime` container and its `awslogs`
//!    configuration (DescribeTaskDefinition). The result is the RunTask
//!    request `--dry-run` prints.
//! 2. [`run`] starts the task, polls DescribeTasks with backoff until it is
//!    STOPPED or the timeout passes, and streams the container's log stream
//!    (`prefix/container/task-id`) as it goes.
//! 3. [`judge`] turns the stopped task into a [`Verdict`], and the verdict
//!    into the exit code (`src/outcome.rs`): the container's exit code 0 is
//!    success, 3 (the index command's "incomplete") is 3, anything else 1;
//!    a task that never started (stop code `TaskFailedToStart`) is 1 with
//!    ECS's reason; a timeout is 3, and the task is left running (the index
//!    command is idempotent, so letting it finish is safe).
//!
//! **Why the service's own task definition** rather than a dedicated one:
//! the index must be built with the embedding model, index name and
//! collection endpoint the service queries with, and those are the task
//! definition's environment; its task role is the principal the search
//! stack's data access policy grants `aoss:CreateIndex`/`WriteDocument`
//! (by the role's fixed name); its log group is the runtime's. A second
//! task definition would duplicate all three and need a second grant. What
//! differs is overridden at run time: the command (`index`). The container
//! health check (`manga-runtime healthcheck`, GET /healthz) fails while the
//! index command runs, as nothing serves HTTP, but "if a task is run
//! manually, and not as part of a service, the task will continue its
//! lifecycle regardless of its health status" (ECS API Reference,
//! HealthCheck: https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_HealthCheck.html),
//! and RunTask registers no load balancer target.

use std::time::Duration;

use serde::Serialize;
use stacks::render::Rendered;
use stacks::stacks::{network, service, StackId};

use super::Backoff;
use crate::aws::tasks::{task_id, AwsLogs, RunTaskRequest, Started, TaskRunner, TaskState};
use crate::aws::{AwsError, CloudFormation};

/// `startedBy` of every index task, so they can be listed
/// (`aws ecs list-tasks --started-by mangactl-index`).
pub const STARTED_BY: &str = "mangactl-index";

/// The runtime subcommand the task runs (runtime/src/config/mod.rs,
/// `Command::Index`); the image's ENTRYPOINT is the runtime binary
/// (runtime/Dockerfile), so the command override is its arguments.
pub const COMMAND: &str = "index";

/// The index command's "incomplete" exit code (runtime/src/main.rs).
pub const INCOMPLETE_EXIT: i32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index: {0}")]
    NotDeployed(String),
    #[error("index: ECS did not start the task:\n  - {}", .0.join("\n  - "))]
    NotStarted(Vec<String>),
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// What `mangactl index` runs, read from the deployed stacks.
#[derive(Debug, Clone, Serialize)]
pub struct IndexPlan {
    pub stack: String,
    pub request: RunTaskRequest,
    /// Where the container's output goes; `None` when it does not log
    /// with `awslogs` (the run then shows no output).
    pub logs: Option<AwsLogs>,
}

fn not_deployed(what: impl Into<String>) -> IndexError {
    IndexError::NotDeployed(what.into())
}

/// The deployed value of the service stack's parameter that carries
/// `network`'s output `output`.
fn network_parameter(
    rendered: &Rendered,
    stack: &crate::aws::cloudformation::Stack,
    output: &str,
) -> Result<String, IndexError> {
    let refs = &rendered
        .manifest
        .stacks
        .get(&StackId::Service)
        .ok_or_else(|| not_deployed("the service stack is not in the manifest"))?
        .references;
    let param = refs
        .iter()
        .find(|(_, r)| r.stack == StackId::Network && r.output == output)
        .map(|(p, _)| p)
        .ok_or_else(|| not_deployed(format!("the service stack takes no {output} parameter")))?;
    stack
        .parameters
        .get(param)
        .filter(|v| !v.is_empty())
        .cloned()
        .ok_or_else(|| {
            not_deployed(format!(
                "{} has no value for parameter {param}; apply the environment again",
                stack.name
            ))
        })
}

/// Reads the deployed service stack and its task definition into the
/// RunTask request. Reads only.
pub async fn prepare(
    cfn: &dyn CloudFormation,
    runner: &dyn TaskRunner,
    rendered: &Rendered,
) -> Result<IndexPlan, IndexError> {
    let s = rendered
        .stacks
        .iter()
        .find(|s| s.id == StackId::Service)
        .ok_or_else(|| not_deployed("the service stack is not rendered"))?;
    let stack = cfn
        .describe_stack(&s.stack_name)
        .await?
        .filter(|st| !st.status.is_review())
        .ok_or_else(|| {
            not_deployed(format!(
                "{} does not exist; apply the environment first",
                s.stack_name
            ))
        })?;
    let output = |key: stacks::model::template::OutputKey| {
        stack.output(key.name).map(str::to_owned).ok_or_else(|| {
            not_deployed(format!(
                "{} has no output {}; apply the environment again",
                stack.name, key.name
            ))
        })
    };
    let cluster = output(service::CLUSTER_NAME)?;
    let task_definition = output(service::TASK_DEFINITION)?;
    let split = |v: String| -> Vec<String> {
        v.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let subnets = split(network_parameter(
        rendered,
        &stack,
        network::PRIVATE_SUBNETS.name,
    )?);
    let security_groups = split(network_parameter(
        rendered,
        &stack,
        network::SERVICE_SG.name,
    )?);
    // As the service's own tasks get it (private subnets: DISABLED, egress
    // through the NAT gateways).
    let assign_public_ip = s.template.to_value()["Resources"]["Service"]["Properties"]
        ["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"]
        .as_str()
        .unwrap_or("DISABLED")
        .to_owned();
    let td = runner
        .task_definition(&task_definition)
        .await?
        .ok_or_else(|| not_deployed(format!("task definition {task_definition} does not exist")))?;
    let container = td.container(service::CONTAINER_NAME).ok_or_else(|| {
        not_deployed(format!(
            "task definition {} has no container {}",
            td.arn,
            service::CONTAINER_NAME
        ))
    })?;
    Ok(IndexPlan {
        stack: stack.name.clone(),
        request: RunTaskRequest {
            cluster,
            task_definition: td.arn.clone(),
            subnets,
            security_groups,
            assign_public_ip,
            container: container.name.clone(),
            command: vec![COMMAND.to_owned()],
            started_by: STARTED_BY.to_owned(),
        },
        logs: container.logs.clone(),
    })
}

/// How [`run`] waits.
#[derive(Debug, Clone, Copy)]
pub struct WaitOptions {
    /// From RunTask until the task must have stopped.
    pub timeout: Duration,
    /// DescribeTasks (and log) polling.
    pub backoff: Backoff,
    /// Reads of the log stream after the task stopped, `backoff.initial`
    /// apart, for lines CloudWatch Logs shows late; they end early once a
    /// read adds nothing to the lines already shown.
    pub final_log_reads: u32,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            timeout: Duration::from_secs(30 * 60),
            // A Fargate task takes tens of seconds to start; the first
            // polls are still quick for the emulators the tests use.
            backoff: Backoff {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(10),
                factor: 1.6,
            },
            final_log_reads: 3,
        }
    }
}

/// What [`run`] reports as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    Started {
        arn: &'a str,
    },
    /// The task's `lastStatus` changed.
    Status {
        status: &'a str,
    },
    /// A line of the container's output.
    Line(&'a str),
    /// The log stream could not be read (the run goes on without it).
    LogsUnavailable(&'a str),
}

/// How the run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// The index command exited 0: the index is complete.
    Complete,
    /// It exited 3: some documents could not be written (run it again).
    Incomplete,
    /// It exited otherwise, or the task stopped without an exit code.
    Failed { reason: String },
    /// The task never started (stop code `TaskFailedToStart`).
    NotStarted { reason: String },
    /// The task had not stopped when the timeout passed; it was left running.
    TimedOut { after_s: u64 },
}

/// One run: the task, its output and the verdict.
#[derive(Debug, Clone, Serialize)]
pub struct IndexRun {
    pub task_arn: String,
    pub task_id: String,
    pub log_group: Option<String>,
    pub log_stream: Option<String>,
    /// The task as last described.
    pub task: Option<TaskState>,
    /// The container's output, oldest first.
    pub lines: Vec<String>,
    /// Why the output could not be read, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs_note: Option<String>,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// The stopped task's verdict from `container`'s exit code: "the exit code
/// for the container ... if the container has stopped" (ECS API Reference,
/// Container `exitCode`), the stop code first: `TaskFailedToStart` means
/// the container never ran ("Stopped tasks error codes", Amazon ECS
/// Developer Guide:
/// https://docs.aws.amazon.com/AmazonECS/latest/userguide/stopped-task-error-codes.html).
pub fn judge(task: &TaskState, container: &str) -> Verdict {
    let c = task.container(container);
    let reasons = || {
        let mut r: Vec<String> = Vec::new();
        if let Some(s) = &task.stopped_reason {
            r.push(s.clone());
        }
        if let Some(cr) = c.and_then(|c| c.reason.as_deref()) {
            r.push(format!("container {container}: {cr}"));
        }
        if r.is_empty() {
            "ECS gave no reason".to_owned()
        } else {
            r.join("; ")
        }
    };
    if task.stop_code.as_deref() == Some("TaskFailedToStart") {
        return Verdict::NotStarted {
            reason: format!("TaskFailedToStart: {}", reasons()),
        };
    }
    match c.and_then(|c| c.exit_code) {
        Some(0) => Verdict::Complete,
        Some(INCOMPLETE_EXIT) => Verdict::Incomplete,
        Some(n) => Verdict::Failed {
            reason: format!("the index command exited {n}: {}", reasons()),
        },
        None => Verdict::Failed {
            reason: format!(
                "the task stopped ({}) without an exit code from container {container}: {}",
                task.stop_code.as_deref().unwrap_or("no stop code"),
                reasons()
            ),
        },
    }
}

/// Follows one log stream from its head.
struct LogReader<'a> {
    group: Option<&'a str>,
    stream: Option<String>,
    token: Option<String>,
    lines: Vec<String>,
    note: Option<String>,
}

/// Pages read per poll at most (GetLogEvents returns up to 10,000 events
/// or 1 MB a page): a long backlog is shown over several polls.
const PAGES_PER_READ: usize = 20;

impl LogReader<'_> {
    /// Reads what is new; returns how many lines.
    async fn read(&mut self, runner: &dyn TaskRunner, on: &(dyn Fn(Event<'_>) + Sync)) -> usize {
        let (Some(group), Some(stream)) = (self.group, self.stream.as_deref()) else {
            return 0;
        };
        if self.note.is_some() {
            return 0;
        }
        let mut added = 0;
        for _ in 0..PAGES_PER_READ {
            match runner
                .log_events(group, stream, self.token.as_deref())
                .await
            {
                // Not there yet: the container has not written anything.
                Ok(None) => break,
                Ok(Some(page)) => {
                    for l in &page.lines {
                        on(Event::Line(l));
                    }
                    added += page.lines.len();
                    self.lines.extend(page.lines);
                    // "If you have reached the end of the stream, it returns
                    // the same token you passed in" (CloudWatch Logs API
                    // Reference, GetLogEvents:
                    // https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetLogEvents.html).
                    let at_end = page.next_token.is_none() || page.next_token == self.token;
                    self.token = page.next_token;
                    if at_end {
                        break;
                    }
                }
                Err(e) => {
                    let why = e.to_string();
                    on(Event::LogsUnavailable(&why));
                    self.note = Some(why);
                    break;
                }
            }
        }
        added
    }
}

/// Starts the task, follows it and its output until it stops or
/// `opts.timeout` passes, and judges it. An error is a failed call (or
/// RunTask's own failures); a task that ran and failed is a [`Verdict`].
pub async fn run(
    runner: &dyn TaskRunner,
    plan: &IndexPlan,
    opts: &WaitOptions,
    on: &(dyn Fn(Event<'_>) + Sync),
) -> Result<IndexRun, IndexError> {
    let started_at = tokio::time::Instant::now();
    let deadline = started_at + opts.timeout;
    let arn = match runner.run_task(&plan.request).await? {
        Started::Task(arn) => arn,
        Started::Failed(failures) => {
            return Err(IndexError::NotStarted(
                failures.iter().map(ToString::to_string).collect(),
            ))
        }
    };
    on(Event::Started { arn: &arn });
    let id = task_id(&arn).to_owned();
    let cluster = &plan.request.cluster;
    let mut logs = LogReader {
        group: plan.logs.as_ref().map(|l| l.group.as_str()),
        stream: plan
            .logs
            .as_ref()
            .and_then(|l| l.stream(&plan.request.container, &id)),
        token: None,
        lines: Vec::new(),
        note: None,
    };
    let mut task: Option<TaskState> = None;
    let mut delay = opts.backoff.initial;
    let finished = loop {
        // None: not visible yet (the ECS API is eventually consistent: the
        // RunTask reference's note), which the deadline bounds.
        if let Some(t) = runner.describe_task(cluster, &arn).await? {
            if task.as_ref().map(|p| p.last_status.as_str()) != Some(t.last_status.as_str()) {
                on(Event::Status {
                    status: &t.last_status,
                });
            }
            task = Some(t);
        }
        logs.read(runner, on).await;
        if task.as_ref().is_some_and(TaskState::is_stopped) {
            break true;
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            break false;
        }
        tokio::time::sleep(delay.min(deadline - now)).await;
        delay = opts.backoff.next(delay);
    };
    if finished {
        for _ in 0..opts.final_log_reads {
            tokio::time::sleep(opts.backoff.initial).await;
            let added = logs.read(runner, on).await;
            if added == 0 && !logs.lines.is_empty() {
                break;
            }
        }
    }
    let verdict = match (&task, finished) {
        (Some(t), true) => judge(t, &plan.request.container),
        _ => Verdict::TimedOut {
            after_s: opts.timeout.as_secs(),
        },
    };
    Ok(IndexRun {
        task_arn: arn.clone(),
        task_id: id,
        log_group: logs.group.map(str::to_owned),
        log_stream: logs.stream,
        task,
        lines: logs.lines,
        logs_note: logs.note,
        verdict,
    })
}

/// The closing lines of a run, for people.
pub fn render_text(plan: &IndexPlan, run: &IndexRun) -> String {
    let mut out = String::new();
    let status = run
        .task
        .as_ref()
        .map_or("never described", |t| t.last_status.as_str());
    match &run.verdict {
        Verdict::Complete => out.push_str(&format!(
            "index complete: task {} exited 0\n",
            run.task_id
        )),
        Verdict::Incomplete => out.push_str(&format!(
            "index incomplete: task {} exited {INCOMPLETE_EXIT} (some documents could not be written; the output above says which); run `mangactl index` again\n",
            run.task_id
        )),
        Verdict::Failed { reason } => {
            out.push_str(&format!("index failed: task {}: {reason}\n", run.task_id))
        }
        Verdict::NotStarted { reason } => out.push_str(&format!(
            "index failed: task {} never started: {reason}\n",
            run.task_id
        )),
        Verdict::TimedOut { after_s } => out.push_str(&format!(
            "index did not finish within {after_s}s: task {} is {status} and was left running (the index command is idempotent); follow it with `aws ecs describe-tasks --cluster {} --tasks {}`{}\n",
            run.task_id,
            plan.request.cluster,
            run.task_arn,
            match (&run.log_group, &run.log_stream) {
                (Some(g), Some(s)) => format!(" and its output in log group {g}, stream {s}"),
                _ => String::new(),
            }
        )),
    }
    if let Some(note) = &run.logs_note {
        out.push_str(&format!("(its output could not be read: {note})\n"));
    } else if run.log_stream.is_none() {
        out.push_str(
            "(the container does not log with awslogs and a stream prefix: no output to show)\n",
        );
    }
    out
}

/// What `--dry-run` prints: the calls it read with and the RunTask request.
pub fn render_dry_run(plan: &IndexPlan) -> String {
    let request = serde_json::to_string_pretty(&plan.request.to_api_json()).unwrap_or_default();
    let logs = match &plan.logs {
        Some(l) => match l.stream(&plan.request.container, "<task-id>") {
            Some(s) => format!(
                "its output: CloudWatch Logs group {}, stream {s}\n",
                l.group
            ),
            None => format!(
                "its output: CloudWatch Logs group {} (no stream prefix: not followed)\n",
                l.group
            ),
        },
        None => "its output: not in CloudWatch Logs (no awslogs driver)\n".to_owned(),
    };
    format!(
        "Dry run: mangactl index would call ecs RunTask (read from {} and its task definition):\n{request}\n{logs}then poll ecs DescribeTasks until the task stops.\n",
        plan.stack
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::tasks::ContainerState;

    fn stopped(stop_code: &str, exit: Option<i32>, reason: Option<&str>) -> TaskState {
        TaskState {
            arn: "arn:aws:ecs:us-east-1:123456789012:task/c/abc".into(),
            last_status: "STOPPED".into(),
            desired_status: Some("STOPPED".into()),
            stop_code: Some(stop_code.into()),
            stopped_reason: Some("Essential container in task exited".into()),
            containers: vec![ContainerState {
                name: "runtime".into(),
                last_status: Some("STOPPED".into()),
                exit_code: exit,
                reason: reason.map(str::to_owned),
            }],
        }
    }

    #[test]
    fn exit_codes_decide_the_verdict() {
        assert_eq!(
            judge(
                &stopped("EssentialContainerExited", Some(0), None),
                "runtime"
            ),
            Verdict::Complete
        );
        assert_eq!(
            judge(
                &stopped("EssentialContainerExited", Some(3), None),
                "runtime"
            ),
            Verdict::Incomplete
        );
        let Verdict::Failed { reason } = judge(
            &stopped(
                "EssentialContainerExited",
                Some(137),
                Some("OutOfMemoryError: Container killed due to memory usage"),
            ),
            "runtime",
        ) else {
            panic!("exit 137 fails");
        };
        assert!(reason.contains("exited 137"), "{reason}");
        assert!(reason.contains("OutOfMemoryError"), "{reason}");
        // Another container's exit code does not count.
        assert!(matches!(
            judge(
                &stopped("EssentialContainerExited", Some(0), None),
                "sidecar"
            ),
            Verdict::Failed { .. }
        ));
    }

    #[test]
    fn a_task_that_failed_to_start_says_why() {
        let mut t = stopped("TaskFailedToStart", None, None);
        t.stopped_reason =
            Some("CannotPullContainerError: pull image manifest has been retried 5 time(s)".into());
        let Verdict::NotStarted { reason } = judge(&t, "runtime") else {
            panic!("not started");
        };
        assert!(
            reason.starts_with("TaskFailedToStart: CannotPullContainerError"),
            "{reason}"
        );
    }
}
