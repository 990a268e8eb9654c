//! `mangactl plan`: render, create a change set per stack, print what would
//! change, delete the change sets again. Exit 0 without changes, 2 with
//! changes, 1 when a stack cannot be planned. The logic is in
//! `src/deploy/plan.rs`; this file also holds what `apply` and `destroy`
//! share on the command line (AWS flags, the tokio runtime).

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use clap::Parser;
use stacks::render::{Format, Rendered};
use stacks::stacks::StackId;

use super::render::{parse_stack, render_environment};
use super::{Cli, Outcome, Output};
use crate::aws::cloudformation::SdkCloudFormation;
use crate::aws::config::{self, Target};
use crate::deploy::{self, plan::PlanOptions};

/// Where and as whom to call AWS (the standard credential chain applies).
#[derive(Debug, Clone, clap::Args)]
pub struct AwsArgs {
    /// AWS profile from ~/.aws/config [default: AWS_PROFILE, else the default chain].
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,

    /// AWS region [default: the environment file's region].
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// Send AWS calls here instead (an emulator such as moto, or a VPC endpoint).
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub endpoint_url: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Environment name (a file in the environments directory) or a path to an environment file.
    #[arg(long, short = 'e', value_name = "NAME|PATH")]
    pub env: String,

    /// Plan only this stack.
    #[arg(long, value_parser = parse_stack, value_name = "NAME")]
    pub stack: Option<StackId>,

    /// Change sets created at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=16), value_name = "N")]
    pub concurrency: u16,

    #[command(flatten)]
    pub aws: AwsArgs,
}

/// The runtime for the AWS commands (I/O-bound; two workers leave one for
/// the Ctrl-C listener while a prompt blocks the other).
pub(super) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The SDK configuration for `region` (or `--region`), with the command's AWS flags.
pub(super) async fn load_config(aws: &AwsArgs, region: &str) -> config::Config {
    let target = Target {
        profile: aws.profile.clone(),
        region: aws.region.clone().unwrap_or_else(|| region.to_owned()),
        endpoint_url: aws.endpoint_url.clone(),
    };
    tracing::info!(region = %target.region, endpoint = ?target.endpoint_url, profile = ?target.profile, "connecting to AWS");
    config::load(&target).await
}

/// CloudFormation for `region` (or `--region`), with the command's AWS flags.
pub(super) async fn connect(aws: &AwsArgs, region: &str) -> SdkCloudFormation {
    SdkCloudFormation::new(&load_config(aws, region).await)
}

/// An environment rendered exactly as `plan`, `apply` and `destroy` render
/// it, for in-process tests of `src/deploy/` (tests/it/deploy_fake.rs).
pub fn rendered_for_deploy(environments: &Path, spec: &str) -> anyhow::Result<Rendered> {
    let dir = environments
        .to_str()
        .context("environments directory is not UTF-8")?;
    let cli = Cli::try_parse_from(["mangactl", "--environments", dir, "plan", "--env", spec])?;
    Ok(render_environment(&cli, spec, Format::Json)?.1)
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<Outcome> {
    let (environment, rendered) = render_environment(cli, &args.env, Format::Json)?;
    runtime()?.block_on(async {
        let cfn = connect(&args.aws, &environment.region).await;
        let opts = PlanOptions {
            only: args.stack,
            change_set_name: deploy::change_set_name("plan"),
            concurrency: usize::from(args.concurrency),
            backoff: deploy::Backoff::default(),
        };
        let plan = deploy::plan::plan(&cfn, &rendered, &opts)
            .await
            .with_context(|| format!("planning `{}`", environment.name))?;
        deploy::plan::discard(&cfn, &plan).await;
        let mut stdout = std::io::stdout().lock();
        match cli.output {
            Output::Json => writeln!(stdout, "{}", serde_json::to_string_pretty(&plan)?)?,
            Output::Text => stdout.write_all(deploy::plan::render_text(&plan).as_bytes())?,
        }
        match plan.exit_code() {
            0 => Ok(Outcome::Success),
            2 => Ok(Outcome::Changes),
            _ => {
                let blocked: Vec<&str> = plan.blocked().iter().map(|s| s.stack.name()).collect();
                anyhow::bail!("could not plan {} (see above)", blocked.join(", "))
            }
        }
    })
}
