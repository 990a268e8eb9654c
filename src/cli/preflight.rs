//! `mangactl preflight --env NAME`: the external prerequisites of an apply
//! (the checks are `src/deploy/preflight.rs`). Exit 0 when all are ready,
//! 1 when any is missing (each named with its fix, all at once), 3 when
//! some could not be checked. `plan` and `apply` run the same checks first
//! through [`gate`]; `--skip-preflight` turns that off and says so.

use std::io::Write;

use stacks::env::Environment;
use stacks::render::Rendered;

use super::shared::{with_environment, AwsArgs, Connections, EnvArgs};
use super::{Cli, Output};
use crate::aws::prerequisites::SdkPrerequisites;
use crate::deploy::preflight::{self, PreflightReport};
use crate::outcome::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub env: EnvArgs,

    #[command(flatten)]
    pub aws: AwsArgs,
}

/// `--skip-preflight` for `plan` and `apply`.
#[derive(Debug, Clone, clap::Args)]
pub struct SkipArgs {
    /// Do not check the external prerequisites first (for emulators that lack a service); the output says it was skipped.
    #[arg(long, env = "MANGACTL_SKIP_PREFLIGHT", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::SetTrue)]
    pub skip_preflight: bool,
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<Outcome> {
    with_environment(
        cli,
        &args.env,
        &args.aws,
        async |environment, rendered, aws| {
            let report = check(&aws, &environment, &rendered).await;
            let mut stdout = std::io::stdout().lock();
            match cli.output {
                Output::Json => writeln!(stdout, "{}", serde_json::to_string_pretty(&report)?)?,
                _ => stdout.write_all(report.render_text().as_bytes())?,
            }
            Ok(report.outcome())
        },
    )
}

async fn check(aws: &Connections, env: &Environment, rendered: &Rendered) -> PreflightReport {
    let prereqs = SdkPrerequisites::new(&aws.home, &aws.by_region);
    preflight::preflight(&prereqs, env, rendered).await
}

/// Runs preflight before a changing command; its report goes to stderr
/// (stdout carries the command's own result). An error when anything is
/// missing, so nothing is changed; unchecked items are warnings.
pub(super) async fn gate(
    skip: &SkipArgs,
    aws: &Connections,
    env: &Environment,
    rendered: &Rendered,
) -> anyhow::Result<()> {
    let mut stderr = std::io::stderr().lock();
    if skip.skip_preflight {
        writeln!(
            stderr,
            "preflight skipped (--skip-preflight): images, the model artifact, certificates, \
             model access, quotas and the account are not checked"
        )?;
        return Ok(());
    }
    let report = check(aws, env, rendered).await;
    match report.outcome() {
        Outcome::Success => Ok(()),
        Outcome::Failed => {
            stderr.write_all(report.render_text().as_bytes())?;
            let names: Vec<String> = report
                .missing()
                .map(|c| format!("{} {}", c.check, c.subject))
                .collect();
            anyhow::bail!(
                "preflight: {} prerequisite(s) missing ({}); nothing was changed",
                names.len(),
                names.join("; ")
            )
        }
        _ => {
            stderr.write_all(report.render_text().as_bytes())?;
            writeln!(
                stderr,
                "preflight: continuing; the unchecked items above are not proven ready"
            )?;
            Ok(())
        }
    }
}
