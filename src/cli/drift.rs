//! `mangactl drift`: the nightly question, does the deployment still match
//! the repository? The logic is in `src/deploy/drift.rs`; this file reads
//! the flags, connects to every region the stacks live in and prints the
//! report as text, JSON (`mangactl.drift/v1`) or JUnit XML.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use stacks::stacks::StackId;

use super::shared::{
    parse_duration, parse_stack, read_scale_records, today, with_environment, AwsArgs, EnvArgs,
};
use super::{Cli, Output};
use crate::deploy::drift::{self, DriftOptions};
use crate::deploy::Backoff;
use crate::outcome::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub env: EnvArgs,

    /// Check only this stack (the orphan check then does not run).
    #[arg(long, value_parser = parse_stack, value_name = "NAME")]
    pub stack: Option<StackId>,

    /// The whole run's deadline: `90`, `90s`, `5m` (checks not finished by then are reported as incomplete).
    #[arg(long, default_value = "10m", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,

    /// Exit 0 instead of 3 when nothing drifted but some resources could not be checked.
    #[arg(long)]
    pub allow_unchecked: bool,

    /// Stacks checked at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=16), value_name = "N")]
    pub concurrency: u16,

    #[command(flatten)]
    pub aws: AwsArgs,
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<Outcome> {
    with_environment(
        cli,
        &args.env,
        &args.aws,
        async |environment, mut rendered, aws| {
            aws.look_up(&mut rendered).await?;
            // What on-call engineers scaled, so drift acknowledges it.
            let scale_records = read_scale_records(&aws, &environment.name).await?;
            let opts = DriftOptions {
                only: args.stack,
                accepted: environment.accepted_drift.clone(),
                scale_records,
                today: today(),
                timeout: args.timeout,
                allow_unchecked: args.allow_unchecked,
                concurrency: usize::from(args.concurrency),
                backoff: Backoff::default(),
            };
            let live = aws.live_clients();
            let report = drift::drift(&aws.cfn, live.readers(), &rendered, &opts)
                .await
                .with_context(|| format!("checking `{}` for drift", environment.name))?;
            let mut stdout = std::io::stdout().lock();
            match cli.output {
                Output::Json => writeln!(stdout, "{}", serde_json::to_string_pretty(&report)?)?,
                Output::Junit => stdout.write_all(drift::render_junit(&report).as_bytes())?,
                Output::Text => stdout.write_all(drift::render_text(&report).as_bytes())?,
            }
            Ok(Outcome::from(&report))
        },
    )
}
