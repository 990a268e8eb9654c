//! `mangactl size`: the capacity plan sized from an environment's targets
//! (`stacks/sizing`), as tables or JSON, with the latency-budget check and
//! the monthly bill; `--explain` and `--sweep` ([`explore`]) and `--plot`
//! ([`plot`]) explore it.

mod explore;
mod plot;

use std::io::Write;

use anyhow::anyhow;
use sizing::SizingPlan;
use stacks::env::Environment;

use super::render::load_env;
use super::shared::EnvArgs;
use super::{Cli, Output};
use crate::outcome::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub env: EnvArgs,
    /// Explain one resource (service, redis, dax, dynamodb, opensearch,
    /// sagemaker, bedrock, or budget): every input that decides it, with its
    /// source, and how far each can move (within ×0.25 to ×4) before the
    /// result changes.
    #[arg(long, value_name = "RESOURCE", conflicts_with = "sweep")]
    pub explain: Option<String>,
    /// Size across a range of one traffic field, FIELD=FROM..TO[:STEPS]
    /// (10 steps unless given), e.g. `sessions=1000..20000`; FIELD is a
    /// name under targets.traffic (`sessions` for concurrent_sessions) or a
    /// dotted path under targets.
    #[arg(long, value_name = "FIELD=FROM..TO[:STEPS]", value_parser = explore::parse_sweep)]
    pub sweep: Option<explore::SweepSpec>,
    /// Write SVG charts into DIR: the critical-path waterfall (modelled p95s
    /// against the budgets) and latency and cost against load (the --sweep
    /// range, or sessions from 10% to 200% of the target).
    #[arg(long, value_name = "DIR")]
    pub plot: Option<std::path::PathBuf>,
}

/// Sizes `env`; warnings go to stderr, and a target that cannot be met
/// (or a prod override that falls short) is an error listing every cause.
pub(crate) fn size_environment(env: &Environment) -> anyhow::Result<SizingPlan> {
    match sizing::size(&env.sizing_input()) {
        Ok(plan) => {
            for w in &plan.warnings {
                eprintln!("warning: {w}");
            }
            Ok(plan)
        }
        Err(errors) => Err(anyhow!("{errors}").context(format!(
            "environment `{}` cannot meet its targets ({})",
            env.name,
            env.source.display()
        ))),
    }
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<Outcome> {
    let environment = load_env(cli, &args.env.env)?;
    let (plan, errors) = match sizing::size(&environment.sizing_input()) {
        Ok(plan) => (plan, None),
        Err(e) => match e.plan {
            Some(ref plan) => ((**plan).clone(), Some(e)),
            None => {
                return Err(
                    anyhow!("{e}").context(format!("sizing environment `{}`", environment.name))
                )
            }
        },
    };
    let mut out = std::io::stdout().lock();
    let explored = args.explain.is_some() || args.sweep.is_some() || args.plot.is_some();
    if explored {
        let input = environment.sizing_input();
        if let Some(resource) = &args.explain {
            explore::explain(&mut out, cli.output, &input, resource)?;
        }
        if let Some(spec) = &args.sweep {
            explore::sweep(&mut out, cli.output, &input, spec)?;
        }
        if let Some(dir) = &args.plot {
            let written = plot::write_all(dir, &input, &plan, args.sweep.as_ref())?;
            for path in written {
                if matches!(cli.output, Output::Text | Output::Junit) {
                    writeln!(out, "wrote {}", path.display())?;
                }
            }
        }
    }
    match cli.output {
        _ if explored => {}
        Output::Json => {
            let doc = serde_json::json!({
                "environment": environment.name,
                "passes": errors.is_none(),
                "budget_passes": plan.budget.passes,
                "assumptions": sizing::Assumptions::embedded().ok().map(|a| a.provenance()),
                "errors": errors.as_ref().map(|e| e.errors.iter().map(ToString::to_string).collect::<Vec<_>>()).unwrap_or_default(),
                "plan": plan,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        }
        Output::Text | Output::Junit => write_tables(&mut out, &plan)?,
    }
    // Results are complete on stdout before any warning reaches stderr.
    out.flush()?;
    drop(out);
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    match errors {
        None => Ok(Outcome::Success),
        Some(e) => Err(anyhow!("{e}").context(format!(
            "environment `{}` cannot meet its targets ({})",
            environment.name,
            environment.source.display()
        ))),
    }
}

fn write_tables(out: &mut impl Write, plan: &SizingPlan) -> std::io::Result<()> {
    let r = &plan.rates;
    writeln!(out, "Sizing for `{}`", plan.env_name)?;
    writeln!(out)?;
    let rows = plan.resource_rows();
    let size_w = rows
        .iter()
        .map(|r| r.size.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(
        out,
        "{:<11} {:<size_w$} {:<18} {:>6} {:>9} {:>12}",
        "RESOURCE", "SIZE", "BINDING", "UTIL", "HEADROOM", "$/MONTH"
    )?;
    for row in &rows {
        let flag = if row.overridden { " (override)" } else { "" };
        writeln!(
            out,
            "{:<11} {:<size_w$} {:<18} {:>5.0}% {:>8.0}% {:>12}{flag}",
            row.resource,
            row.size,
            row.binding.to_string(),
            row.utilisation_at_peak * 100.0,
            row.headroom * 100.0,
            dollars(row.monthly_cost_usd),
        )?;
    }
    writeln!(
        out,
        "{:<11} {:<size_w$} {:<18} {:>6} {:>9} {:>12}",
        "total",
        "",
        "",
        "",
        "",
        dollars(plan.cost.total_monthly_usd)
    )?;
    writeln!(out)?;

    write_budget(out, &plan.budget)?;
    writeln!(out)?;
    if let Some(b) = &plan.bill {
        write_bill(out, b)?;
        let sch = &plan.schedule;
        writeln!(
            out,
            "scheduled minimum ({}): service {}; intent {}",
            sch.timezone,
            sch.service.describe(),
            sch.sagemaker.describe()
        )?;
        writeln!(out)?;
    }
    writeln!(
        out,
        "peak: {:.0} msg/s, {:.0} LLM streams in flight, {:.0} ML intents/s",
        r.messages_per_s, r.streams_in_flight, r.intent_ml_per_s
    )?;
    if let Ok(a) = sizing::Assumptions::embedded() {
        write_provenance(out, &a.provenance())?;
    }
    Ok(())
}

/// The monthly bill over the day's traffic, per message and per session,
/// and the options.
fn write_bill(out: &mut impl Write, b: &sizing::bill::Bill) -> std::io::Result<()> {
    writeln!(
        out,
        "MONTHLY BILL (hourly profile: {}; peak hour = sized peak)",
        if b.profile_source.starts_with("default") {
            "default shape"
        } else {
            "environment file"
        }
    )?;
    let item_w = b
        .lines
        .iter()
        .map(|l| l.item.chars().count())
        .max()
        .unwrap_or(4);
    for l in &b.lines {
        writeln!(
            out,
            "{:<item_w$} {:>14}  {}",
            l.item,
            dollars(l.monthly_usd),
            l.basis
        )?;
    }
    writeln!(
        out,
        "{:<item_w$} {:>14}  (the plan above, peak capacity all month: {})",
        "total",
        dollars(b.total_monthly_usd),
        dollars(b.plan_monthly_usd)
    )?;
    writeln!(
        out,
        "{:.1}M messages and {:.2}M sessions a month: ${:.4} a message, ${:.3} a session",
        b.messages_per_month / 1e6,
        b.sessions_per_month / 1e6,
        b.per_message_usd,
        b.per_session_usd
    )?;
    for o in &b.options {
        writeln!(
            out,
            "option: {} ({}{} a month); latency: {}",
            o.option,
            if o.monthly_change_usd > 0.0 { "+" } else { "" },
            dollars(o.monthly_change_usd),
            o.latency
        )?;
    }
    Ok(())
}

/// Which figures a benchmark of this repository measured, and how many are still
/// estimates (stacks/sizing/data/assumptions.yaml has each source).
fn write_provenance(
    out: &mut impl Write,
    p: &sizing::assumptions::Provenance,
) -> std::io::Result<()> {
    writeln!(
        out,
        "assumptions: {} measured here, {} published, {} estimates (stacks/sizing/data/assumptions.yaml)",
        p.measured_count, p.published_count, p.estimate_count
    )?;
    for m in &p.measured {
        let command = m
            .source
            .split_once("command:")
            .map_or("", |(_, c)| c.split(';').next().unwrap_or("").trim());
        writeln!(out, "  measured {} ({}): {command}", m.name, m.date)?;
    }
    Ok(())
}

/// The latency-budget table (also printed by `mangactl status`).
pub(super) fn write_budget(
    out: &mut dyn std::io::Write,
    b: &sizing::BudgetTable,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<22} {:>10} {:>12} {:>10}  PATH",
        "STAGE", "BUDGET ms", "MODELLED ms", "SLACK ms"
    )?;
    for row in &b.rows {
        let mark = if row.slack_ms < 0.0 { "  OVER" } else { "" };
        let path = if row.on_critical_path { "yes" } else { "-" };
        writeln!(
            out,
            "{:<22} {:>10} {:>12.1} {:>10.1}  {path}{mark}",
            row.stage.to_string(),
            row.budget_ms,
            row.modelled_p95_ms,
            row.slack_ms
        )?;
    }
    writeln!(
        out,
        "critical path {:.1} ms + margin {} ms of {} ms: {} ({:.1} ms slack)",
        b.critical_path_ms,
        b.margin_ms,
        b.end_to_end_p95_ms,
        if b.passes { "passes" } else { "misses" },
        b.slack_ms
    )?;
    if !b.tiers.is_empty() {
        writeln!(
            out,
            "\n{:<14} {:>7} {:>17} {:>15}  TARGET",
            "TIER", "SHARE", "FIRST TOKEN p95", "END TO END p95"
        )?;
        for t in &b.tiers {
            let first = t
                .first_token_p95_ms
                .map_or_else(|| "-".to_owned(), |v| format!("{v:.1} ms"));
            let target = if t.within_end_to_end_target {
                if t.end_to_end_p95_ms + f64::from(b.margin_ms) <= f64::from(b.end_to_end_p95_ms) {
                    "covered, meets"
                } else {
                    "covered, misses"
                }
            } else {
                "outside the target (seed)"
            };
            writeln!(
                out,
                "{:<14} {:>6.1}% {first:>17} {:>12.1} ms  {target}",
                t.tier, t.share_pct, t.end_to_end_p95_ms
            )?;
        }
        writeln!(
            out,
            "all messages (tier mix, complex included): end-to-end p95 {:.1} ms",
            b.all_messages_p95_ms
        )?;
    }
    for note in &b.notes {
        writeln!(out, "note: {note}")?;
    }
    Ok(())
}

fn dollars(v: f64) -> String {
    let whole = v.round() as i64;
    let digits = whole.abs().to_string();
    let mut grouped = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{}${grouped}", if whole < 0 { "-" } else { "" })
}
