//! `plan`: what `apply` would do to each stack, from CloudFormation's own
//! change sets.
//!
//! For each selected stack (in parallel): look at the stack's state, create a
//! CREATE or UPDATE change set, wait for it, and turn its resource changes
//! into [`PlannedChange`]s (add/modify/remove, replacement and its causing
//! properties, data-store replacement = data loss). An empty change set
//! ("didn't contain changes" / "No updates are to be performed") is a stack
//! without changes, never an error.
//!
//! Some stacks cannot get a change set now, and the plan says why:
//! - a stack whose imports do not exist yet (its dependencies are new or add
//!   exports in this run) is planned from its template and gets its change
//!   set during `apply`, after the dependencies;
//! - ROLLBACK_COMPLETE (failed first create) must be deleted and recreated;
//! - UPDATE_ROLLBACK_FAILED needs continue-update-rollback first;
//! - a stack with an operation in progress is busy: who (the operation's
//!   client request token) and since when come from its last event.
//!
//! [`discard`] deletes the change sets (and the REVIEW_IN_PROGRESS stack
//! shells CREATE change sets leave) that `plan` made; `apply.rs` executes
//! them instead.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::SystemTime;

use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use stacks::render::{Rendered, RenderedStack};
use stacks::stacks::StackId;

use super::changeset::{self, ChangeSetOutcome};
use super::holds::{Hold, LiveDrift};
use super::progress::timestamp;
use super::references::{self, Follow};
use super::{is_data_store, Backoff, DeployError};
use crate::aws::cloudformation::{Action, ChangeSetKind, Replacement, ResourceChange, Stack};
use crate::aws::{CfnError, CloudFormation};

#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub only: Option<StackId>,
    /// Name of every change set this run creates.
    pub change_set_name: String,
    /// Change sets created at once.
    pub concurrency: usize,
    pub backoff: Backoff,
    /// Drift-aware change sets (`--revert-drift`): updates also reset live
    /// drift to the template (`holds.rs`).
    pub revert_drift: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub environment: String,
    pub region: String,
    pub change_set_name: String,
    pub stacks: Vec<StackPlan>,
    pub summary: Summary,
    /// Rendered values scale records hold back (`holds.rs`; filled by the
    /// caller, which applied them to the rendering).
    pub holds: Vec<Hold>,
    /// Per stack, live capacity that differs from the rendering and what
    /// the apply does to it (`holds.rs`; filled by the caller).
    pub live_drift: Vec<(StackId, Vec<LiveDrift>)>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub add: usize,
    pub modify: usize,
    pub remove: usize,
    pub replace: usize,
    /// `stack/LogicalId` of data stores whose data the plan loses.
    pub data_loss: Vec<String>,
    pub stacks_changed: usize,
    pub stacks_unchanged: usize,
    pub stacks_blocked: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct StackPlan {
    pub stack: StackId,
    pub stack_name: String,
    /// The region the stack lives in (the edge stack: us-east-1).
    pub region: String,
    /// The stack's status before the plan (`null`: it does not exist).
    pub status: Option<String>,
    pub action: PlanAction,
    pub changes: Vec<PlannedChange>,
    /// Termination protection to turn on (never turned off by apply).
    pub enable_termination_protection: bool,
    #[serde(skip)]
    pub existing: Option<Stack>,
    /// The change set this run created, ready to execute.
    #[serde(skip)]
    pub change_set_id: Option<String>,
    /// This run's CREATE change set made a REVIEW_IN_PROGRESS stack shell.
    #[serde(skip)]
    pub created_shell: bool,
    /// The parameter values (references) this plan's change set was made
    /// with; apply compares them with the producers' outputs when the
    /// stack's turn comes.
    pub parameters: BTreeMap<String, String>,
    /// Parameters that follow producer outputs this run changes: the stack
    /// is updated after those producers, with their new values.
    pub follows: Vec<Follow>,
    /// The deployed stack still exports its outputs (deployed before
    /// references became parameters): apply updates the stacks that import
    /// them first, so the exports can go.
    pub legacy_exports: bool,
    /// The intent endpoint's instance type changes while it autoscales:
    /// apply releases its scaling resources first (`apply.rs`).
    pub release_scaling: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PlanAction {
    Unchanged,
    Create,
    Update,
    /// Change set created during apply, once `after` have deployed (this
    /// stack imports exports they create).
    CreateAfter {
        after: Vec<StackId>,
    },
    UpdateAfter {
        after: Vec<StackId>,
    },
    /// Failed first create (`status`): delete, then create again.
    Recreate {
        status: String,
    },
    /// UPDATE_ROLLBACK_FAILED: continue-update-rollback, then update.
    ContinueRollback,
    /// An operation is in progress; refused.
    Busy {
        status: String,
        since: String,
        by: String,
        reason: Option<String>,
    },
    /// The stack cannot be planned (CloudFormation's reason).
    Error {
        message: String,
    },
}

impl PlanAction {
    pub fn is_blocked(&self) -> bool {
        matches!(self, PlanAction::Busy { .. } | PlanAction::Error { .. })
    }

    /// The stack will be created (so the change set kind is CREATE).
    pub fn creates(&self) -> bool {
        matches!(
            self,
            PlanAction::Create | PlanAction::CreateAfter { .. } | PlanAction::Recreate { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedChange {
    pub action: Action,
    pub logical_id: String,
    pub physical_id: Option<String>,
    pub resource_type: String,
    pub replacement: Option<Replacement>,
    /// Properties whose change forces (or may force) the replacement.
    pub replacement_causes: Vec<String>,
    /// Properties and attributes that change.
    pub changed: Vec<String>,
    pub data_store: bool,
    /// The data store's data is lost (replaced, or deleted without retention).
    pub data_loss: bool,
    /// Removed from the stack but kept by its deletion policy.
    pub kept: bool,
    /// Drift-aware change sets: live drift this change resets,
    /// `path: live -> template`.
    pub reverts: Vec<String>,
}

impl StackPlan {
    pub fn has_changes(&self) -> bool {
        !matches!(
            self.action,
            PlanAction::Unchanged | PlanAction::Busy { .. } | PlanAction::Error { .. }
        ) || self.enable_termination_protection
            || (!self.follows.is_empty() && !self.action.is_blocked())
    }

    /// The producers whose changed outputs this stack follows.
    pub fn follows_stacks(&self) -> BTreeSet<StackId> {
        self.follows.iter().map(|f| f.stack).collect()
    }
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.stacks.iter().any(StackPlan::has_changes)
    }

    pub fn blocked(&self) -> Vec<&StackPlan> {
        self.stacks
            .iter()
            .filter(|s| s.action.is_blocked())
            .collect()
    }

    pub fn data_loss(&self) -> bool {
        !self.summary.data_loss.is_empty()
    }

    pub fn stack(&self, id: StackId) -> Option<&StackPlan> {
        self.stacks.iter().find(|s| s.stack == id)
    }
}

/// Builds the plan; the change sets it creates stay until [`discard`] or
/// execution.
pub async fn plan(
    cfn: &dyn CloudFormation,
    rendered: &Rendered,
    opts: &PlanOptions,
) -> Result<Plan, DeployError> {
    let ids = super::selected(rendered, opts.only);
    let chosen: BTreeSet<StackId> = ids.iter().copied().collect();
    let plans: Vec<Result<StackPlan, CfnError>> =
        stream::iter(rendered.stacks.iter().filter(|s| chosen.contains(&s.id)))
            .map(|s| plan_stack(cfn, rendered, s, &chosen, opts))
            .buffered(opts.concurrency.max(1))
            .collect()
            .await;
    let mut stacks = Vec::new();
    let mut first_error = None;
    for p in plans {
        match p {
            Ok(p) => stacks.push(p),
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    if first_error.is_none() {
        if let Err(e) = add_follows(cfn, rendered, &mut stacks).await {
            first_error = Some(e);
        }
    }
    let plan = Plan {
        environment: rendered.manifest.environment.clone(),
        region: rendered.manifest.region.clone(),
        change_set_name: opts.change_set_name.clone(),
        summary: summarize(&stacks),
        stacks,
        holds: Vec::new(),
        live_drift: Vec::new(),
    };
    if let Some(e) = first_error {
        // Do not leave this run's change sets behind when failing.
        discard(cfn, &plan).await;
        return Err(e.into());
    }
    Ok(plan)
}

fn summarize(stacks: &[StackPlan]) -> Summary {
    let mut s = Summary::default();
    for p in stacks {
        for c in &p.changes {
            match c.action {
                Action::Add | Action::Import => s.add += 1,
                Action::Remove => s.remove += 1,
                _ => s.modify += 1,
            }
            if matches!(
                c.replacement,
                Some(Replacement::True | Replacement::Conditional)
            ) {
                s.replace += 1;
            }
            if c.data_loss {
                s.data_loss.push(format!("{}/{}", p.stack, c.logical_id));
            }
        }
        if p.action.is_blocked() {
            s.stacks_blocked += 1;
        } else if p.has_changes() {
            s.stacks_changed += 1;
        } else {
            s.stacks_unchanged += 1;
        }
    }
    s
}

/// Every resource of a template as an addition (stacks planned without a change set).
fn template_additions(rendered: &Rendered, s: &RenderedStack) -> Vec<PlannedChange> {
    let value = s.template.to_value();
    let Some(resources) = value.get("Resources").and_then(|r| r.as_object()) else {
        return vec![];
    };
    resources
        .iter()
        .map(|(id, r)| {
            let ty = r
                .get("Type")
                .and_then(|t| t.as_str())
                .unwrap_or_default()
                .to_owned();
            PlannedChange {
                action: Action::Add,
                logical_id: id.clone(),
                physical_id: None,
                data_store: is_data_store(rendered, s.id, id, &ty),
                resource_type: ty,
                replacement: None,
                replacement_causes: vec![],
                changed: vec![],
                data_loss: false,
                kept: false,
                reverts: vec![],
            }
        })
        .collect()
}

/// One resource change of a change set, judged for data loss.
pub fn planned_change(rendered: &Rendered, id: StackId, c: &ResourceChange) -> PlannedChange {
    let data_store = is_data_store(rendered, id, &c.logical_id, &c.resource_type);
    let retained = rendered
        .manifest
        .stacks
        .get(&id)
        .is_some_and(|m| m.retained.contains_key(&c.logical_id));
    let replaced = c.action == Action::Modify
        && matches!(
            c.replacement,
            Some(Replacement::True | Replacement::Conditional)
        );
    let mut causes = Vec::new();
    let mut changed = Vec::new();
    for d in &c.details {
        let what = d
            .name
            .clone()
            .or_else(|| d.attribute.clone())
            .unwrap_or_else(|| "?".into());
        let what = match (d.change_source.as_deref(), &d.causing_entity) {
            (Some(src), Some(entity)) if src != "DirectModification" => {
                format!("{what} (from {entity})")
            }
            _ => what,
        };
        if matches!(
            d.requires_recreation.as_deref(),
            Some("Always" | "Conditionally")
        ) && !causes.contains(&what)
        {
            causes.push(what.clone());
        }
        if !changed.contains(&what) {
            changed.push(what);
        }
    }
    if changed.is_empty() {
        changed.clone_from(&c.scope);
    }
    let reverts = c
        .details
        .iter()
        .filter_map(|d| {
            Some(format!(
                "{}: live {} -> {}",
                d.path.as_deref().or(d.name.as_deref())?,
                d.live_value.as_deref()?,
                d.after_value.as_deref().unwrap_or("the template's value")
            ))
        })
        .collect();
    PlannedChange {
        action: c.action.clone(),
        logical_id: c.logical_id.clone(),
        physical_id: c.physical_id.clone(),
        resource_type: c.resource_type.clone(),
        replacement: c.replacement,
        replacement_causes: causes,
        changed,
        data_store,
        data_loss: data_store && (replaced || c.action == Action::Remove && !retained),
        kept: data_store && c.action == Action::Remove && retained,
        reverts,
    }
}

async fn plan_stack(
    cfn: &dyn CloudFormation,
    rendered: &Rendered,
    s: &RenderedStack,
    chosen: &BTreeSet<StackId>,
    opts: &PlanOptions,
) -> Result<StackPlan, CfnError> {
    let manifest = rendered.manifest.stacks.get(&s.id);
    let existing = cfn.describe_stack(&s.stack_name).await?;
    let status = existing.as_ref().map(|e| e.status.clone());
    let protect = manifest.is_some_and(|m| m.termination_protection)
        && !existing.as_ref().is_some_and(|e| e.termination_protection);
    let mut p = StackPlan {
        stack: s.id,
        stack_name: s.stack_name.clone(),
        region: manifest.map_or_else(|| rendered.manifest.region.clone(), |m| m.region.clone()),
        status: status.as_ref().map(ToString::to_string),
        action: PlanAction::Unchanged,
        changes: vec![],
        enable_termination_protection: protect,
        existing: existing.clone(),
        change_set_id: None,
        created_shell: false,
        parameters: BTreeMap::new(),
        follows: Vec::new(),
        legacy_exports: existing.as_ref().is_some_and(Stack::has_exports),
        release_scaling: false,
    };
    let exists = existing.as_ref().is_some_and(|e| !e.status.is_review());
    if let Some(st) = &status {
        let st_str = st.as_str();
        if st.is_in_progress() {
            p.action = busy(cfn, existing.as_ref(), st_str).await?;
            p.enable_termination_protection = false;
            return Ok(p);
        }
        if matches!(
            st_str,
            "ROLLBACK_COMPLETE" | "ROLLBACK_FAILED" | "CREATE_FAILED"
        ) {
            p.action = PlanAction::Recreate {
                status: st_str.to_owned(),
            };
            p.changes = template_additions(rendered, s);
            return Ok(p);
        }
        if st_str == "UPDATE_ROLLBACK_FAILED" {
            p.action = PlanAction::ContinueRollback;
            p.enable_termination_protection = protect;
            return Ok(p);
        }
        if st_str == "DELETE_FAILED" {
            p.action = PlanAction::Error {
                message: format!(
                    "the stack is DELETE_FAILED ({}); fix what kept it and run `mangactl destroy --stack {}`",
                    existing.as_ref().and_then(|e| e.status_reason.clone()).unwrap_or_else(|| "no reason given".into()),
                    s.id
                ),
            };
            return Ok(p);
        }
    }

    // Every reference needs its producer's output when the change set is made.
    let resolved = references::resolve(cfn, rendered, s.id).await?;
    if !resolved.not_looked_up.is_empty() {
        p.action = PlanAction::Error {
            message: format!(
                "its parameters {} are read from the region at deploy time and were not",
                resolved.not_looked_up.join(", ")
            ),
        };
        return Ok(p);
    }
    if !resolved.missing.is_empty() {
        let producers: BTreeSet<StackId> = resolved.missing.iter().map(|m| m.stack).collect();
        if producers.iter().all(|p| chosen.contains(p)) {
            let after: Vec<StackId> = producers.into_iter().collect();
            if exists {
                p.action = PlanAction::UpdateAfter { after };
            } else {
                p.action = PlanAction::CreateAfter { after };
                p.changes = template_additions(rendered, s);
                p.enable_termination_protection =
                    manifest.is_some_and(|m| m.termination_protection);
            }
        } else {
            let names: Vec<String> = resolved
                .missing
                .iter()
                .map(|m| format!("{}.{}", m.stack, m.output))
                .collect();
            p.action = PlanAction::Error {
                message: format!(
                    "references {}, which do not exist; apply {} first",
                    names.join(", "),
                    producers
                        .iter()
                        .map(|p| p.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
        }
        return Ok(p);
    }
    p.parameters = resolved.values;

    let kind = if exists {
        ChangeSetKind::Update
    } else {
        ChangeSetKind::Create
    };
    let outcome = changeset::create(
        cfn,
        rendered,
        s,
        kind,
        &p.parameters,
        changeset::How {
            name: &opts.change_set_name,
            backoff: opts.backoff,
            revert_drift: opts.revert_drift,
        },
    )
    .await?;
    p.created_shell = !exists && existing.is_none();
    match outcome {
        ChangeSetOutcome::Rejected { id, reason } => {
            p.created_shell &= id.is_some();
            p.change_set_id = id;
            p.action = PlanAction::Error { message: reason };
        }
        ChangeSetOutcome::NoChanges { id } => {
            p.created_shell &= id.is_some();
            p.change_set_id = id;
            p.action = PlanAction::Unchanged;
        }
        ChangeSetOutcome::Ready { id, changes } => {
            p.change_set_id = Some(id);
            p.action = if exists {
                PlanAction::Update
            } else {
                p.enable_termination_protection =
                    manifest.is_some_and(|m| m.termination_protection);
                PlanAction::Create
            };
            p.changes = changes;
            if exists && s.id == StackId::Intent {
                p.release_scaling = instance_type_changes(cfn, s).await?;
            }
        }
    }
    Ok(p)
}

/// Whether the deployed intent template autoscales a variant whose
/// instance type the rendering changes.
async fn instance_type_changes(
    cfn: &dyn CloudFormation,
    s: &RenderedStack,
) -> Result<bool, CfnError> {
    let Some(deployed) = cfn
        .template(&s.stack_name)
        .await?
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    else {
        return Ok(false);
    };
    let types = |t: &serde_json::Value| -> Vec<String> {
        t.get("Resources")
            .and_then(|r| r.as_object())
            .into_iter()
            .flat_map(|r| r.values())
            .filter(|r| {
                r.get("Type").and_then(|t| t.as_str()) == Some("AWS::SageMaker::EndpointConfig")
            })
            .flat_map(|r| {
                r.pointer("/Properties/ProductionVariants")
                    .and_then(|v| v.as_array())
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|v| {
                v.get("InstanceType")
                    .and_then(|t| t.as_str())
                    .map(str::to_owned)
            })
            .collect()
    };
    let autoscaled = deployed
        .get("Resources")
        .and_then(|r| r.as_object())
        .is_some_and(|r| {
            r.values().any(|r| {
                r.get("Type").and_then(|t| t.as_str())
                    == Some("AWS::ApplicationAutoScaling::ScalableTarget")
            })
        });
    Ok(autoscaled && types(&deployed) != types(&s.template.to_value()))
}

/// For each consumer, the parameters that follow a producer output this
/// plan changes (producers that are updated in this run).
async fn add_follows(
    cfn: &dyn CloudFormation,
    rendered: &Rendered,
    stacks: &mut [StackPlan],
) -> Result<(), CfnError> {
    let mut changed: BTreeMap<StackId, BTreeMap<String, &'static str>> = BTreeMap::new();
    for p in stacks.iter() {
        let updates = matches!(
            p.action,
            PlanAction::Update | PlanAction::UpdateAfter { .. } | PlanAction::ContinueRollback
        );
        if !updates {
            continue;
        }
        let touched: BTreeSet<String> = p
            .changes
            .iter()
            .filter(|c| {
                matches!(c.action, Action::Add | Action::Remove)
                    || matches!(
                        c.replacement,
                        Some(Replacement::True | Replacement::Conditional)
                    )
            })
            .map(|c| c.logical_id.clone())
            .collect();
        let outputs = references::changed_outputs(cfn, rendered, p.stack, &touched).await?;
        if !outputs.is_empty() {
            changed.insert(p.stack, outputs);
        }
    }
    for p in stacks.iter_mut() {
        // A stack created in this run (or recreated) reads its producers
        // when its change set is made; only existing stacks follow.
        if p.action.creates() || p.action.is_blocked() {
            continue;
        }
        let Some(m) = rendered.manifest.stacks.get(&p.stack) else {
            continue;
        };
        for (param, r) in &m.references {
            if let Some(how) = changed.get(&r.stack).and_then(|o| o.get(&r.output)) {
                p.follows.push(Follow {
                    parameter: param.clone(),
                    stack: r.stack,
                    output: r.output.clone(),
                    how,
                    used_by: references::users_of(rendered, p.stack, param),
                });
            }
        }
    }
    Ok(())
}

/// Who is doing what to a busy stack, from its last event.
pub(super) async fn busy(
    cfn: &dyn CloudFormation,
    stack: Option<&Stack>,
    status: &str,
) -> Result<PlanAction, CfnError> {
    let events = match stack {
        Some(s) => cfn.stack_events(&s.id).await?,
        None => vec![],
    };
    // The newest stack-level event marks the operation's start; any event
    // carries its token.
    let start = events
        .iter()
        .find(|e| e.is_stack_level() && e.status == status)
        .or_else(|| events.first());
    let by = events
        .iter()
        .find_map(|e| e.client_request_token.clone())
        .unwrap_or_else(|| "unknown (the operation carries no client request token)".into());
    let (since, reason) = match start {
        Some(e) => {
            let ago = SystemTime::now()
                .duration_since(e.timestamp)
                .map(super::human_duration)
                .unwrap_or_default();
            let since = if ago.is_empty() {
                timestamp(e.timestamp)
            } else {
                format!("{} ({ago} ago)", timestamp(e.timestamp))
            };
            (since, e.reason.clone())
        }
        None => ("unknown".into(), None),
    };
    Ok(PlanAction::Busy {
        status: status.to_owned(),
        since,
        by,
        reason,
    })
}

/// Deletes the change sets `plan` created, and the empty stack shells of
/// its CREATE change sets. Best effort: failures are logged.
pub async fn discard(cfn: &dyn CloudFormation, plan: &Plan) {
    for s in &plan.stacks {
        if let Some(id) = &s.change_set_id {
            if s.created_shell {
                // Deleting a REVIEW_IN_PROGRESS stack deletes its change sets too.
                if let Err(e) = cfn
                    .delete_stack(&s.stack_name, &super::client_token("plan"))
                    .await
                {
                    tracing::warn!(
                        "could not delete the empty stack {} that plan created: {e}",
                        s.stack_name
                    );
                }
            } else if let Err(e) = cfn.delete_change_set(&s.stack_name, id).await {
                tracing::warn!(
                    "could not delete change set {} of {}: {e}",
                    plan.change_set_name,
                    s.stack_name
                );
            }
        }
    }
}

fn symbol(a: &Action) -> &'static str {
    match a {
        Action::Add | Action::Import => "+",
        Action::Remove => "-",
        Action::Modify => "~",
        Action::Dynamic | Action::Other(_) => "?",
    }
}

/// The plan as people read it.
pub fn render_text(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Plan for `{}` ({}), {} stacks:",
        plan.environment,
        plan.region,
        plan.stacks.len()
    );
    for s in &plan.stacks {
        let adds = s
            .changes
            .iter()
            .filter(|c| matches!(c.action, Action::Add | Action::Import))
            .count();
        let summary = match &s.action {
            PlanAction::Unchanged if !s.follows.is_empty() => format!(
                "update after {} (its parameters follow their changed outputs; the change set is made once they are applied)",
                join(&s.follows_stacks().into_iter().collect::<Vec<_>>())
            ),
            PlanAction::Unchanged => "no changes".to_owned(),
            PlanAction::Create => format!("create ({adds} resources)"),
            PlanAction::Update => format!("update ({} changes)", s.changes.len()),
            PlanAction::CreateAfter { after } => {
                format!("create after {} ({adds} resources; its change set is made once they exist)", join(after))
            }
            PlanAction::UpdateAfter { after } => {
                format!("update after {} (it imports exports they add; changes are shown when its change set is made)", join(after))
            }
            PlanAction::Recreate { status } => {
                format!("{status} after a failed first create: DELETE and create again ({adds} resources)")
            }
            PlanAction::ContinueRollback => {
                "UPDATE_ROLLBACK_FAILED: continue-update-rollback first, then update (changes shown after the rollback)".to_owned()
            }
            PlanAction::Busy { status, since, by, reason } => {
                let why = reason.as_deref().map(|r| format!(", {r}")).unwrap_or_default();
                format!("BUSY: {status} since {since}, by {by}{why}; wait for it to finish")
            }
            PlanAction::Error { message } => format!("ERROR: {message}"),
        };
        let elsewhere = if s.region == plan.region {
            String::new()
        } else {
            format!(" (in {})", s.region)
        };
        let _ = writeln!(
            out,
            "\n{:<14} {}{elsewhere}  {summary}",
            s.stack.name(),
            s.stack_name
        );
        for c in &s.changes {
            let _ = writeln!(out, "  {}", change_line(c));
            for r in &c.reverts {
                let _ = writeln!(out, "      reverts live drift {r}");
            }
        }
        for f in &s.follows {
            let users = if f.used_by.is_empty() {
                String::new()
            } else {
                format!("; used by {}", f.used_by.join(", "))
            };
            let _ = writeln!(
                out,
                "  ~ parameter {} follows {}.{} ({} by this apply){users}",
                f.parameter, f.stack, f.output, f.how
            );
        }
        if s.enable_termination_protection {
            let _ = writeln!(out, "  termination protection: on");
        }
        if s.release_scaling {
            let _ = writeln!(
                out,
                "  the endpoint's instance type changes while it autoscales: apply first removes its scaling target and policy, then updates (SageMaker requires it)"
            );
        }
    }
    let losses: Vec<(&StackPlan, &PlannedChange)> = plan
        .stacks
        .iter()
        .flat_map(|s| {
            s.changes
                .iter()
                .filter(|c| c.data_loss)
                .map(move |c| (s, c))
        })
        .collect();
    if !losses.is_empty() {
        out.push('\n');
        for (s, c) in losses {
            let how = match (c.action.clone(), c.replacement) {
                (Action::Remove, _) => "will be DELETED".to_owned(),
                (_, Some(Replacement::Conditional)) => "MAY BE REPLACED".to_owned(),
                _ => "will be REPLACED".to_owned(),
            };
            let causes = if c.replacement_causes.is_empty() {
                String::new()
            } else {
                format!(" (caused by {})", c.replacement_causes.join(", "))
            };
            let _ = writeln!(
                out,
                "!! DATA LOSS: {}/{} ({}) {how}{causes}; the data it holds does not carry over.",
                s.stack, c.logical_id, c.resource_type
            );
        }
    }
    let sm = &plan.summary;
    let _ = writeln!(
        out,
        "\nPlan: {} to add, {} to change ({} replacement{}), {} to remove; {} stack{} to change, {} unchanged{}.",
        sm.add,
        sm.modify,
        sm.replace,
        if sm.replace == 1 { "" } else { "s" },
        sm.remove,
        sm.stacks_changed,
        if sm.stacks_changed == 1 { "" } else { "s" },
        sm.stacks_unchanged,
        if sm.stacks_blocked > 0 { format!(", {} blocked", sm.stacks_blocked) } else { String::new() },
    );
    out
}

fn change_line(c: &PlannedChange) -> String {
    let mut line = format!(
        "{} {:<36} {:<44}",
        symbol(&c.action),
        c.logical_id,
        c.resource_type
    );
    match c.replacement {
        Some(Replacement::True) => line.push_str(&format!(
            " REPLACE ({})",
            list_or_unknown(&c.replacement_causes)
        )),
        Some(Replacement::Conditional) => line.push_str(&format!(
            " MAY REPLACE ({})",
            list_or_unknown(&c.replacement_causes)
        )),
        _ if c.action == Action::Modify && !c.changed.is_empty() => {
            line.push_str(&format!(" ({})", c.changed.join(", ")))
        }
        _ => {}
    }
    if c.data_loss {
        line.push_str(" !! DATA LOSS");
    } else if c.kept {
        line.push_str(" (kept by its deletion policy)");
    }
    line.trim_end().to_owned()
}

fn list_or_unknown(v: &[String]) -> String {
    if v.is_empty() {
        "cause not reported".into()
    } else {
        v.join(", ")
    }
}

fn join(ids: &[StackId]) -> String {
    ids.iter().map(|i| i.name()).collect::<Vec<_>>().join(", ")
}

/// `stack name → output key → value` for the stacks that exist.
pub async fn outputs(
    cfn: &dyn CloudFormation,
    rendered: &Rendered,
    only: Option<StackId>,
) -> Result<BTreeMap<StackId, BTreeMap<String, String>>, CfnError> {
    let mut out = BTreeMap::new();
    for s in rendered
        .stacks
        .iter()
        .filter(|s| only.is_none_or(|o| o == s.id))
    {
        if let Some(stack) = cfn.describe_stack(&s.stack_name).await? {
            out.insert(
                s.id,
                stack
                    .outputs
                    .into_iter()
                    .map(|o| (o.key, o.value))
                    .collect(),
            );
        }
    }
    Ok(out)
}
