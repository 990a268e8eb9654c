//! `mangactl plan`: render, create a change set per stack, print what would
//! change, delete the change sets again. Exit 0 without changes, 2 with
//! changes, 1 when a stack cannot be planned. The logic is in
//! `src/deploy/plan.rs`; the flags it shares with other commands are in
//! `shared.rs`.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use clap::Parser;
use stacks::render::{Format, Rendered};
use stacks::stacks::StackId;

use super::render::render_environment;
use super::shared::{parse_stack, read_scale_records, today, with_environment, AwsArgs, EnvArgs};
use super::{Cli, Output};
use crate::deploy::{self, holds, plan::PlanOptions};
use crate::outcome::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub env: EnvArgs,

    /// Plan only this stack.
    #[arg(long, value_parser = parse_stack, value_name = "NAME")]
    pub stack: Option<StackId>,

    /// Drift-aware change sets (`DeploymentMode: REVERT_DRIFT`): updates
    /// also reset live drift to the template; the plan shows what they reset.
    #[arg(long)]
    pub revert_drift: bool,

    /// Change sets created at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=16), value_name = "N")]
    pub concurrency: u16,

    #[command(flatten)]
    pub preflight: super::preflight::SkipArgs,

    #[command(flatten)]
    pub aws: AwsArgs,
}

/// An environment rendered exactly as `plan`, `apply` and `destroy` render
/// it, for in-process tests of `src/deploy/` (tests/it/deploy_fake.rs).
pub fn rendered_for_deploy(environments: &Path, spec: &str) -> anyhow::Result<Rendered> {
    let dir = environments
        .to_str()
        .context("environments directory is not UTF-8")?;
    let cli = Cli::try_parse_from(["mangactl", "--environments", dir, "plan", "--env", spec])?;
    let mut rendered = render_environment(&cli, spec, Format::Json)?.1;
    // What the region would answer, for tests without an EC2 API.
    for (id, m) in &rendered.manifest.stacks {
        for param in m.lookups.keys() {
            rendered
                .lookups
                .entry(*id)
                .or_default()
                .insert(param.clone(), format!("pl-test-{}", m.region));
        }
    }
    Ok(rendered)
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<Outcome> {
    with_environment(
        cli,
        &args.env,
        &args.aws,
        async |environment, mut rendered, aws| {
            super::preflight::gate(&args.preflight, &aws, &environment, &rendered).await?;
            aws.look_up(&mut rendered).await?;
            let records = read_scale_records(&aws, &environment.name).await?;
            let holds = holds::apply_holds(&mut rendered, &records, &today())?;
            let cfn = &aws.cfn;
            let opts = PlanOptions {
                only: args.stack,
                change_set_name: deploy::change_set_name("plan"),
                concurrency: usize::from(args.concurrency),
                backoff: deploy::Backoff::default(),
                revert_drift: args.revert_drift,
            };
            let mut plan = deploy::plan::plan(cfn, &rendered, &opts)
                .await
                .with_context(|| format!("planning `{}`", environment.name))?;
            let live = aws.live_clients();
            let live_drift =
                holds::live_drift(cfn, live.readers(), &rendered, &plan, args.revert_drift).await;
            deploy::plan::discard(cfn, &plan).await;
            plan.live_drift = live_drift.context("reading the deployed templates")?;
            plan.holds = holds;
            let mut stdout = std::io::stdout().lock();
            match cli.output {
                Output::Json => writeln!(stdout, "{}", serde_json::to_string_pretty(&plan)?)?,
                Output::Text | Output::Junit => {
                    stdout.write_all(deploy::plan::render_text(&plan).as_bytes())?;
                    stdout
                        .write_all(holds::render_text(&plan.holds, &plan.live_drift).as_bytes())?
                }
            }
            match Outcome::from(&plan) {
                Outcome::Failed => {
                    let blocked: Vec<&str> =
                        plan.blocked().iter().map(|s| s.stack.name()).collect();
                    anyhow::bail!("could not plan {} (see above)", blocked.join(", "))
                }
                outcome => Ok(outcome),
            }
        },
    )
}
