//! `mangactl apply`: plan, confirm, execute the change sets along the deploy
//! graph with live progress, then print the useful outputs and write
//! `out/NAME/outputs.json`; also the OpenSearch Serverless capacity limits
//! (account settings) unless `--skip-search-capacity`. The logic is in `src/deploy/apply.rs`; this file
//! picks the progress style, wires Ctrl-C and maps the result to an exit code.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use stacks::render::Format;
use stacks::stacks::StackId;
use tokio::sync::watch;

use super::plan::{load_config, runtime, AwsArgs};
use super::render::{parse_stack, render_environment};
use super::{Cli, Outcome};
use crate::aws::cloudformation::SdkCloudFormation;
use crate::aws::opensearch::SdkSearchCapacity;
use crate::aws::SearchCapacity;
use crate::deploy::apply::{self, ApplyOptions, ApplyStatus};
use crate::deploy::confirm::TerminalPrompter;
use crate::deploy::progress::Progress;
use crate::deploy::Backoff;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Environment name (a file in the environments directory) or a path to an environment file.
    #[arg(long, short = 'e', value_name = "NAME|PATH")]
    pub env: String,

    /// Apply only this stack (the stacks it imports from must exist).
    #[arg(long, value_parser = parse_stack, value_name = "NAME")]
    pub stack: Option<StackId>,

    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// The environment's name, when prod would lose data (instead of typing it).
    #[arg(long, value_name = "NAME")]
    pub confirm_env: Option<String>,

    /// Stacks deployed at once (independent stacks only).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=16), value_name = "N")]
    pub concurrency: u16,

    /// Progress display: spinners on a terminal, or one plain line per event.
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,

    /// Leave the OpenSearch Serverless capacity limits (account settings) alone,
    /// e.g. against an emulator without OpenSearch Serverless such as moto.
    #[arg(long)]
    pub skip_search_capacity: bool,

    /// Directory for outputs.json [default: out/NAME].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressArg {
    /// tty when stdout is a terminal and CI is not set, else plain.
    Auto,
    Tty,
    Plain,
}

/// The progress display `arg` asks for.
pub(super) fn progress(arg: ProgressArg) -> Progress {
    let tty = match arg {
        ProgressArg::Tty => true,
        ProgressArg::Plain => false,
        ProgressArg::Auto => std::io::stdout().is_terminal() && std::env::var_os("CI").is_none(),
    };
    if tty {
        Progress::tty()
    } else {
        Progress::plain(Box::new(std::io::stdout()))
    }
}

/// Counts Ctrl-C presses into the returned channel; the second one exits
/// the process at once (CloudFormation carries on with what it started).
pub(super) fn interrupts() -> watch::Receiver<u32> {
    let (tx, rx) = watch::channel(0u32);
    tokio::spawn(async move {
        let mut presses = 0u32;
        while tokio::signal::ctrl_c().await.is_ok() {
            presses += 1;
            if presses >= 2 {
                eprintln!("\nSecond Ctrl-C: exiting now. Operations already started continue in CloudFormation.");
                std::process::exit(130);
            }
            let _ = tx.send(presses);
        }
    });
    rx
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<Outcome> {
    let (environment, rendered) = render_environment(cli, &args.env, Format::Json)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("out").join(&environment.name));
    runtime()?.block_on(async {
        let config = load_config(&args.aws, &environment.region).await;
        let cfn = SdkCloudFormation::new(&config);
        // An explicit flag rather than guessing from an emulator's error:
        // an unknown-operation reply looks like any other failure, and a
        // real AWS error must fail the apply.
        let search_capacity = (!args.skip_search_capacity)
            .then(|| Arc::new(SdkSearchCapacity::new(&config)) as Arc<dyn SearchCapacity>);
        let opts = ApplyOptions {
            only: args.stack,
            yes: args.yes,
            confirm_env: args.confirm_env.clone(),
            concurrency: usize::from(args.concurrency),
            backoff: Backoff::default(),
            search_capacity,
        };
        let progress = progress(args.progress);
        let report = apply::apply(
            &cfn,
            &rendered,
            &opts,
            &progress,
            &TerminalPrompter,
            interrupts(),
        )
        .await
        .with_context(|| format!("applying `{}`", environment.name))?;
        if matches!(report.status, ApplyStatus::Applied | ApplyStatus::NoChanges) {
            let path = apply::write_outputs(&out, &environment.name, &report.outputs)?;
            progress.text(&format!(
                "{}Outputs written to {}\n",
                apply::outputs_text(&report.outputs),
                path.display()
            ));
        }
        match (report.status.exit_code(), report.status) {
            (0, _) => Ok(Outcome::Success),
            (3, _) => Ok(Outcome::Incomplete),
            (_, ApplyStatus::Declined) => anyhow::bail!("apply cancelled"),
            (_, ApplyStatus::Blocked) => {
                anyhow::bail!("apply refused: some stacks cannot be changed now (see above)")
            }
            _ => anyhow::bail!("apply failed (see above)"),
        }
    })
}
