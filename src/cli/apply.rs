//! `mangactl apply`: plan, confirm, execute the change sets along the deploy
//! graph with live progress, then print the useful outputs and write
//! `out/NAME/outputs.json`; also the OpenSearch Serverless capacity limits
//! (account settings) unless `--skip-search-capacity`. The logic is in `src/deploy/apply.rs`; this file
//! picks the progress style, wires Ctrl-C and maps the result to an exit code.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use stacks::render::Format;
use stacks::stacks::StackId;

use super::render::render_environment;
use super::shared::{
    connect, interrupts, parse_stack, read_scale_records, runtime, today, AwsArgs, ConfirmArgs,
    EnvArgs, ProgressArgs,
};
use super::Cli;
use crate::aws::capacity::SdkCapacity;
use crate::aws::opensearch::SdkSearchCapacity;
use crate::aws::SearchCapacity;
use crate::deploy::apply::{self, ApplyOptions, ApplyStatus};
use crate::deploy::confirm::TerminalPrompter;
use crate::deploy::Backoff;
use crate::deploy::{holds, report};
use crate::outcome::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub env: EnvArgs,

    /// Apply only this stack (the stacks it imports from must exist).
    #[arg(long, value_parser = parse_stack, value_name = "NAME")]
    pub stack: Option<StackId>,

    #[command(flatten)]
    pub confirm: ConfirmArgs,

    /// Stacks deployed at once (independent stacks only).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=16), value_name = "N")]
    pub concurrency: u16,

    #[command(flatten)]
    pub progress: ProgressArgs,

    /// Leave the OpenSearch Serverless capacity limits (account settings) alone,
    /// e.g. against an emulator without OpenSearch Serverless such as moto.
    #[arg(long)]
    pub skip_search_capacity: bool,

    /// Drift-aware change sets (`DeploymentMode: REVERT_DRIFT`): updates
    /// also reset live drift to the template (scale records' values are
    /// kept); the plan shows what they reset.
    #[arg(long)]
    pub revert_drift: bool,

    /// Directory for outputs.json [default: out/NAME].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    #[command(flatten)]
    pub preflight: super::preflight::SkipArgs,

    #[command(flatten)]
    pub aws: AwsArgs,
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<Outcome> {
    let (environment, mut rendered) = render_environment(cli, &args.env.env, Format::Json)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("out").join(&environment.name));
    runtime()?.block_on(async {
        let aws = connect(&args.aws, &rendered).await;
        // Before any change: a missing prerequisite fails here, not in a rollback.
        super::preflight::gate(&args.preflight, &aws, &environment, &rendered).await?;
        aws.look_up(&mut rendered).await?;
        // What on-call engineers scaled stays scaled (`src/deploy/holds.rs`).
        let records = read_scale_records(&aws, &environment.name).await?;
        let holds = holds::apply_holds(&mut rendered, &records, &today())?;
        let config = &aws.home;
        let cfn = &aws.cfn;
        // An explicit flag rather than guessing from an emulator's error:
        // an unknown-operation reply looks like any other failure, and a
        // real AWS error must fail the apply.
        let search_capacity = (!args.skip_search_capacity)
            .then(|| Arc::new(SdkSearchCapacity::new(config)) as Arc<dyn SearchCapacity>);
        let opts = ApplyOptions {
            only: args.stack,
            yes: args.confirm.yes,
            confirm_env: args.confirm.confirm_env.clone(),
            concurrency: usize::from(args.concurrency),
            backoff: Backoff::default(),
            search_capacity,
            capacity: Some(Arc::new(SdkCapacity::new(config))),
            holds,
            revert_drift: args.revert_drift,
        };
        let progress = args.progress.display();
        let report = apply::apply(
            cfn,
            &rendered,
            &opts,
            &progress,
            &TerminalPrompter,
            interrupts(),
        )
        .await
        .with_context(|| format!("applying `{}`", environment.name))?;
        if matches!(report.status, ApplyStatus::Applied | ApplyStatus::NoChanges) {
            let path = report::write_outputs(&out, &environment.name, &report.outputs)?;
            progress.text(&format!(
                "{}Outputs written to {}\n",
                report::outputs_text(&report.outputs),
                path.display()
            ));
        }
        match (Outcome::from(report.status), report.status) {
            (Outcome::Failed, ApplyStatus::Declined) => anyhow::bail!("apply cancelled"),
            (Outcome::Failed, ApplyStatus::Blocked) => {
                anyhow::bail!("apply refused: some stacks cannot be changed now (see above)")
            }
            (Outcome::Failed, _) => anyhow::bail!("apply failed (see above)"),
            (outcome, _) => Ok(outcome),
        }
    })
}
