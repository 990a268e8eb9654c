//! `mangactl status`: one screen for the on-call engineer (the logic is in
//! `src/deploy/status.rs`), then the latency-budget table from sizing.
//! Exit 0 whatever the verdict (it is a report; `drift` is the check).

use std::io::Write;

use super::shared::{read_scale_records, today, with_environment, AwsArgs, EnvArgs};
use super::{Cli, Output};
use crate::deploy::status;
use crate::outcome::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub env: EnvArgs,

    #[command(flatten)]
    pub aws: AwsArgs,
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<Outcome> {
    with_environment(
        cli,
        &args.env,
        &args.aws,
        async |environment, rendered, aws| {
            let live = aws.live_clients();
            // The records are read beside every stack and live value.
            let (records, report) = tokio::join!(
                read_scale_records(&aws, &environment.name),
                status::status(&aws.cfn, live.readers(), &rendered)
            );
            let mut report = report?;
            status::judge(&mut report, &records?, &today());
            let mut stdout = std::io::stdout().lock();
            match cli.output {
                Output::Json => writeln!(
                    stdout,
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "status": report,
                        "budget": rendered.sizing.budget,
                    }))?
                )?,
                _ => {
                    stdout.write_all(status::render_text(&report).as_bytes())?;
                    writeln!(stdout, "\nLatency budget (sizing):")?;
                    super::size::write_budget(&mut stdout, &rendered.sizing.budget)?;
                }
            }
            Ok(Outcome::Success)
        },
    )
}
