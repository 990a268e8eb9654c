//! `mangactl index`: the one-off ECS task that runs `manga-runtime index`
//! inside the VPC.
//!
//! - In process against [`FakeTasks`] (the ECS API reference's DescribeTasks
//!   shapes) and the CloudFormation fake, for what moto cannot produce:
//!   exit codes other than 0, stop codes (`TaskFailedToStart`), RunTask
//!   failures, log lines, tasks ECS does not show yet. Tokio's clock is
//!   paused, so the backoff and the timeout cost no real time.
//! - Through the binary against moto, for what moto does: the RunTask
//!   request accepted with its overrides, network configuration, launch
//!   type and startedBy, DescribeTasks polled to STOPPED, GetLogEvents of
//!   the task's stream (written by the test with PutLogEvents, as the
//!   awslogs driver would: moto runs no container), the timeout with the
//!   task left running, and `--dry-run`. moto's containers always report
//!   exit code 0, so only the success path's exit code meets moto.

use std::io::{Read as _, Write as _};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mangactl::aws::tasks::{RunTaskRequest, TaskFailure};
use mangactl::deploy::index::{self, Event, IndexError, IndexPlan, Verdict, WaitOptions};
use mangactl::deploy::Backoff;
use mangactl::fakes::cloudformation::FakeCloudFormation;
use mangactl::fakes::tasks::{FakeTasks, TASK_ID};
use mangactl::outcome::Outcome;
use serde_json::{json, Value};
use stacks::render::Rendered;
use stacks::stacks::StackId;

use crate::deploy_fake::{name, rendered, seed_all};
use crate::moto::Moto;
use crate::support::{block_on, run_on, stack_output, stderr, stdout, AppliedDev};

/// dev deployed in the CloudFormation fake, and a task definition named by
/// its service stack's output.
fn deployed() -> (Rendered, FakeCloudFormation, FakeTasks) {
    let r = rendered("dev");
    let cfn = FakeCloudFormation::new();
    seed_all(&cfn, &r, false);
    let service = name(&r, StackId::Service);
    let td = cfn
        .output(&service, "TaskDefinitionArn")
        .expect("TaskDefinitionArn output");
    let group = cfn
        .output(&service, "LogGroupName")
        .expect("log group output");
    (r, cfn, FakeTasks::new(&td, &group))
}

fn fast() -> WaitOptions {
    WaitOptions {
        timeout: Duration::from_secs(600),
        backoff: Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(10),
            factor: 1.6,
        },
        final_log_reads: 2,
    }
}

fn stopped(stop_code: &str, reason: &str, exit: Option<i32>) -> Option<Value> {
    let mut container = json!({"name": "runtime", "lastStatus": "STOPPED"});
    if let Some(n) = exit {
        container["exitCode"] = json!(n);
    }
    Some(json!({
        "lastStatus": "STOPPED",
        "desiredStatus": "STOPPED",
        "stopCode": stop_code,
        "stoppedReason": reason,
        "containers": [container],
    }))
}

fn status(s: &str) -> Option<Value> {
    Some(json!({
        "lastStatus": s,
        "desiredStatus": "RUNNING",
        "containers": [{"name": "runtime", "lastStatus": s}],
    }))
}

/// Runs prepare + run, collecting the events as text.
async fn index_run(
    r: &Rendered,
    cfn: &FakeCloudFormation,
    tasks: &FakeTasks,
    opts: WaitOptions,
) -> (IndexPlan, Result<index::IndexRun, IndexError>, Vec<String>) {
    let plan = index::prepare(cfn, tasks, r).await.expect("prepare");
    let events = Mutex::new(Vec::new());
    let on = |e: Event<'_>| {
        let line = match e {
            Event::Started { arn } => format!("started {arn}"),
            Event::Status { status } => format!("status {status}"),
            Event::Line(l) => format!("line {l}"),
            Event::LogsUnavailable(why) => format!("logs unavailable {why}"),
        };
        events.lock().expect("events").push(line);
    };
    let run = index::run(tasks, &plan, &opts, &on).await;
    let events = events.into_inner().expect("events");
    (plan, run, events)
}

#[tokio::test(start_paused = true)]
async fn a_complete_index_exits_0_with_its_output_shown_once_in_order() {
    let (r, cfn, tasks) = deployed();
    tasks.script(vec![
        // Not visible yet right after RunTask (eventual consistency).
        None,
        status("PROVISIONING"),
        status("PENDING"),
        status("RUNNING"),
        status("RUNNING"),
        stopped(
            "EssentialContainerExited",
            "Essential container in task exited",
            Some(0),
        ),
    ]);
    tasks.write_lines(&[
        (4, "INFO index phase=\"create\" total=1"),
        (4, "INFO index phase=\"write\" total=200"),
        (5, "INFO index run finished"),
        (
            5,
            "index manga-passages: 0 unchanged, 200 written, 0 deleted, 0 batches retried, 0 failed",
        ),
        (6, "INFO exiting"),
    ]);
    let (plan, run, events) = index_run(&r, &cfn, &tasks, fast()).await;
    let run = run.expect("run");
    assert_eq!(run.verdict, Verdict::Complete);
    assert_eq!(Outcome::from(&run.verdict), Outcome::Success);
    assert_eq!(Outcome::from(&run.verdict).code(), 0);

    // The request: the service stack's cluster, task definition, private
    // subnets and service security group, the command overridden.
    let service = name(&r, StackId::Service);
    let network = name(&r, StackId::Network);
    let out = |stack: &str, key: &str| cfn.output(stack, key).expect(key);
    let subnets: Vec<String> = out(&network, "PrivateSubnetIds")
        .split(',')
        .map(str::to_owned)
        .collect();
    assert!(!subnets.is_empty());
    let expected = RunTaskRequest {
        cluster: out(&service, "ClusterName"),
        task_definition: out(&service, "TaskDefinitionArn"),
        subnets,
        security_groups: vec![out(&network, "ServiceSecurityGroupId")],
        assign_public_ip: "DISABLED".into(),
        container: "runtime".into(),
        command: vec!["index".into()],
        started_by: "mangactl-index".into(),
    };
    assert_eq!(plan.request, expected);
    assert_eq!(tasks.state().requests, vec![expected]);

    // The output, from the task's own stream, each line once, in order.
    let stream = format!("runtime/runtime/{TASK_ID}");
    assert_eq!(run.log_stream.as_deref(), Some(stream.as_str()));
    assert!(tasks.state().streams_read.iter().all(|s| *s == stream));
    assert_eq!(
        run.lines,
        [
            "INFO index phase=\"create\" total=1",
            "INFO index phase=\"write\" total=200",
            "INFO index run finished",
            "index manga-passages: 0 unchanged, 200 written, 0 deleted, 0 batches retried, 0 failed",
            "INFO exiting",
        ]
    );
    let shown: Vec<&String> = events.iter().filter(|e| e.starts_with("line ")).collect();
    assert_eq!(shown.len(), run.lines.len(), "{events:#?}");
    // Status changes reported once each, after the start.
    let statuses: Vec<&str> = events
        .iter()
        .filter_map(|e| e.strip_prefix("status "))
        .collect();
    assert_eq!(statuses, ["PROVISIONING", "PENDING", "RUNNING", "STOPPED"]);
    assert!(events[0].starts_with("started arn:aws:ecs:"), "{events:#?}");
    let text = index::render_text(&plan, &run);
    assert!(
        text.contains(&format!("index complete: task {TASK_ID} exited 0")),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_task_exits_1_with_the_stopped_reason() {
    let (r, cfn, tasks) = deployed();
    tasks.script(vec![
        status("RUNNING"),
        Some(json!({
            "lastStatus": "STOPPED",
            "desiredStatus": "STOPPED",
            "stopCode": "EssentialContainerExited",
            "stoppedReason": "Essential container in task exited",
            "containers": [{
                "name": "runtime",
                "lastStatus": "STOPPED",
                "exitCode": 1,
            }],
        })),
    ]);
    tasks.write_lines(&[(1, "manga-runtime: index needs MANGA_OPENSEARCH_ENDPOINT")]);
    let (plan, run, _) = index_run(&r, &cfn, &tasks, fast()).await;
    let run = run.expect("run");
    let Verdict::Failed { reason } = &run.verdict else {
        panic!("failed: {:?}", run.verdict);
    };
    assert!(reason.contains("the index command exited 1"), "{reason}");
    assert!(
        reason.contains("Essential container in task exited"),
        "{reason}"
    );
    assert_eq!(Outcome::from(&run.verdict).code(), 1);
    assert_eq!(
        run.lines,
        ["manga-runtime: index needs MANGA_OPENSEARCH_ENDPOINT"]
    );
    let text = index::render_text(&plan, &run);
    assert!(text.starts_with("index failed: task"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn an_incomplete_index_exits_3() {
    let (r, cfn, tasks) = deployed();
    tasks.script(vec![
        status("RUNNING"),
        stopped(
            "EssentialContainerExited",
            "Essential container in task exited",
            Some(3),
        ),
    ]);
    tasks.write_lines(&[(
        1,
        "index manga-passages: 190 unchanged, 8 written, 0 deleted, 4 batches retried, 2 failed",
    )]);
    let (plan, run, _) = index_run(&r, &cfn, &tasks, fast()).await;
    let run = run.expect("run");
    assert_eq!(run.verdict, Verdict::Incomplete);
    assert_eq!(Outcome::from(&run.verdict).code(), 3);
    assert!(run.lines[0].ends_with("2 failed"));
    let text = index::render_text(&plan, &run);
    assert!(text.contains("index incomplete"), "{text}");
    assert!(text.contains("run `mangactl index` again"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn a_task_that_never_starts_is_a_clear_error() {
    let (r, cfn, tasks) = deployed();
    let pull = "CannotPullContainerError: pull image manifest has been retried 7 time(s): failed to resolve ref 123456789012.dkr.ecr.us-east-1.amazonaws.com/manga-runtime:1.4.0: not found";
    tasks.script(vec![
        status("PROVISIONING"),
        status("PENDING"),
        Some(json!({
            "lastStatus": "STOPPED",
            "desiredStatus": "STOPPED",
            "stopCode": "TaskFailedToStart",
            "stoppedReason": pull,
            "containers": [{"name": "runtime", "lastStatus": "STOPPED"}],
        })),
    ]);
    let (plan, run, events) = index_run(&r, &cfn, &tasks, fast()).await;
    let run = run.expect("run");
    assert_eq!(
        run.verdict,
        Verdict::NotStarted {
            reason: format!("TaskFailedToStart: {pull}")
        }
    );
    assert_eq!(Outcome::from(&run.verdict).code(), 1);
    // No stream was ever written: no output, no error about it.
    assert!(run.lines.is_empty());
    assert!(run.logs_note.is_none());
    assert!(!events.iter().any(|e| e.starts_with("logs unavailable")));
    let text = index::render_text(&plan, &run);
    assert!(
        text.contains(&format!(
            "task {TASK_ID} never started: TaskFailedToStart: CannotPullContainerError"
        )),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn runtask_failures_start_nothing_and_say_why() {
    let (r, cfn, tasks) = deployed();
    tasks.edit(|s| {
        s.run_failures = vec![TaskFailure {
            arn: None,
            reason: "RESOURCE:ENI".into(),
            detail: Some("no free IP addresses in subnet".into()),
        }]
    });
    let (_, run, _) = index_run(&r, &cfn, &tasks, fast()).await;
    let err = run.expect_err("RunTask failed");
    assert!(matches!(err, IndexError::NotStarted(_)));
    assert!(
        err.to_string().contains(
            "ECS did not start the task:\n  - RESOURCE:ENI (no free IP addresses in subnet)"
        ),
        "{err}"
    );
    assert!(!tasks.state().calls.contains(&"DescribeTasks".to_owned()));
}

#[tokio::test(start_paused = true)]
async fn a_task_still_running_at_the_timeout_is_left_running_with_exit_3() {
    let (r, cfn, tasks) = deployed();
    tasks.script(vec![status("PROVISIONING"), status("RUNNING")]);
    tasks.write_lines(&[(2, "INFO index phase=\"embed\" total=200")]);
    let opts = WaitOptions {
        timeout: Duration::from_secs(120),
        ..fast()
    };
    let started = tokio::time::Instant::now();
    let (plan, run, _) = index_run(&r, &cfn, &tasks, opts).await;
    let run = run.expect("run");
    assert_eq!(run.verdict, Verdict::TimedOut { after_s: 120 });
    assert_eq!(Outcome::from(&run.verdict).code(), 3);
    // It waited the timeout, not much longer (the last sleep is cut short).
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(120) && waited < Duration::from_secs(121),
        "{waited:?}"
    );
    // Polls backed off: far fewer than one a second.
    let polls = tasks.state().describe_calls;
    assert!((5..40).contains(&polls), "{polls} polls");
    assert!(!tasks.state().calls.iter().any(|c| c == "StopTask"));
    assert_eq!(run.lines, ["INFO index phase=\"embed\" total=200"]);
    let text = index::render_text(&plan, &run);
    assert!(text.contains("did not finish within 120s"), "{text}");
    assert!(text.contains("is RUNNING and was left running"), "{text}");
    assert!(
        text.contains(&format!("stream runtime/runtime/{TASK_ID}")),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn unreadable_logs_do_not_fail_the_run() {
    let (r, cfn, tasks) = deployed();
    tasks.script(vec![stopped(
        "EssentialContainerExited",
        "Essential container in task exited",
        Some(0),
    )]);
    tasks.write_lines(&[(0, "never seen")]);
    tasks.edit(|s| {
        s.failures.insert(
            "GetLogEvents",
            mangactl::aws::AwsError::service(
                "CloudWatch Logs",
                "GetLogEvents",
                Some("g:s"),
                "AccessDeniedException",
                "not authorized to perform: logs:GetLogEvents",
            ),
        );
    });
    let (plan, run, events) = index_run(&r, &cfn, &tasks, fast()).await;
    let run = run.expect("run");
    assert_eq!(run.verdict, Verdict::Complete);
    assert!(run.lines.is_empty());
    assert!(
        events.iter().any(|e| e.contains("logs:GetLogEvents")),
        "{events:#?}"
    );
    let text = index::render_text(&plan, &run);
    assert!(text.contains("its output could not be read"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn an_environment_not_applied_is_refused_before_any_task_call() {
    let r = rendered("dev");
    let cfn = FakeCloudFormation::new();
    let tasks = FakeTasks::new("td", "g");
    let err = index::prepare(&cfn, &tasks, &r)
        .await
        .expect_err("not deployed");
    assert!(
        err.to_string()
            .contains("mangaassist-dev-service does not exist; apply the environment first"),
        "{err}"
    );
    assert!(tasks.state().calls.is_empty());
}

// ---- the binary against moto ----

/// moto's state manager: tasks stay RUNNING until StopTask (by default
/// moto moves a task one state per DescribeTasks and stops it after four).
fn hold_tasks_running(moto: &Moto) {
    let body =
        r#"{"model_name":"ecs::task","transition":{"progression":"manual","times":1000000}}"#;
    let addr = moto.endpoint.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect moto");
    write!(
        s,
        "POST /moto-api/state-manager/set-transition HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    assert!(answer.starts_with("HTTP/1.1 2"), "{answer}");
}

/// The index tasks moto holds in `cluster`, described.
async fn index_tasks(moto: &Moto, cluster: &str) -> Vec<aws_sdk_ecs::types::Task> {
    let ecs = crate::moto_client!(aws_sdk_ecs, moto);
    let arns = ecs
        .list_tasks()
        .cluster(cluster)
        .started_by("mangactl-index")
        .send()
        .await
        .expect("list tasks")
        .task_arns()
        .to_vec();
    if arns.is_empty() {
        return Vec::new();
    }
    ecs.describe_tasks()
        .cluster(cluster)
        .set_tasks(Some(arns))
        .send()
        .await
        .expect("describe tasks")
        .tasks()
        .to_vec()
}

#[test]
fn index_against_moto_runs_the_task_follows_it_and_shows_its_logs() {
    let dev = AppliedDev::start("index-moto", &[]);
    let moto = &dev.moto;
    let env = dev.env();
    hold_tasks_running(moto);
    let (cluster, td, group, subnets, sg) = block_on(async {
        (
            stack_output(moto, "mangaassist-dev-service", "ClusterName").await,
            stack_output(moto, "mangaassist-dev-service", "TaskDefinitionArn").await,
            stack_output(moto, "mangaassist-dev-service", "LogGroupName").await,
            stack_output(moto, "mangaassist-dev-network", "PrivateSubnetIds").await,
            stack_output(moto, "mangaassist-dev-network", "ServiceSecurityGroupId").await,
        )
    });
    let subnets: Vec<&str> = subnets.split(',').collect();

    // --dry-run: the request from the stacks and the task definition; no task.
    let o = run_on(
        moto,
        &[&["index"], &env[..], &["--dry-run", "--output", "json"]].concat(),
    );
    assert_eq!(o.status.code(), Some(0));
    let dry: Value = serde_json::from_str(&stdout(&o)).expect("json");
    let req = &dry["run_task"];
    assert_eq!(req["cluster"], cluster.as_str());
    assert_eq!(req["taskDefinition"], td.as_str());
    assert_eq!(req["launchType"], "FARGATE");
    assert_eq!(
        req["networkConfiguration"]["awsvpcConfiguration"],
        json!({"subnets": subnets, "securityGroups": [sg], "assignPublicIp": "DISABLED"})
    );
    assert_eq!(
        req["overrides"]["containerOverrides"],
        json!([{"name": "runtime", "command": ["index"]}])
    );
    // The log configuration came from moto's DescribeTaskDefinition.
    assert_eq!(dry["logs"]["group"], group.as_str());
    assert_eq!(dry["logs"]["stream_prefix"], "runtime");
    assert!(
        block_on(index_tasks(moto, &cluster)).is_empty(),
        "the dry run started a task"
    );
    let o = run_on(moto, &[&["index"], &env[..], &["--dry-run"]].concat());
    assert!(stdout(&o).contains("\"command\": [\n"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("stream runtime/runtime/<task-id>"),
        "{}",
        stdout(&o)
    );

    // The timeout: moto holds the task RUNNING; mangactl leaves it running.
    let t0 = Instant::now();
    let o = run_on(moto, &[&["index"], &env[..], &["--timeout", "2s"]].concat());
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(t0.elapsed() < Duration::from_secs(30));
    assert!(
        stdout(&o).contains("did not finish within 2s"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("was left running"), "{}", stdout(&o));
    let tasks = block_on(index_tasks(moto, &cluster));
    assert_eq!(tasks.len(), 1);
    let t = &tasks[0];
    // What moto accepted: the request as RunTask documents it.
    assert_eq!(t.last_status(), Some("RUNNING"));
    assert_eq!(t.task_definition_arn(), Some(td.as_str()));
    assert_eq!(t.launch_type().map(|l| l.as_str()), Some("FARGATE"));
    let o0 = &t.overrides().expect("overrides").container_overrides()[0];
    assert_eq!(o0.name(), Some("runtime"));
    assert_eq!(o0.command(), ["index"]);
    let first = t.task_arn().expect("arn").to_owned();
    block_on(async {
        crate::moto_client!(aws_sdk_ecs, moto)
            .stop_task()
            .cluster(&cluster)
            .task(&first)
            .reason("stopped by the test")
            .send()
            .await
            .expect("stop")
    });

    // Success: the test plays the container. mangactl runs in the
    // background; once its task shows up, the test writes the task's log
    // stream as the awslogs driver would and stops the task (moto's
    // container exit code is always 0).
    let child = moto
        .mangactl()
        .args(
            [
                &["index"],
                &env[..],
                &["--timeout", "60s", "--progress", "plain"],
            ]
            .concat(),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mangactl index");
    let deadline = Instant::now() + Duration::from_secs(30);
    let second = loop {
        let tasks = block_on(index_tasks(moto, &cluster));
        if let Some(t) = tasks.iter().find(|t| t.task_arn() != Some(first.as_str())) {
            break t.task_arn().expect("arn").to_owned();
        }
        assert!(Instant::now() < deadline, "mangactl started no task");
        std::thread::sleep(Duration::from_millis(100));
    };
    let id = second.rsplit('/').next().expect("id").to_owned();
    block_on(async {
        let logs = crate::moto_client!(aws_sdk_cloudwatchlogs, moto);
        let stream = format!("runtime/runtime/{id}");
        logs.create_log_stream()
            .log_group_name(&group)
            .log_stream_name(&stream)
            .send()
            .await
            .expect("create stream");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as i64;
        for (i, line) in [
            "INFO index phase=\"write\" total=200",
            "index manga-passages: 0 unchanged, 200 written, 0 deleted, 0 batches retried, 0 failed",
        ]
        .iter()
        .enumerate()
        {
            logs.put_log_events()
                .log_group_name(&group)
                .log_stream_name(&stream)
                .log_events(
                    aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                        .timestamp(now + i as i64)
                        .message(*line)
                        .build()
                        .expect("event"),
                )
                .send()
                .await
                .expect("put");
        }
        crate::moto_client!(aws_sdk_ecs, moto)
            .stop_task()
            .cluster(&cluster)
            .task(&second)
            .reason("Essential container in task exited")
            .send()
            .await
            .expect("stop")
    });
    let o = child.wait_with_output().expect("mangactl index");
    eprintln!("$ mangactl index\n{}{}", stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("  | index manga-passages: 0 unchanged, 200 written"),
        "{text}"
    );
    assert_eq!(text.matches("  | INFO index phase").count(), 1, "{text}");
    assert!(
        text.contains(&format!("index complete: task {id} exited 0")),
        "{text}"
    );
    assert!(text.contains("index task STOPPED"), "{text}");
}
