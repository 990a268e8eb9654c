//! `mangactl size --explain RESOURCE` and `--sweep FIELD=FROM..TO[:STEPS]`:
//! the sizing crate's explorer (`stacks/sizing/src/explore.rs`) as tables or
//! JSON.

use std::io::Write;

use anyhow::Context;
use sizing::explore::{self, Explanation, SweepRow};
use sizing::{Assumptions, Prices, SizingInput};

use crate::cli::Output;

/// A parsed `--sweep`.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSpec {
    /// The field as given.
    pub field: String,
    pub from: f64,
    pub to: f64,
    pub steps: usize,
}

impl SweepSpec {
    /// The values swept.
    pub fn values(&self) -> Vec<f64> {
        explore::steps(self.from, self.to, self.steps)
    }
}

/// Parses `FIELD=FROM..TO[:STEPS]`.
pub fn parse_sweep(s: &str) -> Result<SweepSpec, String> {
    let usage = "expected FIELD=FROM..TO[:STEPS], e.g. sessions=1000..20000:10";
    let (field, range) = s.split_once('=').ok_or_else(|| usage.to_owned())?;
    let (range, steps) = match range.split_once(':') {
        Some((r, n)) => (
            r,
            n.trim()
                .parse::<usize>()
                .map_err(|_| format!("STEPS `{n}` is not a whole number; {usage}"))?,
        ),
        None => (range, 10),
    };
    let (from, to) = range.split_once("..").ok_or_else(|| usage.to_owned())?;
    let num = |v: &str| {
        v.trim()
            .replace('_', "")
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| format!("`{v}` is not a number; {usage}"))
    };
    let (from, to) = (num(from)?, num(to)?);
    if field.trim().is_empty() {
        return Err(usage.to_owned());
    }
    if !(2..=200).contains(&steps) {
        return Err(format!("STEPS must be between 2 and 200, got {steps}"));
    }
    Ok(SweepSpec {
        field: field.trim().to_owned(),
        from,
        to,
        steps,
    })
}

/// The assumptions and the price table of the environment's region (the
/// fallback's for a region without one, as `size` does).
fn data(region: &str) -> anyhow::Result<(&'static Assumptions, &'static Prices)> {
    Ok((
        Assumptions::embedded().context("loading the sizing assumptions")?,
        Prices::embedded_for(region).context("loading the price table")?,
    ))
}

/// Prints the explanation of `resource`.
pub fn explain(
    out: &mut impl Write,
    output: Output,
    input: &SizingInput,
    resource: &str,
) -> anyhow::Result<()> {
    let (a, prices) = data(&input.region)?;
    let e = explore::explain(input, a, prices, resource)
        .with_context(|| format!("explaining `{resource}` in `{}`", input.env_name))?;
    match output {
        Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(&e)?)?,
        Output::Text | Output::Junit => write_explanation(out, &input.env_name, &e)?,
    }
    Ok(())
}

fn write_explanation(out: &mut impl Write, env: &str, e: &Explanation) -> std::io::Result<()> {
    let (lo, hi) = explore::FACTOR_RANGE;
    writeln!(out, "`{}` in `{env}`: {}", e.resource, e.result)?;
    writeln!(
        out,
        "{} inputs tried, each from ×{lo} to ×{hi} of its value; {} change the result (nearest change first):",
        e.tried,
        e.inputs.len()
    )?;
    writeln!(out)?;
    let name_w = e
        .inputs
        .iter()
        .map(|s| s.input.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    writeln!(
        out,
        "{:<name_w$} {:>12} {:>22} {:>22}  SOURCE",
        "INPUT", "VALUE", "CHANGES BELOW", "CHANGES ABOVE"
    )?;
    let at = |f: &Option<explore::Flip>| {
        f.as_ref().map_or_else(
            || "-".to_owned(),
            |f| format!("{} ({:+.1}%)", number(f.value), f.change_pct),
        )
    };
    for s in &e.inputs {
        let source: String = s.source.chars().take(70).collect();
        let more = if s.source.chars().count() > 70 {
            "…"
        } else {
            ""
        };
        writeln!(
            out,
            "{:<name_w$} {:>12} {:>22} {:>22}  {source}{more}",
            s.input,
            number(s.value),
            at(&s.flips_below),
            at(&s.flips_above)
        )?;
    }
    writeln!(out)?;
    for s in &e.inputs {
        for (dir, f) in [("below", &s.flips_below), ("above", &s.flips_above)] {
            if let Some(f) = f {
                writeln!(out, "{} {dir} {}: {}", s.input, number(f.value), f.result)?;
            }
        }
    }
    Ok(())
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// Prints the sweep.
pub fn sweep(
    out: &mut impl Write,
    output: Output,
    input: &SizingInput,
    spec: &SweepSpec,
) -> anyhow::Result<()> {
    let rows = sweep_rows(input, spec)?;
    match output {
        Output::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "environment": input.env_name,
                "field": explore::sweep_field(&spec.field),
                "rows": rows,
            }))?
        )?,
        Output::Text | Output::Junit => write_sweep(out, input, spec, &rows)?,
    }
    Ok(())
}

/// The sweep's rows (also what `--plot` draws against load).
pub fn sweep_rows(input: &SizingInput, spec: &SweepSpec) -> anyhow::Result<Vec<SweepRow>> {
    let (a, prices) = data(&input.region)?;
    explore::sweep(input, a, prices, &spec.field, &spec.values())
        .with_context(|| format!("sweeping `{}` in `{}`", spec.field, input.env_name))
}

fn write_sweep(
    out: &mut impl Write,
    input: &SizingInput,
    spec: &SweepSpec,
    rows: &[SweepRow],
) -> std::io::Result<()> {
    writeln!(
        out,
        "`{}` from {} to {} in `{}` ({} steps); verdict: passes, accepted (within accepted_shortfalls), fails, invalid",
        explore::sweep_field(&spec.field),
        number(spec.from),
        number(spec.to),
        input.env_name,
        spec.steps
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:>12} {:<9} {:>6} {:>13} {:>16} {:>14} {:>14}  CHANGED",
        "VALUE",
        "VERDICT",
        "TASKS",
        "PATH p95 ms",
        "FIRST TOKEN ms",
        "PLAN $/MONTH",
        "BILL $/MONTH"
    )?;
    let mut previous: Option<&SweepRow> = None;
    for r in rows {
        let changed: Vec<String> = r
            .sizes
            .iter()
            .filter(|(name, size)| {
                name != "bedrock"
                    && previous.is_none_or(|p| p.sizes.iter().any(|(n, s)| n == name && s != size))
            })
            .map(|(name, size)| format!("{name}: {size}"))
            .collect();
        writeln!(
            out,
            "{:>12} {:<9} {:>6} {:>13.1} {:>16.1} {:>14} {:>14}  {}",
            number((r.value * 1000.0).round() / 1000.0),
            r.verdict,
            r.tasks,
            r.critical_path_ms,
            r.first_token_ms,
            super::dollars(r.plan_monthly_usd),
            super::dollars(r.bill_monthly_usd),
            if previous.is_none() {
                "(first row: every size)".to_owned()
            } else if changed.is_empty() {
                "-".to_owned()
            } else {
                changed.join("; ")
            }
        )?;
        if previous.is_none() {
            for c in &changed {
                writeln!(out, "{:>12}   {c}", "")?;
            }
        }
        previous = Some(r);
    }
    Ok(())
}
