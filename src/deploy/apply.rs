//! `apply`: plan (`plan.rs`), confirm (`confirm.rs`), then execute the
//! change sets along the deploy graph, independent stacks in parallel (up
//! to `concurrency`), with live progress (`progress.rs`) and each operation
//! followed by `wait.rs`.
//!
//! A stack starts when every stack it imports from (among those applied)
//! has succeeded; when one fails, the stacks that depend on it are skipped
//! and reported, the others carry on. Failures are reported per resource
//! with CloudFormation's reason.
//!
//! Stuck stacks are recovered as planned (the plan showed it, the
//! confirmation covered it): ROLLBACK_COMPLETE is deleted and created again,
//! UPDATE_ROLLBACK_FAILED gets continue-update-rollback before its update.
//! Change sets that could only be made during apply (after dependencies or
//! a recovery) are refused if they would lose data, since nobody confirmed
//! that.
//!
//! OpenSearch Serverless capacity limits are account settings, not stack
//! resources (`capacity.rs`): with [`ApplyOptions::search_capacity`] set,
//! the current limits are read before the confirmation (a pending change is
//! printed with the plan and counts as a change), and set after the search
//! stack has deployed (or was already up to date).
//!
//! Ctrl-C (the `interrupt` channel counts presses; the CLI exits on the
//! second): no new stacks start, updates in progress are cancelled
//! (CloudFormation rolls them back), and stacks being created for the first
//! time are deleted once their create settles if the user says so.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use stacks::render::Rendered;
use stacks::stacks::StackId;
use tokio::sync::watch;

use super::capacity::{self, CapacityChange, CapacityOutcome};
use super::changeset::{self, ChangeSetOutcome};
use super::confirm::{self, Decision, Prompter};
use super::holds::{self, Hold};
use super::live::LiveReaders;
use super::plan::{self, Plan, PlanAction, PlanOptions, StackPlan};
use super::progress::Progress;
use super::references;
use super::report;
use super::wait::{Failure, OnInterrupt, Watcher};
use super::{Backoff, DeployError};
use crate::aws::cloudformation::{ChangeSetKind, StackStatus};
use crate::aws::{Capacity, CfnError, CloudFormation, SearchCapacity};

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub only: Option<StackId>,
    pub yes: bool,
    /// The environment name, typed in advance (prod data loss).
    pub confirm_env: Option<String>,
    pub concurrency: usize,
    pub backoff: Backoff,
    /// Where to set the OpenSearch Serverless capacity limits. `None`
    /// leaves them alone (`--skip-search-capacity`, e.g. against an
    /// emulator without OpenSearch Serverless).
    pub search_capacity: Option<Arc<dyn SearchCapacity>>,
    /// Where to read live capacity, so the plan shows which live drift
    /// the apply overwrites (`holds.rs`); `None` skips that.
    pub capacity: Option<Arc<dyn Capacity>>,
    /// The scale records' holds already put into `rendered`, printed with
    /// the plan.
    pub holds: Vec<Hold>,
    /// Drift-aware change sets (`--revert-drift`).
    pub revert_drift: bool,
}

/// How the whole apply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyStatus {
    /// Nothing to change.
    NoChanges,
    /// Every stack reached its target.
    Applied,
    /// The user said no; nothing was changed.
    Declined,
    /// A stack is busy or cannot be planned; nothing was changed.
    Blocked,
    /// At least one stack failed.
    Failed,
    /// Ctrl-C: stopped early.
    Interrupted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum StackResult {
    Unchanged,
    Done {
        status: String,
    },
    Failed {
        status: String,
        failures: Vec<Failure>,
    },
    /// A stack it depends on did not deploy.
    Skipped {
        because: StackId,
    },
    /// Refused during apply (e.g. a late change set that would lose data).
    Refused {
        reason: String,
    },
    /// Ctrl-C: rolled back, deleted, or never started.
    Interrupted {
        detail: String,
    },
}

impl StackResult {
    pub(super) fn ok(&self) -> bool {
        matches!(self, StackResult::Unchanged | StackResult::Done { .. })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    pub status: ApplyStatus,
    pub plan: Plan,
    pub results: BTreeMap<StackId, StackResult>,
    /// Outputs of every selected stack that exists afterwards.
    pub outputs: BTreeMap<StackId, BTreeMap<String, String>>,
    /// The OpenSearch Serverless capacity limits; `None` when not managed
    /// (no [`ApplyOptions::search_capacity`], or the search stack not selected).
    pub search_capacity: Option<CapacityOutcome>,
}

struct ApplyRun<'a> {
    cfn: &'a dyn CloudFormation,
    rendered: &'a Rendered,
    progress: &'a Progress,
    opts: &'a ApplyOptions,
    token: String,
    change_set_name: String,
    interrupt: watch::Receiver<u32>,
    /// Ctrl-C answered "delete the stacks being created".
    delete_created: AtomicBool,
}

pub async fn apply(
    cfn: &dyn CloudFormation,
    rendered: &Rendered,
    opts: &ApplyOptions,
    progress: &Progress,
    prompter: &dyn Prompter,
    mut interrupt: watch::Receiver<u32>,
) -> Result<ApplyReport, DeployError> {
    let change_set_name = super::change_set_name("apply");
    let popts = PlanOptions {
        only: opts.only,
        change_set_name: change_set_name.clone(),
        concurrency: opts.concurrency,
        backoff: opts.backoff,
        revert_drift: opts.revert_drift,
    };
    let mut plan = plan::plan(cfn, rendered, &popts).await?;
    progress.text(&plan::render_text(&plan));
    plan.live_drift = match &opts.capacity {
        Some(capacity) => {
            let readers = LiveReaders {
                capacity: capacity.as_ref(),
                search: opts.search_capacity.as_deref(),
                now: crate::deploy::live::unix_now(),
            };
            match holds::live_drift(cfn, readers, rendered, &plan, opts.revert_drift).await {
                Ok(d) => d,
                Err(e) => {
                    plan::discard(cfn, &plan).await;
                    return Err(e.into());
                }
            }
        }
        None => Vec::new(),
    };
    plan.holds = opts.holds.clone();
    progress.text(&holds::render_text(&plan.holds, &plan.live_drift));
    let env = rendered.manifest.environment.clone();
    let report = |status, plan: Plan, results, outputs, search_capacity| ApplyReport {
        status,
        plan,
        results,
        outputs,
        search_capacity,
    };

    if !plan.blocked().is_empty() {
        plan::discard(cfn, &plan).await;
        let names: Vec<&str> = plan.blocked().iter().map(|s| s.stack.name()).collect();
        progress.text(&format!(
            "\nNothing applied: {} cannot be changed now (see above).\n",
            names.join(", ")
        ));
        return Ok(report(
            ApplyStatus::Blocked,
            plan,
            BTreeMap::new(),
            BTreeMap::new(),
            None,
        ));
    }
    let capacity = match search_capacity_change(opts, rendered).await {
        Ok(c) => c,
        Err(e) => {
            plan::discard(cfn, &plan).await;
            return Err(e.into());
        }
    };
    let capacity_pending = capacity.as_ref().is_some_and(CapacityChange::is_change);
    if let Some(c) = capacity.as_ref().filter(|c| c.is_change()) {
        progress.text(&format!(
            "\nsearch capacity (account setting, set after the search stack): {}\n",
            c.describe()
        ));
    }
    let unchanged_capacity =
        |c: &Option<CapacityChange>| c.map(|c| CapacityOutcome::Unchanged { limits: c.before });
    if !plan.has_changes() && !capacity_pending {
        let outputs = plan::outputs(cfn, rendered, opts.only).await?;
        progress.text("\nNo changes. The stacks match the environment file.\n");
        return Ok(report(
            ApplyStatus::NoChanges,
            plan,
            BTreeMap::new(),
            outputs,
            unchanged_capacity(&capacity),
        ));
    }

    let prod_loss = sizing::is_production(&rendered.manifest.environment) && plan.data_loss();
    let decision = match confirm::confirm(
        "apply",
        &env,
        opts.yes,
        prod_loss,
        opts.confirm_env.as_deref(),
        prompter,
        progress,
    ) {
        Ok(d) => d,
        Err(e) => {
            plan::discard(cfn, &plan).await;
            return Err(e);
        }
    };
    if decision == Decision::Declined || *interrupt.borrow_and_update() > 0 {
        plan::discard(cfn, &plan).await;
        progress.text("Apply cancelled; nothing was changed.\n");
        let status = if decision == Decision::Declined {
            ApplyStatus::Declined
        } else {
            ApplyStatus::Interrupted
        };
        return Ok(report(status, plan, BTreeMap::new(), BTreeMap::new(), None));
    }

    let ctx = ApplyRun {
        cfn,
        rendered,
        progress,
        opts,
        token: super::client_token("apply"),
        change_set_name,
        interrupt: interrupt.clone(),
        delete_created: AtomicBool::new(false),
    };
    let started = Instant::now();
    let (results, interrupted) = execute(&ctx, &plan, prompter, &mut interrupt).await;
    let search_capacity = match (capacity, opts.search_capacity.as_deref()) {
        (Some(c), Some(aoss)) if c.is_change() => {
            let search = results.get(&StackId::Search);
            let outcome = if interrupted || !search.is_some_and(StackResult::ok) {
                let reason = if interrupted {
                    "interrupted (Ctrl-C)"
                } else {
                    "the search stack did not deploy"
                };
                progress.text(&format!(
                    "search capacity not changed ({reason}): {}\n",
                    c.describe()
                ));
                CapacityOutcome::NotApplied {
                    reason: reason.into(),
                }
            } else {
                let (outcome, line) = capacity::set(aoss, &c).await;
                progress.text(&line);
                outcome
            };
            Some(outcome)
        }
        (other, _) => unchanged_capacity(&other),
    };

    let capacity_failed = matches!(search_capacity, Some(CapacityOutcome::Failed { .. }));
    let status = if interrupted {
        ApplyStatus::Interrupted
    } else if results.values().all(StackResult::ok) && !capacity_failed {
        ApplyStatus::Applied
    } else {
        ApplyStatus::Failed
    };
    progress.text(&report::summary_text(&results, status, started.elapsed()));
    let outputs = plan::outputs(cfn, rendered, opts.only).await?;
    Ok(report(status, plan, results, outputs, search_capacity))
}

/// The pending capacity change, when this apply manages the limits and
/// covers the search stack (`GetAccountSettings` fails the apply before
/// anything is changed, naming the operation).
async fn search_capacity_change(
    opts: &ApplyOptions,
    rendered: &Rendered,
) -> Result<Option<CapacityChange>, crate::aws::CapacityError> {
    let Some(aoss) = opts.search_capacity.as_deref() else {
        return Ok(None);
    };
    if !super::selected(rendered, opts.only).contains(&StackId::Search) {
        return Ok(None);
    }
    capacity::pending(aoss, &rendered.sizing).await.map(Some)
}

/// Runs the stacks along the graph. Returns each selected stack's result
/// and whether Ctrl-C stopped the run.
async fn execute(
    ctx: &ApplyRun<'_>,
    plan: &Plan,
    prompter: &dyn Prompter,
    interrupt: &mut watch::Receiver<u32>,
) -> (BTreeMap<StackId, StackResult>, bool) {
    let chosen: BTreeSet<StackId> = plan.stacks.iter().map(|s| s.stack).collect();
    let order = run_order(ctx.rendered, plan);
    let mut results: BTreeMap<StackId, StackResult> = BTreeMap::new();
    let mut waiting: Vec<&StackPlan> = Vec::new();
    for s in &plan.stacks {
        if s.has_changes() {
            waiting.push(s);
        } else {
            results.insert(s.stack, StackResult::Unchanged);
        }
    }
    let mut running = FuturesUnordered::new();
    let mut creating: BTreeSet<StackId> = BTreeSet::new();
    let mut interrupted = false;
    loop {
        let mut still = Vec::new();
        for s in waiting {
            let deps: Vec<StackId> = order
                .get(&s.stack)
                .map(|d| d.iter().copied().filter(|d| chosen.contains(d)).collect())
                .unwrap_or_default();
            if let Some(bad) = deps
                .iter()
                .find(|d| results.get(d).is_some_and(|r| !r.ok()))
            {
                ctx.progress
                    .finish(s.stack, false, &format!("skipped: {bad} did not deploy"));
                results.insert(s.stack, StackResult::Skipped { because: *bad });
            } else if interrupted {
                results.insert(
                    s.stack,
                    StackResult::Interrupted {
                        detail: "not started (Ctrl-C)".into(),
                    },
                );
            } else if running.len() < ctx.opts.concurrency.max(1)
                && deps
                    .iter()
                    .all(|d| results.get(d).is_some_and(StackResult::ok))
            {
                if s.action.creates() {
                    creating.insert(s.stack);
                }
                running.push(run_stack(ctx, s));
            } else {
                still.push(s);
            }
        }
        waiting = still;
        if running.is_empty() {
            // Nothing runs and nothing can start: done (or all blocked by failures, already recorded).
            for s in waiting {
                results.entry(s.stack).or_insert(StackResult::Interrupted {
                    detail: "not started".into(),
                });
            }
            break;
        }
        tokio::select! {
            Some((id, result)) = running.next() => {
                creating.remove(&id);
                results.insert(id, result);
            }
            changed = interrupt.changed(), if !interrupted => {
                if changed.is_err() {
                    // The sender is gone; nobody can interrupt. Keep going
                    // without listening.
                    interrupted = false;
                    let (_tx, rx) = watch::channel(0);
                    *interrupt = rx;
                    continue;
                }
                interrupted = true;
                ctx.progress.text("\nCtrl-C: no further stacks start; updates in progress are cancelled and roll back. Ctrl-C again exits at once.\n");
                if !creating.is_empty() {
                    let names: Vec<&str> = creating.iter().map(|s| s.name()).collect();
                    let question = format!(
                        "Being created for the first time: {}. Delete them once their create finishes?",
                        names.join(", ")
                    );
                    if prompter.interactive() && confirm::yes_no(prompter, ctx.progress, &question) {
                        ctx.delete_created.store(true, Ordering::SeqCst);
                    } else {
                        ctx.progress.text(&format!(
                            "Stacks being created are left to finish: {}. Remove them with `mangactl destroy --env {} --stack NAME`.\n",
                            names.join(", "),
                            ctx.rendered.manifest.environment
                        ));
                    }
                }
            }
        }
    }
    (results, interrupted)
}

/// What each stack waits for: the producers whose outputs it reads,
/// except a producer deployed before references became parameters
/// (`legacy_exports`): CloudFormation refuses to remove an export another
/// stack still imports, so such a producer waits for its consumers instead,
/// which read its current outputs (same keys) and stop importing first.
fn run_order(rendered: &Rendered, plan: &Plan) -> BTreeMap<StackId, BTreeSet<StackId>> {
    let legacy: BTreeSet<StackId> = plan
        .stacks
        .iter()
        .filter(|s| s.legacy_exports && s.has_changes())
        .map(|s| s.stack)
        .collect();
    let mut order: BTreeMap<StackId, BTreeSet<StackId>> = BTreeMap::new();
    for (consumer, producers) in &rendered.graph.depends_on {
        for p in producers {
            if legacy.contains(p) {
                order.entry(*p).or_default().insert(*consumer);
            } else {
                order.entry(*consumer).or_default().insert(*p);
            }
        }
    }
    order
}

async fn run_stack(ctx: &ApplyRun<'_>, s: &StackPlan) -> (StackId, StackResult) {
    let result = match run_stack_inner(ctx, s).await {
        Ok(r) => r,
        Err(e) => {
            ctx.progress.finish(s.stack, false, &format!("error: {e}"));
            StackResult::Failed {
                status: "ERROR".into(),
                failures: vec![Failure::of_call(&s.stack_name, &e)],
            }
        }
    };
    (s.stack, result)
}

async fn run_stack_inner(ctx: &ApplyRun<'_>, s: &StackPlan) -> Result<StackResult, CfnError> {
    let id = s.stack;
    let mut created = s.action.creates();
    // An unchanged stack's plan-time change set is the failed "no changes"
    // one: nothing to execute.
    let mut change_set: Option<Result<String, String>> = match s.action {
        PlanAction::Unchanged => None,
        _ => s.change_set_id.clone().map(Ok),
    };
    let mut followed = false;
    match &s.action {
        PlanAction::Recreate { status } => {
            ctx.progress.start(
                id,
                &format!("deleting the {status} stack before creating it again"),
            );
            let end = operation(
                ctx,
                id,
                &s.stack_name,
                OnInterrupt::Wait,
                |cfn, name, token| async move { cfn.delete_stack(&name, &token).await },
            )
            .await?;
            if end.status.as_str() != "DELETE_COMPLETE" {
                return Ok(failed(ctx, id, &end.status, end.failures()));
            }
            change_set = late_change_set(ctx, s, ChangeSetKind::Create).await?;
        }
        PlanAction::ContinueRollback => {
            ctx.progress.start(
                id,
                "continuing the failed rollback (continue-update-rollback)",
            );
            let end = operation(
                ctx,
                id,
                &s.stack_name,
                OnInterrupt::Wait,
                |cfn, name, token| async move { cfn.continue_update_rollback(&name, &token).await },
            )
            .await?;
            if end.status.as_str() != "UPDATE_ROLLBACK_COMPLETE" {
                return Ok(failed(ctx, id, &end.status, end.failures()));
            }
            ctx.progress
                .note(id, "rollback complete; planning the update");
            change_set = late_change_set(ctx, s, ChangeSetKind::Update).await?;
        }
        PlanAction::CreateAfter { .. } => {
            change_set = late_change_set(ctx, s, ChangeSetKind::Create).await?
        }
        PlanAction::UpdateAfter { .. } => {
            change_set = late_change_set(ctx, s, ChangeSetKind::Update).await?
        }
        PlanAction::Busy { .. } | PlanAction::Error { .. } => {
            return Ok(StackResult::Refused {
                reason: "blocked at plan time".into(),
            });
        }
        PlanAction::Update if s.release_scaling => {
            if let Some(Ok(planned)) = &change_set {
                ctx.cfn.delete_change_set(&s.stack_name, planned).await?;
            }
            if let Some(r) = release_scaling(ctx, s).await? {
                return Ok(r);
            }
            followed = true;
            change_set = late_change_set(ctx, s, ChangeSetKind::Update).await?;
        }
        PlanAction::Unchanged | PlanAction::Create | PlanAction::Update => {
            // Producers that ran before this stack may have changed the
            // outputs its parameters carry: then the planned change set is
            // stale and a new one is made with the current values.
            let now = references::resolve(ctx.cfn, ctx.rendered, id).await?;
            if now.missing.is_empty() && now.values != s.parameters {
                if let Some(Ok(stale)) = &change_set {
                    ctx.cfn.delete_change_set(&s.stack_name, stale).await?;
                }
                let changed: Vec<&str> = now
                    .values
                    .iter()
                    .filter(|(k, v)| s.parameters.get(*k) != Some(*v))
                    .map(|(k, _)| k.as_str())
                    .collect();
                ctx.progress.note(
                    id,
                    &format!(
                        "{} changed with {}; planning it again",
                        changed.join(", "),
                        if changed.len() == 1 {
                            "its producer"
                        } else {
                            "their producers"
                        }
                    ),
                );
                followed = true;
                let kind = if created {
                    ChangeSetKind::Create
                } else {
                    ChangeSetKind::Update
                };
                change_set = late_change_set(ctx, s, kind).await?;
            }
        }
    }
    let late = followed
        || matches!(
            s.action,
            PlanAction::CreateAfter { .. }
                | PlanAction::UpdateAfter { .. }
                | PlanAction::Recreate { .. }
                | PlanAction::ContinueRollback
        );
    let mut status = None;
    match change_set {
        Some(Err(reason)) => {
            ctx.progress
                .finish(id, false, &format!("refused: {reason}"));
            return Ok(StackResult::Refused { reason });
        }
        Some(Ok(cs)) => {
            let verb = if created { "creating" } else { "updating" };
            let what = if late { "" } else { " as planned" };
            let on_interrupt = if created {
                OnInterrupt::Wait
            } else {
                OnInterrupt::CancelUpdate
            };
            ctx.progress.start(
                id,
                &format!("{verb}{what} (change set {})", ctx.change_set_name),
            );
            let end =
                operation(
                    ctx,
                    id,
                    &s.stack_name,
                    on_interrupt,
                    move |cfn, name, token| async move {
                        cfn.execute_change_set(&name, &cs, &token).await
                    },
                )
                .await?;
            if !end.status.is_success() {
                if end.interrupted && !created {
                    ctx.progress
                        .finish(id, false, &format!("cancelled: {}", end.status));
                    return Ok(StackResult::Interrupted {
                        detail: format!("update cancelled, stack is {}", end.status),
                    });
                }
                let r = failed(ctx, id, &end.status, end.failures());
                if created && ctx.delete_created.load(Ordering::SeqCst) {
                    delete_after_interrupt(ctx, id, &s.stack_name).await?;
                    return Ok(StackResult::Interrupted {
                        detail: format!("create ended {}; deleted after Ctrl-C", end.status),
                    });
                }
                return Ok(r);
            }
            if created && ctx.delete_created.load(Ordering::SeqCst) {
                delete_after_interrupt(ctx, id, &s.stack_name).await?;
                return Ok(StackResult::Interrupted {
                    detail: "created, then deleted after Ctrl-C".into(),
                });
            }
            status = Some(end.status.to_string());
        }
        None => {
            // Planned without changes (or the late change set was empty).
            created = false;
        }
    }
    if s.enable_termination_protection {
        ctx.cfn
            .set_termination_protection(&s.stack_name, true)
            .await?;
        ctx.progress.note(id, "termination protection on");
    }
    if id == StackId::Service && created {
        start_at_sized_count(ctx).await?;
    }
    let status = status.unwrap_or_else(|| "unchanged".into());
    ctx.progress.finish(id, true, &status);
    Ok(if status == "unchanged" && !created {
        StackResult::Unchanged
    } else {
        StackResult::Done { status }
    })
}

/// The order SageMaker needs for an instance-type change of an autoscaled
/// variant (`StackPlan::release_scaling`): "If the update would change the
/// instance type for any model that is a target for auto scaling, the
/// update fails ... Before you update the endpoint, delete any scaling
/// policies configured for it and deregister the variant as a scalable
/// target ... After you update the endpoint, you can register the updated
/// variant as a scalable target and attach a scaling policy" (SageMaker
/// Developer Guide, "Update endpoints that use auto scaling").
/// Through CloudFormation: first the deployed template without its scaling
/// resources (deleting them deregisters the target and its policy), then
/// the planned update, which creates them again. Returns a result when the
/// first step did not succeed.
async fn release_scaling(
    ctx: &ApplyRun<'_>,
    s: &StackPlan,
) -> Result<Option<StackResult>, CfnError> {
    let id = s.stack;
    let Some(existing) = &s.existing else {
        return Ok(None);
    };
    let Some(mut template) = ctx
        .cfn
        .template(&s.stack_name)
        .await?
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    else {
        return Ok(None);
    };
    let scaling = |r: &serde_json::Value| {
        r.get("Type")
            .and_then(|t| t.as_str())
            .is_some_and(|t| t.starts_with("AWS::ApplicationAutoScaling::"))
    };
    let Some(resources) = template
        .get_mut("Resources")
        .and_then(|r| r.as_object_mut())
    else {
        return Ok(None);
    };
    if !resources.values().any(scaling) {
        return Ok(None);
    }
    resources.retain(|_, r| !scaling(r));
    ctx.progress.note(
        id,
        "the endpoint's instance type changes: releasing its autoscaling first (SageMaker refuses the change on a scalable target)",
    );
    let Some(rs) = ctx.rendered.stacks.iter().find(|r| r.id == id) else {
        return Ok(None);
    };
    let mut request = changeset::request(
        ctx.rendered,
        rs,
        ChangeSetKind::Update,
        &format!("{}-release", ctx.change_set_name),
        &existing.parameters,
        false,
    );
    request.template_body = template.to_string();
    let cs_id = ctx.cfn.create_change_set(&request).await?;
    let cs = changeset::wait(ctx.cfn, &s.stack_name, &cs_id, ctx.opts.backoff).await?;
    if !cs.is_ready() {
        let reason = cs.status_reason.unwrap_or_else(|| cs.status.clone());
        ctx.progress
            .finish(id, false, &format!("refused: {reason}"));
        return Ok(Some(StackResult::Refused {
            reason: format!("releasing the endpoint's autoscaling: {reason}"),
        }));
    }
    let end = operation(
        ctx,
        id,
        &s.stack_name,
        OnInterrupt::CancelUpdate,
        move |cfn, name, token| async move { cfn.execute_change_set(&name, &cs_id, &token).await },
    )
    .await?;
    if !end.status.is_success() {
        return Ok(Some(failed(ctx, id, &end.status, end.failures())));
    }
    Ok(None)
}

/// The service template sets no `DesiredCount` (so no update resets the
/// autoscaler's count), and CloudFormation creates such a service at 1:
/// right after the first create, set the sized count, inside the scalable
/// target's bounds (RegisterScalableTarget may already have raised it to
/// the minimum).
async fn start_at_sized_count(ctx: &ApplyRun<'_>) -> Result<(), CfnError> {
    let Some(capacity) = &ctx.opts.capacity else {
        return Ok(());
    };
    let Some(s) = ctx
        .rendered
        .stacks
        .iter()
        .find(|s| s.id == StackId::Service)
    else {
        return Ok(());
    };
    let Some(stack) = ctx.cfn.describe_stack(&s.stack_name).await? else {
        return Ok(());
    };
    let (Some(cluster), Some(service)) = (
        stack.output(stacks::stacks::service::CLUSTER_NAME.name),
        stack.output(stacks::stacks::service::SERVICE_NAME.name),
    ) else {
        return Ok(());
    };
    let plan = &ctx.rendered.sizing.service;
    let template = s.template.to_value();
    let bounds = super::live::rendered_bounds(&template, "ScalableTarget");
    let n = bounds.map_or(plan.tasks, |b| plan.tasks.clamp(b.min, b.max));
    capacity.set_desired_count(cluster, service, n).await?;
    ctx.progress.note(
        StackId::Service,
        &format!("desired count {n} (the sized count; CloudFormation starts a new service at 1)"),
    );
    Ok(())
}

fn failed(
    ctx: &ApplyRun<'_>,
    id: StackId,
    status: &StackStatus,
    failures: Vec<Failure>,
) -> StackResult {
    let first = failures
        .first()
        .map(|f| format!(": {} {}", f.logical_id, f.reason))
        .unwrap_or_default();
    ctx.progress.finish(id, false, &format!("{status}{first}"));
    StackResult::Failed {
        status: status.to_string(),
        failures,
    }
}

async fn delete_after_interrupt(
    ctx: &ApplyRun<'_>,
    id: StackId,
    name: &str,
) -> Result<(), CfnError> {
    ctx.progress.note(id, "deleting it (as asked after Ctrl-C)");
    let end = operation(
        ctx,
        id,
        name,
        OnInterrupt::Wait,
        |cfn, name, token| async move { cfn.delete_stack(&name, &token).await },
    )
    .await?;
    ctx.progress.finish(
        id,
        end.status.as_str() == "DELETE_COMPLETE",
        &end.status.to_string(),
    );
    Ok(())
}

/// Starts an operation with `call` and follows it to its end.
async fn operation<'c, F, Fut>(
    ctx: &'c ApplyRun<'_>,
    id: StackId,
    name: &str,
    on_interrupt: OnInterrupt,
    call: F,
) -> Result<super::wait::Finished, CfnError>
where
    F: FnOnce(&'c dyn CloudFormation, String, String) -> Fut,
    Fut: std::future::Future<Output = Result<(), CfnError>>,
{
    let mut watcher = Watcher::new(ctx.cfn, ctx.progress, id, name, ctx.opts.backoff).await?;
    call(ctx.cfn, name.to_owned(), ctx.token.clone()).await?;
    let mut interrupt = ctx.interrupt.clone();
    watcher
        .until_done(on_interrupt, &mut interrupt, &ctx.token)
        .await
}

/// A change set made during apply. `None`: nothing to change;
/// `Some(Err)`: refused (data loss nobody confirmed, or CloudFormation
/// rejected it).
async fn late_change_set(
    ctx: &ApplyRun<'_>,
    s: &StackPlan,
    kind: ChangeSetKind,
) -> Result<Option<Result<String, String>>, CfnError> {
    let Some(rs) = ctx.rendered.stacks.iter().find(|r| r.id == s.stack) else {
        return Ok(Some(Err("not rendered".into())));
    };
    let resolved = references::resolve(ctx.cfn, ctx.rendered, s.stack).await?;
    if let Some(m) = resolved.missing.first() {
        return Ok(Some(Err(format!(
            "its parameter {} needs output {} of {}, which does not exist",
            m.parameter, m.output, m.stack
        ))));
    }
    let outcome = changeset::create(
        ctx.cfn,
        ctx.rendered,
        rs,
        kind,
        &resolved.values,
        changeset::How {
            name: &ctx.change_set_name,
            backoff: ctx.opts.backoff,
            revert_drift: ctx.opts.revert_drift,
        },
    )
    .await?;
    let (id, changes) = match outcome {
        ChangeSetOutcome::Rejected { reason, .. } => return Ok(Some(Err(reason))),
        ChangeSetOutcome::NoChanges { id } => {
            if let Some(id) = id {
                ctx.cfn.delete_change_set(&s.stack_name, &id).await?;
            }
            return Ok(None);
        }
        ChangeSetOutcome::Ready { id, changes } => (id, changes),
    };
    ctx.progress.note(
        s.stack,
        &format!(
            "change set ready: {} change{}",
            changes.len(),
            if changes.len() == 1 { "" } else { "s" }
        ),
    );
    let losses: Vec<String> = changes
        .iter()
        .filter(|c| c.data_loss)
        .map(|c| format!("{} ({})", c.logical_id, c.resource_type))
        .collect();
    if !losses.is_empty() {
        ctx.cfn.delete_change_set(&s.stack_name, &id).await?;
        return Ok(Some(Err(format!(
            "its change set, made after the confirmation, would lose the data of {}; run `mangactl plan` and apply again to review it",
            losses.join(", ")
        ))));
    }
    Ok(Some(Ok(id)))
}
