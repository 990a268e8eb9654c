//! `mangactl destroy`: delete an environment's stacks in reverse dependency
//! order. The logic and the refusal rules are in `src/deploy/destroy.rs`;
//! this file wires flags, progress, Ctrl-C and the exit code.

use anyhow::Context;
use stacks::stacks::StackId;

use super::shared::{
    interrupts, parse_stack, with_environment, AwsArgs, ConfirmArgs, EnvArgs, ProgressArgs,
};
use super::Cli;
use crate::deploy::confirm::TerminalPrompter;
use crate::deploy::destroy::{self, DestroyOptions, DestroyStatus};
use crate::deploy::Backoff;
use crate::outcome::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub env: EnvArgs,

    /// Destroy only this stack (refused while other stacks import from it).
    #[arg(long, value_parser = parse_stack, value_name = "NAME")]
    pub stack: Option<StackId>,

    #[command(flatten)]
    pub confirm: ConfirmArgs,

    /// Turn termination protection off on protected stacks and delete them.
    #[arg(long)]
    pub disable_termination_protection: bool,

    /// Stacks deleted at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=16), value_name = "N")]
    pub concurrency: u16,

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
        async |environment, rendered, aws| {
            let cfn = &aws.cfn;
            let opts = DestroyOptions {
                only: args.stack,
                yes: args.confirm.yes,
                confirm_env: args.confirm.confirm_env.clone(),
                disable_termination_protection: args.disable_termination_protection,
                concurrency: usize::from(args.concurrency),
                backoff: Backoff::default(),
            };
            let progress = args.progress.display();
            let report = destroy::destroy(
                cfn,
                &rendered,
                &opts,
                &progress,
                &TerminalPrompter,
                interrupts(),
            )
            .await
            .with_context(|| format!("destroying `{}`", environment.name))?;
            match (Outcome::from(report.status), report.status) {
                (Outcome::Failed, DestroyStatus::Declined) => anyhow::bail!("destroy cancelled"),
                (Outcome::Failed, _) => anyhow::bail!("destroy failed (see above)"),
                (outcome, _) => Ok(outcome),
            }
        },
    )
}
