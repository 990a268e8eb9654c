//! `mangactl index`: fills the environment's OpenSearch index by running
//! `manga-runtime index` as a one-off ECS task inside the VPC (the
//! collection is reachable only from there), waits for it, shows its output
//! and exits with its result. The logic is in `src/deploy/index.rs`; this
//! file reads the flags and prints.
//!
//! Exit codes: 0 the index is complete (or `--dry-run`); 1 the task failed,
//! never started, or a call failed; 3 the index command reported itself
//! incomplete (exit 3), or the task had not stopped by `--timeout`.

use std::io::Write;
use std::time::Duration;

use stacks::stacks::StackId;

use super::shared::{parse_duration, with_environment, AwsArgs, EnvArgs, ProgressArgs};
use super::{Cli, Output};
use crate::aws::tasks::SdkTaskRunner;
use crate::deploy::index::{self, Event, WaitOptions};
use crate::deploy::progress::Progress;
use crate::outcome::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub env: EnvArgs,

    /// How long to wait for the task to stop: `90s`, `30m`, `1h`. When it
    /// passes, the task is left running (exit 3).
    #[arg(long, default_value = "30m", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,

    /// Print the RunTask request it would send (after reading the stacks and
    /// the task definition), and start nothing.
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub progress: ProgressArgs,

    #[command(flatten)]
    pub aws: AwsArgs,
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<Outcome> {
    with_environment(
        cli,
        &args.env,
        &args.aws,
        async |_environment, rendered, aws| {
            let runner = SdkTaskRunner::new(&aws.home);
            let plan = index::prepare(&aws.cfn, &runner, &rendered).await?;
            let mut stdout = std::io::stdout().lock();
            if args.dry_run {
                match cli.output {
                    Output::Json => writeln!(
                        stdout,
                        "{}",
                        serde_json::to_string_pretty(&serde_json::json!({
                            "dry_run": true,
                            "run_task": plan.request.to_api_json(),
                            "logs": plan.logs,
                        }))?
                    )?,
                    _ => stdout.write_all(index::render_dry_run(&plan).as_bytes())?,
                }
                return Ok(Outcome::Success);
            }
            drop(stdout);
            // With --output json the document is stdout's only content: the
            // progress and the task's output go to stderr.
            let progress = match cli.output {
                Output::Json => Progress::plain(Box::new(std::io::stderr())),
                _ => args.progress.display(),
            };
            progress.start(
                StackId::Service,
                &format!(
                    "index: starting `{}` on cluster {} ({})",
                    index::COMMAND,
                    plan.request.cluster,
                    plan.request.task_definition
                ),
            );
            let on = |e: Event<'_>| match e {
                Event::Started { arn } => {
                    progress.note(StackId::Service, &format!("index task {arn}"))
                }
                Event::Status { status } => {
                    progress.note(StackId::Service, &format!("index task {status}"))
                }
                Event::Line(line) => progress.text(&format!("  | {line}\n")),
                Event::LogsUnavailable(why) => progress.note(
                    StackId::Service,
                    &format!("index output unavailable: {why}"),
                ),
            };
            let opts = WaitOptions {
                timeout: args.timeout,
                ..WaitOptions::default()
            };
            let run = index::run(&runner, &plan, &opts, &on).await?;
            let outcome = Outcome::from(&run.verdict);
            progress.finish(
                StackId::Service,
                outcome == Outcome::Success,
                &format!(
                    "index task {}: {}",
                    run.task_id,
                    match &run.verdict {
                        index::Verdict::Complete => "complete",
                        index::Verdict::Incomplete => "incomplete",
                        index::Verdict::Failed { .. } => "failed",
                        index::Verdict::NotStarted { .. } => "never started",
                        index::Verdict::TimedOut { .. } => "still running",
                    }
                ),
            );
            let mut stdout = std::io::stdout().lock();
            match cli.output {
                Output::Json => writeln!(
                    stdout,
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "run_task": plan.request.to_api_json(),
                        "run": run,
                        "exit_code": outcome.code(),
                    }))?
                )?,
                _ => stdout.write_all(index::render_text(&plan, &run).as_bytes())?,
            }
            Ok(outcome)
        },
    )
}
