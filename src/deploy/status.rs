//! `mangactl status`: the on-call engineer's one screen. Every stack's
//! status and last update; for each scalable component the sizing plan's
//! intent, the live values against what the rendering allows
//! (`live.rs`), the autoscaling range and target, and any active scale
//! record with its expiry; then a one-line verdict. Every read runs at
//! once. The CLI (`src/cli/status.rs`) adds the latency-budget table.

use std::fmt::Write as _;

use futures_util::future::join_all;
use serde::Serialize;
use stacks::render::Rendered;
use stacks::stacks::StackId;

use super::live::{self, CapacityItem, Component, ItemStatus, LiveReaders};
use super::progress::timestamp;
use crate::aws::scale_records::ScaleRecord;
use crate::aws::{CfnError, CloudFormation};

pub const SCHEMA: &str = "mangactl.status/v1";

#[derive(Debug, Clone, Serialize)]
pub struct StackLine {
    pub stack: StackId,
    pub stack_name: String,
    /// `None`: the stack does not exist.
    pub status: Option<String>,
    pub last_updated: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ComponentStatus {
    pub component: Component,
    /// What the sizing plan sized (`9 tasks of 1 vCPU / 2048 MiB`).
    pub intent: String,
    pub items: Vec<CapacityItem>,
    /// The autoscaling range and what it tracks, from the rendering.
    pub autoscaling: Option<String>,
    /// Scale records that still stand.
    pub records: Vec<ScaleRecord>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Everything deployed, settled, as rendered.
    Healthy,
    /// As rendered except what active scale records cover.
    Scaled,
    /// Live values outside what the rendering allows, or stacks missing.
    Drifting,
    /// A stack failed or has an operation in progress.
    Stuck,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub schema: &'static str,
    pub environment: String,
    pub stacks: Vec<StackLine>,
    pub components: Vec<ComponentStatus>,
    pub verdict: Verdict,
    /// Why the verdict is what it is.
    pub why: Vec<String>,
}

fn intent(rendered: &Rendered, c: Component) -> String {
    let s = &rendered.sizing;
    match c {
        Component::Service => format!(
            "{} tasks ({}..{}) of {} CPU units / {} MiB",
            s.service.tasks,
            s.service.min_tasks,
            s.service.max_tasks,
            s.service.cpu,
            s.service.memory_mib
        ),
        Component::Cache => format!(
            "{} x {} shard(s), {} replica(s) each",
            s.redis.node_type, s.redis.shards, s.redis.replicas_per_shard
        ),
        Component::Dax if s.dax.enabled => format!("{} x {} nodes", s.dax.node_type, s.dax.nodes),
        Component::Dax => "no DAX cluster".into(),
        Component::Intent => format!(
            "{} x {} ({}..{})",
            s.sagemaker.instance_type,
            s.sagemaker.instances,
            s.sagemaker.min_instances,
            s.sagemaker.max_instances
        ),
        Component::Search => format!(
            "max {} search / {} indexing OCUs",
            s.opensearch.search_ocu_max, s.opensearch.indexing_ocu_max
        ),
    }
}

/// The rendered range and the scaling policy's target.
fn autoscaling(rendered: &Rendered, c: Component) -> Option<String> {
    let t = rendered
        .stacks
        .iter()
        .find(|s| s.id == c.stack())?
        .template
        .to_value();
    let b = live::rendered_bounds(&t, "ScalableTarget")?;
    let policy = t.get("Resources")?.as_object()?.values().find(|r| {
        r.get("Type").and_then(|v| v.as_str()) == Some("AWS::ApplicationAutoScaling::ScalingPolicy")
    });
    let target = policy.and_then(|p| {
        let cfg = p
            .get("Properties")?
            .get("TargetTrackingScalingPolicyConfiguration")?;
        let metric = cfg
            .get("PredefinedMetricSpecification")?
            .get("PredefinedMetricType")?
            .as_str()?;
        Some(format!(", target {metric} {}", cfg.get("TargetValue")?))
    });
    Some(format!(
        "rendered range {}..{}{}",
        b.min,
        b.max,
        target.unwrap_or_default()
    ))
}

/// Reads every stack and live value at once; [`judge`] then adds the
/// scale records (read beside it) and the verdict.
pub async fn status(
    cfn: &dyn CloudFormation,
    live: LiveReaders<'_>,
    rendered: &Rendered,
) -> Result<StatusReport, CfnError> {
    let stacks = join_all(
        rendered
            .stacks
            .iter()
            .map(|s| cfn.describe_stack(&s.stack_name)),
    )
    .await;
    let mut lines = Vec::new();
    let mut deployed = Vec::new();
    for (s, r) in rendered.stacks.iter().zip(stacks) {
        let st = r?.filter(|e| !e.status.is_review());
        lines.push(StackLine {
            stack: s.id,
            stack_name: s.stack_name.clone(),
            status: st.as_ref().map(|e| e.status.to_string()),
            last_updated: st.as_ref().and_then(|e| e.last_updated).map(timestamp),
            reason: st.as_ref().and_then(|e| e.status_reason.clone()),
        });
        deployed.push((s.id, st));
    }
    let checks = join_all(Component::ALL.into_iter().map(|c| {
        let stack = deployed
            .iter()
            .find(|(id, _)| *id == c.stack())
            .and_then(|(_, s)| s.clone());
        async move {
            match stack {
                Some(st) => live::check(live, rendered, c, &st).await.items,
                None => Vec::new(),
            }
        }
    }))
    .await;
    let components = Component::ALL
        .into_iter()
        .zip(checks)
        .map(|(c, items)| ComponentStatus {
            component: c,
            intent: intent(rendered, c),
            items,
            autoscaling: autoscaling(rendered, c),
            records: Vec::new(),
        })
        .collect();
    Ok(StatusReport {
        schema: SCHEMA,
        environment: rendered.manifest.environment.clone(),
        stacks: lines,
        components,
        verdict: Verdict::Healthy,
        why: Vec::new(),
    })
}

/// Joins the scale records that still stand on `today` (an item at a
/// record's value is acknowledged) and sets the verdict.
pub fn judge(report: &mut StatusReport, records: &[ScaleRecord], today: &str) {
    let active: Vec<&ScaleRecord> = records.iter().filter(|r| r.is_active(today)).collect();
    for c in &mut report.components {
        let recs: Vec<ScaleRecord> = active
            .iter()
            .filter(|r| r.component == c.component.name())
            .map(|r| (*r).clone())
            .collect();
        for i in c
            .items
            .iter_mut()
            .filter(|i| i.status == ItemStatus::Drifted)
        {
            if let Some(r) = recs.iter().find(|r| {
                r.logical_id == i.logical_id
                    && r.property == i.property
                    && Some(r.value.as_str()) == i.actual.as_deref()
            }) {
                i.status = ItemStatus::Acknowledged;
                i.note = Some(format!(
                    "scaled by {} ({}), until {}",
                    r.by, r.reason, r.until
                ));
            }
        }
        c.records = recs;
    }
    let mut why = Vec::new();
    let mut verdict = Verdict::Healthy;
    for l in &report.stacks {
        match &l.status {
            None => {
                why.push(format!("{} does not exist", l.stack_name));
                verdict = verdict.max_with(Verdict::Drifting);
            }
            Some(s)
                if s.ends_with("_IN_PROGRESS")
                    || s.ends_with("_FAILED")
                    || s.starts_with("ROLLBACK") =>
            {
                why.push(format!("{} is {s}", l.stack_name));
                verdict = verdict.max_with(Verdict::Stuck);
            }
            Some(_) => {}
        }
    }
    for c in &report.components {
        for i in &c.items {
            match i.status {
                ItemStatus::Drifted => {
                    why.push(format!(
                        "{} {}{} is {}, the rendering allows {}",
                        c.component,
                        i.logical_id,
                        i.property,
                        i.actual.as_deref().unwrap_or("unknown"),
                        i.allowed
                    ));
                    verdict = verdict.max_with(Verdict::Drifting);
                }
                ItemStatus::Acknowledged => {
                    why.push(format!(
                        "{} {}{} scaled to {}",
                        c.component,
                        i.logical_id,
                        i.property,
                        i.actual.as_deref().unwrap_or("?")
                    ));
                    verdict = verdict.max_with(Verdict::Scaled);
                }
                _ => {}
            }
        }
    }
    report.verdict = verdict;
    report.why = why;
}

impl Verdict {
    fn rank(self) -> u8 {
        match self {
            Verdict::Healthy => 0,
            Verdict::Scaled => 1,
            Verdict::Drifting => 2,
            Verdict::Stuck => 3,
        }
    }

    /// The worse of the two.
    fn max_with(self, other: Verdict) -> Verdict {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Scaled => "scaled",
            Verdict::Drifting => "drifting",
            Verdict::Stuck => "stuck",
        }
    }
}

/// The screen, without the budget table (the CLI appends it).
pub fn render_text(r: &StatusReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Status of `{}`:\n", r.environment);
    for l in &r.stacks {
        let _ = writeln!(
            out,
            "{:<14} {:<34} {:<22} {}",
            l.stack.name(),
            l.stack_name,
            l.status.as_deref().unwrap_or("NOT DEPLOYED"),
            l.last_updated.as_deref().unwrap_or("-")
        );
    }
    for c in &r.components {
        let _ = writeln!(out, "\n{}: sized {}", c.component, c.intent);
        if let Some(a) = &c.autoscaling {
            let _ = writeln!(out, "  autoscaling: {a}");
        }
        for i in &c.items {
            let _ = writeln!(out, "  {}", i.line());
        }
        for rec in &c.records {
            let _ = writeln!(
                out,
                "  record: {}{} = {} by {} at {} ({}), until {}",
                rec.logical_id, rec.property, rec.value, rec.by, rec.at, rec.reason, rec.until
            );
        }
    }
    let _ = writeln!(
        out,
        "\nVerdict: {}{}",
        r.verdict.name(),
        if r.why.is_empty() {
            String::new()
        } else {
            format!(" ({})", r.why.join("; "))
        }
    );
    out
}
