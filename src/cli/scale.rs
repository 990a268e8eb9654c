//! `mangactl scale COMPONENT`: change live capacity now, record it, and
//! optionally wait until it has taken effect. The logic is in
//! `src/deploy/scale.rs`; this file reads the flags, checks them before any
//! call, shows before → after, asks, and prints.
//!
//! Exit codes: 0 done (or nothing to change, or `--dry-run`); 1 refused or
//! failed; 3 with `--wait` when the change did not settle in time.

use std::io::Write;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use stacks::render::Format;

use super::render::render_environment;
use super::shared::{civil_date, connect, parse_duration, runtime, AwsArgs, EnvArgs};
use super::{Cli, Output};
use crate::aws::scale_records::{self, SsmRecords};
use crate::deploy::confirm::{self, Decision, TerminalPrompter};
use crate::deploy::live::Component;
use crate::deploy::progress::Progress;
use crate::deploy::scale::{self, Attribution, ScaleRequest};
use crate::outcome::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to scale.
    #[arg(value_enum)]
    pub component: Component,

    #[command(flatten)]
    pub env: EnvArgs,

    /// service, intent: the autoscaling minimum.
    #[arg(long, value_name = "N")]
    pub min: Option<u32>,
    /// service, intent: the autoscaling maximum.
    #[arg(long, value_name = "N")]
    pub max: Option<u32>,
    /// service: the ECS desired count (inside the bounds).
    #[arg(long, value_name = "N")]
    pub desired: Option<u32>,
    /// cache: replicas per node group (online).
    #[arg(long, value_name = "N")]
    pub replicas: Option<u32>,
    /// cache: the node type (online vertical scaling).
    #[arg(long, value_name = "TYPE")]
    pub node_type: Option<String>,
    /// dax: the number of nodes (the replication factor).
    #[arg(long, value_name = "N")]
    pub nodes: Option<u32>,
    /// intent: the endpoint variant's desired instance count.
    #[arg(long, value_name = "N")]
    pub instances: Option<u32>,
    /// search: the account's maximum search OCUs.
    #[arg(long, value_name = "N")]
    pub max_search_ocu: Option<u32>,
    /// search: the account's maximum indexing OCUs.
    #[arg(long, value_name = "N")]
    pub max_indexing_ocu: Option<u32>,

    /// Return the component to the rendering's values and end its scale records.
    #[arg(long)]
    pub revert: bool,

    /// Why (required in prod; it goes into the record).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,

    /// How long the change stands before drift reports it again and apply
    /// resets it: `24h`, `3d` is `72h` [default: 24h].
    #[arg(long = "for", default_value = "24h", value_parser = parse_duration, value_name = "DURATION")]
    pub for_: Duration,

    /// Go below the sized minimum in prod (with --reason).
    #[arg(long)]
    pub force: bool,

    /// Print the API calls it would make, and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Do not ask (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Wait until the change has taken effect (exit 3 if it has not by --wait-timeout).
    #[arg(long)]
    pub wait: bool,

    /// How long --wait waits: `90s`, `10m`.
    #[arg(long, default_value = "10m", value_parser = parse_duration, value_name = "DURATION")]
    pub wait_timeout: Duration,

    #[command(flatten)]
    pub aws: AwsArgs,
}

fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        civil_date(days),
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The last day a change made now stands for `d`.
fn until(d: Duration) -> String {
    let end = SystemTime::now() + d;
    let days = end
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400);
    civil_date(i64::try_from(days).unwrap_or(0))
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<Outcome> {
    let (environment, rendered) = render_environment(cli, &args.env.env, Format::Json)?;
    let req = ScaleRequest {
        min: args.min,
        max: args.max,
        desired: args.desired,
        replicas: args.replicas,
        node_type: args.node_type.clone(),
        nodes: args.nodes,
        instances: args.instances,
        max_search_ocu: args.max_search_ocu,
        max_indexing_ocu: args.max_indexing_ocu,
        revert: args.revert,
        reason: args.reason.clone(),
        force: args.force,
    };
    // Before any call.
    scale::validate(args.component, &req, &rendered)?;
    runtime()?.block_on(async {
        let aws = connect(&args.aws, &rendered).await;
        let clients = aws.live_clients();
        let live = clients.readers();
        let plan = scale::prepare(&aws.cfn, live, &rendered, args.component, &req).await?;
        let by = if args.dry_run {
            "(dry run)".to_owned()
        } else {
            scale_records::caller(&aws.home)
                .await
                .context("reading the caller identity for the scale record")?
        };
        let who = Attribution {
            by,
            at: now_rfc3339(),
            reason: args
                .reason
                .clone()
                .unwrap_or_else(|| "no reason given".into()),
            until: until(args.for_),
        };
        let progress = Progress::plain(Box::new(std::io::stderr()));
        let mut stdout = std::io::stdout().lock();
        let text = scale::render_text(&plan, Some(&who));
        if args.dry_run {
            match cli.output {
                Output::Json => writeln!(stdout, "{}", serde_json::to_string_pretty(&plan)?)?,
                _ => {
                    stdout.write_all(text.as_bytes())?;
                    writeln!(stdout, "Dry run: the calls it would make:")?;
                    for c in &plan.calls {
                        writeln!(stdout, "  {c}")?;
                    }
                    if !args.revert && !plan.steps.is_empty() {
                        for r in scale::records(&plan, &who) {
                            writeln!(
                                stdout,
                                "  ssm PutParameter Name={}",
                                scale_records::name_of(&environment.name, &r)
                            )?;
                        }
                    }
                }
            }
            return Ok(Outcome::Success);
        }
        if cli.output == Output::Text {
            stdout.write_all(text.as_bytes())?;
            stdout.flush()?;
        }
        if plan.is_empty() && !args.revert {
            return Ok(Outcome::Success);
        }
        let decision = confirm::confirm(
            "scale",
            &environment.name,
            args.yes,
            false,
            None,
            &TerminalPrompter,
            &progress,
        )?;
        if decision == Decision::Declined {
            anyhow::bail!("scale cancelled; nothing changed");
        }
        let store = SsmRecords::new(&aws.home);
        let done = scale::execute(live, &store, &plan, &who).await?;
        if cli.output == Output::Text {
            for d in &done {
                writeln!(stdout, "  done: {d}")?;
            }
        }
        let mut outcome = Outcome::Success;
        if args.wait {
            let report = |line: &str| eprintln!("waiting for {}: {line}", plan.component);
            let settled = scale::wait(live, &plan, args.wait_timeout, Duration::from_secs(5), &report).await?;
            if !settled {
                eprintln!(
                    "{} did not settle within {}s; it may still be changing (mangactl status shows it)",
                    plan.component,
                    args.wait_timeout.as_secs()
                );
                outcome = Outcome::Incomplete;
            }
        }
        if cli.output == Output::Json {
            writeln!(
                stdout,
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "scale": plan,
                    "done": done,
                    "settled": outcome == Outcome::Success,
                }))?
            )?;
        }
        Ok(outcome)
    })
}
