//! `mangactl destroy`: delete an environment's stacks in reverse dependency
//! order. The logic and the refusal rules are in `src/deploy/destroy.rs`;
//! this file wires flags, progress, Ctrl-C and the exit code.

use anyhow::Context;
use stacks::render::Format;
use stacks::stacks::StackId;

use super::apply::{interrupts, progress, ProgressArg};
use super::plan::{connect, runtime, AwsArgs};
use super::render::{parse_stack, render_environment};
use super::{Cli, Outcome};
use crate::deploy::confirm::TerminalPrompter;
use crate::deploy::destroy::{self, DestroyOptions, DestroyStatus};
use crate::deploy::Backoff;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Environment name (a file in the environments directory) or a path to an environment file.
    #[arg(long, short = 'e', value_name = "NAME|PATH")]
    pub env: String,

    /// Destroy only this stack (refused while other stacks import from it).
    #[arg(long, value_parser = parse_stack, value_name = "NAME")]
    pub stack: Option<StackId>,

    /// Do not ask for confirmation (required when stdin is not a terminal; prod still needs its name).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// The environment's name, for prod (instead of typing it).
    #[arg(long, value_name = "NAME")]
    pub confirm_env: Option<String>,

    /// Turn termination protection off on protected stacks and delete them.
    #[arg(long)]
    pub disable_termination_protection: bool,

    /// Stacks deleted at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=16), value_name = "N")]
    pub concurrency: u16,

    /// Progress display: spinners on a terminal, or one plain line per event.
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,

    #[command(flatten)]
    pub aws: AwsArgs,
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<Outcome> {
    let (environment, rendered) = render_environment(cli, &args.env, Format::Json)?;
    runtime()?.block_on(async {
        let cfn = connect(&args.aws, &environment.region).await;
        let opts = DestroyOptions {
            only: args.stack,
            yes: args.yes,
            confirm_env: args.confirm_env.clone(),
            disable_termination_protection: args.disable_termination_protection,
            concurrency: usize::from(args.concurrency),
            backoff: Backoff::default(),
        };
        let progress = progress(args.progress);
        let report = destroy::destroy(
            &cfn,
            &rendered,
            &opts,
            &progress,
            &TerminalPrompter,
            interrupts(),
        )
        .await
        .with_context(|| format!("destroying `{}`", environment.name))?;
        match (report.status.exit_code(), report.status) {
            (0, _) => Ok(Outcome::Success),
            (3, _) => Ok(Outcome::Incomplete),
            (_, DestroyStatus::Declined) => anyhow::bail!("destroy cancelled"),
            _ => anyhow::bail!("destroy failed (see above)"),
        }
    })
}
