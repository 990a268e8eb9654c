//! Command-line parsing and dispatch. One module per subcommand; each
//! returns an [`Outcome`] (`src/outcome.rs`, the one home of the exit
//! codes); errors become [`Outcome::Failed`] here. Flags several commands
//! share are defined once in `shared.rs`.

mod apply;
mod completions;
mod destroy;
mod drift;
mod index;
pub mod plan;
mod preflight;
mod render;
mod scale;
mod shared;
mod size;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

pub use crate::outcome::Outcome;

#[derive(Debug, Parser)]
#[command(
    name = "mangactl",
    version,
    about = "Render, size and deploy the MangaAssist stacks from one environment file",
    long_about = "mangactl turns an environment file (environments/NAME.yaml) into CloudFormation \
templates for the whole MangaAssist stack: network, memory (DynamoDB + DAX), cache (Redis), \
search (OpenSearch Serverless), intent (SageMaker), service (ALB + ECS Fargate), edge \
(CloudFront + WAF) and observability.\n\nExit codes: 0 success/no changes, 1 error, \
2 changes or drift found, 3 check incomplete.",
    propagate_version = true
)]
pub struct Cli {
    /// Directory holding the environment files.
    #[arg(
        long,
        global = true,
        env = "MANGACTL_ENVIRONMENTS",
        default_value = "environments",
        value_name = "DIR"
    )]
    pub environments: PathBuf,

    /// Output style for command results on stdout.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,

    /// More logging on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Human-readable text and tables.
    #[value(alias = "table")]
    Text,
    /// One JSON document, for machines.
    Json,
    /// JUnit XML, for CI systems (`drift` only).
    Junit,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render CloudFormation templates and a manifest for an environment.
    Render(render::Args),
    /// Size every resource from the latency and traffic targets, and check the latency budget.
    Size(size::Args),
    /// Show what apply would change: one CloudFormation change set per stack (exit 2 when something changes).
    Plan(plan::Args),
    /// Plan, confirm, then deploy the change sets in dependency order with live progress.
    Apply(apply::Args),
    /// Delete the environment's stacks in reverse dependency order.
    Destroy(destroy::Args),
    /// Check that what is deployed matches the rendering: templates and parameters, and CloudFormation's resource drift (exit 2 on drift, 3 when something could not be checked).
    Drift(drift::Args),
    /// On-call: one screen of stack states, live capacity against the sizing plan, scale records, the latency budget and a verdict.
    Status(status::Args),
    /// Check what an apply needs but does not create: the image in ECR, the model artifact in S3, issued certificates, Bedrock model access, service quotas, the account (exit 1 naming each missing one).
    Preflight(preflight::Args),
    /// On-call: change live capacity now (service, cache, dax, intent, search), recorded so drift acknowledges it and apply keeps it.
    Scale(scale::Args),
    /// Fill the environment's OpenSearch index: run `manga-runtime index` as a one-off ECS task in the VPC, show its output, exit with its result (3 when incomplete).
    Index(index::Args),
    /// Print shell completions to stdout.
    Completions(completions::Args),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    if cli.output == Output::Junit && !matches!(cli.command, Command::Drift(_)) {
        eprintln!("error: --output junit is only for `mangactl drift`");
        return ExitCode::from(Outcome::Failed.code());
    }
    let result = match &cli.command {
        Command::Render(args) => render::run(&cli, args),
        Command::Size(args) => size::run(&cli, args),
        Command::Plan(args) => plan::run(&cli, args),
        Command::Apply(args) => apply::run(&cli, args),
        Command::Destroy(args) => destroy::run(&cli, args),
        Command::Drift(args) => drift::run(&cli, args),
        Command::Scale(args) => scale::run(&cli, args),
        Command::Status(args) => status::run(&cli, args),
        Command::Preflight(args) => preflight::run(&cli, args),
        Command::Index(args) => index::run(&cli, args),
        Command::Completions(args) => completions::run(args),
    };
    match result {
        Ok(outcome) => ExitCode::from(outcome.code()),
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(Outcome::Failed.code())
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
