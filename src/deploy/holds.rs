//! Scale holds, and what an apply would do to live drift.
//!
//! **Holds.** An on-call change recorded by `mangactl scale` (a scale
//! record, `src/aws/scale_records.rs`) must not be undone by the next
//! deploy. For values that live in templates (ElastiCache replicas and node
//! type, DAX nodes, scalable-target bounds) and the one that lives in the
//! sizing plan (OpenSearch Serverless maximum OCUs), [`apply_holds`] puts
//! each unexpired record's value into the rendering before `plan`, `apply`
//! and drift's code layer see it: the change set then carries the scaled
//! value, and `plan` says which rendered value a record holds back. Once a
//! record expires it holds nothing: the next plan shows the change back to
//! the rendered value, and drift reports the difference. A record of a
//! pool with scheduled minimum capacity (service, intent) also suspends
//! that pool's schedule in the rendering while it stands
//! ([`SCHEDULE_SUSPENDED`]).
//!
//! **Live drift.** [`live_drift`] tells, per planned stack, what the apply
//! would do to each live value that differs from the rendering (the
//! live-capacity layer, `live.rs`): a property the change set changes is
//! overwritten; one it leaves alone stays as it is (a standard change set
//! compares templates, not live state) unless `--revert-drift` asks for
//! CloudFormation's drift-aware change set (`DeploymentMode: REVERT_DRIFT`,
//! which "compare[s] templates with the actual state of your stack
//! resources and bring[s] drifted resources in line with their template
//! definitions": CloudFormation User Guide, "Using drift-aware change
//! sets"); values outside every template (a desired count the autoscaler
//! owns) are never touched by an apply.

use serde::Serialize;
use serde_json::Value;
use stacks::render::{RenderError, Rendered};
use stacks::stacks::StackId;

use super::live::{self, Component, ItemStatus, LiveReaders, ACCOUNT_SETTINGS};
use super::plan::Plan;
use crate::aws::scale_records::ScaleRecord;
use crate::aws::{CfnError, CloudFormation};

/// A rendered value an unexpired scale record holds back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hold {
    pub stack: StackId,
    pub logical_id: String,
    pub property: String,
    /// What the repository renders.
    pub rendered: String,
    /// What the record keeps instead.
    pub held: String,
    pub by: String,
    pub at: String,
    pub reason: String,
    pub until: String,
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The record's value in the rendered value's JSON type.
fn typed(value: &str, like: &Value) -> Value {
    match like {
        Value::Number(_) => value
            .parse::<u64>()
            .map_or_else(|_| Value::String(value.to_owned()), Value::from),
        _ => Value::String(value.to_owned()),
    }
}

/// Puts every unexpired record's value into `rendered` (see the module
/// docs); returns the holds that changed something.
pub fn apply_holds(
    rendered: &mut Rendered,
    records: &[ScaleRecord],
    today: &str,
) -> Result<Vec<Hold>, RenderError> {
    let mut holds = Vec::new();
    for r in records.iter().filter(|r| r.is_active(today)) {
        let hold = |rendered: String| Hold {
            stack: r.stack,
            logical_id: r.logical_id.clone(),
            property: r.property.clone(),
            rendered,
            held: r.value.clone(),
            by: r.by.clone(),
            at: r.at.clone(),
            reason: r.reason.clone(),
            until: r.until.clone(),
        };
        if r.stack == StackId::Search && r.logical_id == ACCOUNT_SETTINGS {
            let Ok(v) = r.value.parse::<u32>() else {
                continue;
            };
            let os = &mut rendered.sizing.opensearch;
            let slot = match r.property.as_str() {
                "/capacityLimits/maxSearchCapacityInOCU" => &mut os.search_ocu_max,
                "/capacityLimits/maxIndexingCapacityInOCU" => &mut os.indexing_ocu_max,
                _ => continue,
            };
            if *slot != v {
                holds.push(hold(slot.to_string()));
                *slot = v;
            }
            continue;
        }
        // Top-level properties only: the ones drift detection and the
        // live layer name as `/Name`.
        let Some(name) = r.property.strip_prefix('/').filter(|n| !n.contains('/')) else {
            continue;
        };
        let Some(s) = rendered.stacks.iter().find(|s| s.id == r.stack) else {
            continue;
        };
        let Some(current) = live::property(&s.template.to_value(), &r.logical_id, name).cloned()
        else {
            continue;
        };
        let value = typed(&r.value, &current);
        if value == current {
            continue;
        }
        rendered.replace_property(r.stack, &r.logical_id, name, value)?;
        holds.push(hold(show(&current)));
    }
    suspend_schedules(rendered, records, today, &mut holds)?;
    Ok(holds)
}

/// The property a scale hold sets on a scheduled scalable target.
pub const SCHEDULE_SUSPENDED: &str = "/SuspendedState/ScheduledScalingSuspended";

/// An active record of a scheduled pool (service, intent) takes precedence
/// over the scheduled minimum: the rendering suspends scheduled scaling
/// while the record stands ("For ScheduledScalingSuspended, while a
/// suspension is in effect, all scaling activities that involve scheduled
/// actions are suspended": Application Auto Scaling API Reference,
/// RegisterScalableTarget), as `mangactl scale` did live, so that neither
/// the next hour's action nor the next apply undoes the on-call change.
/// Once the record expires the rendering resumes the schedule.
fn suspend_schedules(
    rendered: &mut Rendered,
    records: &[ScaleRecord],
    today: &str,
    holds: &mut Vec<Hold>,
) -> Result<(), RenderError> {
    for stack in [StackId::Service, StackId::Intent] {
        let Some(r) = records
            .iter()
            .find(|r| r.stack == stack && r.is_active(today))
        else {
            continue;
        };
        let Some(s) = rendered.stacks.iter().find(|s| s.id == stack) else {
            continue;
        };
        let running = live::property(&s.template.to_value(), "ScalableTarget", "SuspendedState")
            .and_then(|v| v.get("ScheduledScalingSuspended"))
            .and_then(Value::as_bool)
            == Some(false);
        if !running {
            continue;
        }
        rendered.replace_property(
            stack,
            "ScalableTarget",
            "SuspendedState",
            serde_json::json!({ "ScheduledScalingSuspended": true }),
        )?;
        holds.push(Hold {
            stack,
            logical_id: "ScalableTarget".into(),
            property: SCHEDULE_SUSPENDED.into(),
            rendered: "false".into(),
            held: "true".into(),
            by: r.by.clone(),
            at: r.at.clone(),
            reason: format!(
                "{} (scale record of {}{})",
                r.reason, r.logical_id, r.property
            ),
            until: r.until.clone(),
        });
    }
    Ok(())
}

/// What the apply does to a live value that differs from the rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// The change set sets the property: the live value is overwritten.
    Overwritten,
    /// A drift-aware change set resets it to the rendered value.
    Reverted,
    /// Left as it is (the change set does not touch it).
    Kept,
}

#[derive(Debug, Clone, Serialize)]
pub struct LiveDrift {
    pub component: Component,
    pub logical_id: String,
    pub property: String,
    pub live: String,
    /// What the rendering (with holds) says.
    pub rendered: String,
    pub fate: Fate,
    pub why: &'static str,
}

/// The live drift of each stack `plan` covers and what its apply does to
/// it (see the module docs). `rendered` is the rendering with holds.
pub async fn live_drift(
    cfn: &dyn CloudFormation,
    live: LiveReaders<'_>,
    rendered: &Rendered,
    plan: &Plan,
    revert_drift: bool,
) -> Result<Vec<(StackId, Vec<LiveDrift>)>, CfnError> {
    let mut out = Vec::new();
    for p in &plan.stacks {
        let (Some(existing), Some(component)) = (&p.existing, Component::of_stack(p.stack)) else {
            continue;
        };
        let Some(s) = rendered.stacks.iter().find(|s| s.id == p.stack) else {
            continue;
        };
        let check = live::check(live, rendered, component, existing).await;
        let drifted: Vec<_> = check
            .items
            .into_iter()
            .filter(|i| i.status == ItemStatus::Drifted)
            .collect();
        if drifted.is_empty() {
            continue;
        }
        let deployed: Option<Value> = cfn
            .template(&s.stack_name)
            .await?
            .and_then(|t| serde_json::from_str(&t).ok());
        let template = s.template.to_value();
        let changes = p.has_changes();
        let mut list = Vec::new();
        for i in drifted {
            let name = i.property.trim_start_matches('/');
            let in_template = live::property(&template, &i.logical_id, name);
            let was = deployed
                .as_ref()
                .and_then(|d| live::property(d, &i.logical_id, name));
            let (fate, why) = match (component, in_template) {
                (Component::Search, _) => (
                    Fate::Overwritten,
                    "apply sets the account's limits to the plan's",
                ),
                (_, Some(now)) if changes && Some(now) != was => {
                    (Fate::Overwritten, "the change set sets this property")
                }
                (_, Some(_)) if changes && revert_drift => {
                    (Fate::Reverted, "--revert-drift resets drifted properties")
                }
                (_, Some(_)) => (
                    Fate::Kept,
                    "the change set does not change this property (--revert-drift would reset it)",
                ),
                (_, None) => (Fate::Kept, "no template sets it; apply never touches it"),
            };
            list.push(LiveDrift {
                component,
                logical_id: i.logical_id,
                property: i.property,
                live: i.actual.unwrap_or_else(|| "unknown".into()),
                rendered: i.allowed.to_string(),
                fate,
                why,
            });
        }
        out.push((p.stack, list));
    }
    Ok(out)
}

/// The lines `plan` and `apply` print for holds and live drift.
pub fn render_text(holds: &[Hold], drift: &[(StackId, Vec<LiveDrift>)]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if !holds.is_empty() {
        let _ = writeln!(out, "\nHeld by scale records (apply keeps them):");
        for h in holds {
            let _ = writeln!(
                out,
                "  = {}/{}{} stays {} (renders {}): scaled by {} at {} ({}), until {}",
                h.stack,
                h.logical_id,
                h.property,
                h.held,
                h.rendered,
                h.by,
                h.at,
                h.reason,
                h.until
            );
        }
    }
    if drift.iter().any(|(_, l)| !l.is_empty()) {
        let _ = writeln!(out, "\nLive capacity that differs from the rendering:");
        for (stack, list) in drift {
            for d in list {
                let verb = match d.fate {
                    Fate::Overwritten => "OVERWRITTEN by this apply",
                    Fate::Reverted => "REVERTED by this apply",
                    Fate::Kept => "left as it is",
                };
                let _ = writeln!(
                    out,
                    "  {} {stack}/{}{}: live {}, renders {}: {verb} ({})",
                    if d.fate == Fate::Kept { "~" } else { "!" },
                    d.logical_id,
                    d.property,
                    d.live,
                    d.rendered,
                    d.why
                );
            }
        }
    }
    out
}
