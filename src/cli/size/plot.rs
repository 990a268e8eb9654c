//! `mangactl size --plot DIR`: SVG charts of a plan, written by hand (no
//! plotting dependency):
//! - `waterfall.svg`: the critical path as the seed's Gantt chart, each
//!   stage's budget beside its modelled p95, with the end-to-end target and
//!   the composed path p95 (which is not the sum of the bars);
//! - `load.svg`: latency (path p95, first token) and the monthly bill against
//!   load, from the `--sweep` range or sessions from 10% to 200% of the
//!   target.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use sizing::explore::SweepRow;
use sizing::{SizingInput, SizingPlan, Stage};

use super::explore::{sweep_rows, SweepSpec};

const W: f64 = 960.0;
const LEFT: f64 = 150.0;
const RIGHT: f64 = 40.0;

/// Writes every chart into `dir` (created if missing); returns the paths.
pub fn write_all(
    dir: &Path,
    input: &SizingInput,
    plan: &SizingPlan,
    sweep: Option<&SweepSpec>,
) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let sessions = f64::from(input.targets.traffic.concurrent_sessions);
    let spec = sweep.cloned().unwrap_or(SweepSpec {
        field: "sessions".to_owned(),
        from: (sessions * 0.1).round().max(1.0),
        to: sessions * 2.0,
        steps: 12,
    });
    let rows = sweep_rows(input, &spec)?;
    let mut written = Vec::new();
    for (name, svg) in [
        ("waterfall.svg", waterfall(plan)),
        ("load.svg", load(&spec, &rows)),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The critical path: budgets (outline) and modelled p95s (filled), laid end
/// to end as the seed's Gantt chart lays them (the parallel pair side by
/// side, from the same start).
fn waterfall(plan: &SizingPlan) -> String {
    let b = &plan.budget;
    let rows: Vec<_> = b.rows.iter().filter(|r| r.on_critical_path).collect();
    let parallel = [Stage::ServiceCalls, Stage::Retrieval];
    // Starts: serial stages follow each other; the parallel pair starts
    // together and the next stage waits for the longer.
    let mut spans = Vec::new();
    let (mut budget_at, mut model_at) = (0.0_f64, 0.0_f64);
    let (mut par_budget, mut par_model) = (0.0_f64, 0.0_f64);
    let mut in_parallel = false;
    for r in &rows {
        // The first-token row is timed from receipt; on the waterfall the
        // model's own part is what follows the stages before it.
        let modelled = if r.stage == Stage::FirstToken {
            (r.modelled_p95_ms - model_at).max(0.0)
        } else {
            r.modelled_p95_ms
        };
        let budget = f64::from(r.budget_ms);
        if parallel.contains(&r.stage) {
            in_parallel = true;
            spans.push((
                r.stage,
                budget_at,
                budget,
                model_at,
                modelled,
                r.slack_ms < 0.0,
            ));
            par_budget = par_budget.max(budget);
            par_model = par_model.max(modelled);
            continue;
        }
        if in_parallel {
            budget_at += par_budget;
            model_at += par_model;
            in_parallel = false;
        }
        spans.push((
            r.stage,
            budget_at,
            budget,
            model_at,
            modelled,
            r.slack_ms < 0.0,
        ));
        budget_at += budget;
        model_at += modelled;
    }
    let end = f64::from(b.end_to_end_p95_ms);
    let max = [
        budget_at,
        model_at,
        end,
        b.critical_path_ms + f64::from(b.margin_ms),
    ]
    .into_iter()
    .fold(1.0, f64::max)
        * 1.05;
    let row_h = 26.0;
    let top = 60.0;
    let h = top + row_h * spans.len() as f64 + 70.0;
    let x = |ms: f64| LEFT + ms / max * (W - LEFT - RIGHT);
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{LEFT}" y="22" font-size="15">Critical path of `{}`: budget (outline) and modelled p95 (filled; red over budget)</text>
<text x="{LEFT}" y="40" fill="#555">the bars' sum is not the path's p95: the composed path p95 is {:.0} ms (+{} ms margin) against {} ms</text>
"##,
        esc(&plan.env_name),
        b.critical_path_ms,
        b.margin_ms,
        b.end_to_end_p95_ms
    );
    for (i, (stage, bs, bl, ms, ml, over)) in spans.iter().enumerate() {
        let y = top + row_h * i as f64;
        let fill = if *over { "#d9534f" } else { "#337ab7" };
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end">{}</text>
<rect x="{:.1}" y="{:.1}" width="{:.1}" height="9" fill="none" stroke="#888"/>
<rect x="{:.1}" y="{:.1}" width="{:.1}" height="9" fill="{fill}"/>
"##,
            LEFT - 8.0,
            y + 14.0,
            esc(stage.label()),
            x(*bs),
            y + 2.0,
            (x(bs + bl) - x(*bs)).max(0.5),
            x(*ms),
            y + 12.0,
            (x(ms + ml) - x(*ms)).max(0.5),
        );
    }
    let axis_y = top + row_h * spans.len() as f64 + 10.0;
    for (ms, label, colour) in [
        (end, format!("target {} ms", b.end_to_end_p95_ms), "#5cb85c"),
        (
            b.critical_path_ms + f64::from(b.margin_ms),
            format!(
                "path p95 + margin {:.0} ms",
                b.critical_path_ms + f64::from(b.margin_ms)
            ),
            "#d9534f",
        ),
    ] {
        let _ = write!(
            s,
            r##"<line x1="{0:.1}" y1="{top}" x2="{0:.1}" y2="{axis_y}" stroke="{colour}" stroke-dasharray="4 3"/>
<text x="{0:.1}" y="{1:.1}" fill="{colour}" text-anchor="middle">{2}</text>
"##,
            x(ms),
            axis_y + 16.0,
            esc(&label)
        );
    }
    let tick = nice_step(max / 8.0);
    let mut t = 0.0;
    while t <= max {
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" fill="#555" text-anchor="middle">{t:.0}</text>"##,
            x(t),
            axis_y + 36.0
        );
        t += tick;
    }
    s.push_str("</svg>\n");
    s
}

fn nice_step(raw: f64) -> f64 {
    let p = 10f64.powf(raw.max(1e-9).log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|v| *v >= raw)
        .unwrap_or(10.0 * p)
}

/// A line of a chart: its label, colour and points.
type Series<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

/// Latency and cost against load: two panels sharing the x axis.
fn load(spec: &SweepSpec, rows: &[SweepRow]) -> String {
    let ok: Vec<&SweepRow> = rows.iter().filter(|r| r.verdict != "invalid").collect();
    let (x0, x1) = (
        spec.from.min(spec.to),
        spec.from.max(spec.to).max(spec.from.min(spec.to) + 1e-9),
    );
    let panel_h = 220.0;
    let h = 60.0 + 2.0 * (panel_h + 50.0);
    let x = |v: f64| LEFT + (v - x0) / (x1 - x0) * (W - LEFT - RIGHT);
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{LEFT}" y="22" font-size="15">Latency and cost against {}</text>
"##,
        esc(&sizing::explore::sweep_field(&spec.field))
    );
    let series = |name: &str| -> Vec<(f64, f64)> {
        ok.iter()
            .map(|r| {
                let y = match name {
                    "path" => r.critical_path_ms,
                    "first" => r.first_token_ms,
                    _ => r.bill_monthly_usd,
                };
                (r.value, y)
            })
            .filter(|(_, y)| y.is_finite())
            .collect()
    };
    let panels: [(&str, Vec<Series>); 2] = [
        (
            "p95 latency, ms",
            vec![
                ("path p95 (slowest covered tier)", "#d9534f", series("path")),
                ("first token from receipt", "#337ab7", series("first")),
            ],
        ),
        (
            "monthly bill, USD",
            vec![("bill over the day", "#5cb85c", series("bill"))],
        ),
    ];
    for (k, (title, lines)) in panels.iter().enumerate() {
        let top = 50.0 + k as f64 * (panel_h + 50.0);
        let ymax = lines
            .iter()
            .flat_map(|(_, _, pts)| pts.iter().map(|p| p.1))
            .fold(1.0, f64::max)
            * 1.1;
        let y = |v: f64| top + panel_h - v / ymax * panel_h;
        let _ = write!(
            s,
            r##"<text x="{LEFT}" y="{:.1}" fill="#333">{}</text>
<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999"/>
<line x1="{LEFT}" y1="{top:.1}" x2="{LEFT}" y2="{:.1}" stroke="#999"/>
<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{:.0}</text>
<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">0</text>
"##,
            top - 6.0,
            esc(title),
            top + panel_h,
            W - RIGHT,
            top + panel_h,
            top + panel_h,
            LEFT - 6.0,
            top + 10.0,
            ymax,
            LEFT - 6.0,
            top + panel_h,
        );
        for (i, (label, colour, pts)) in lines.iter().enumerate() {
            let path: Vec<String> = pts
                .iter()
                .map(|(vx, vy)| format!("{:.1},{:.1}", x(*vx), y(*vy)))
                .collect();
            let _ = write!(
                s,
                r##"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>
<text x="{:.1}" y="{:.1}" fill="{colour}">{}</text>
"##,
                path.join(" "),
                LEFT + 10.0,
                top + 16.0 + 16.0 * i as f64,
                esc(label)
            );
        }
        let _ = write!(
            s,
            r##"<text x="{LEFT}" y="{:.1}" fill="#555">{:.0}</text>
<text x="{:.1}" y="{:.1}" fill="#555" text-anchor="end">{:.0}</text>
"##,
            top + panel_h + 16.0,
            x0,
            W - RIGHT,
            top + panel_h + 16.0,
            x1
        );
    }
    s.push_str("</svg>\n");
    s
}
