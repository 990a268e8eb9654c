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
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use stacks::render::Rendered;
use stacks::stacks::StackId;
use tokio::sync::watch;

use super::capacity::{self, CapacityChange, CapacityOutcome};
use super::confirm::{self, Decision, Prompter};
use super::plan::{self, Plan, PlanAction, PlanOptions, StackPlan};
use super::progress::Progress;
use super::wait::{Failure, OnInterrupt, Watcher};
use super::{human_duration, Backoff, DeployError};
use crate::aws::cloudformation::{ChangeSetKind, StackStatus};
use crate::aws::{CfnError, CloudFormation, SearchCapacity};

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

impl ApplyStatus {
    /// The README's exit code: 0 applied or nothing to do, 3 interrupted,
    /// 1 for everything else (declined, blocked, failed).
    pub fn exit_code(self) -> u8 {
        match self {
            ApplyStatus::NoChanges | ApplyStatus::Applied => 0,
            ApplyStatus::Interrupted => 3,
            ApplyStatus::Declined | ApplyStatus::Blocked | ApplyStatus::Failed => 1,
        }
    }
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
    fn ok(&self) -> bool {
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

struct Ctx<'a> {
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
    };
    let plan = plan::plan(cfn, rendered, &popts).await?;
    progress.text(&plan::render_text(&plan));
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

    let ctx = Ctx {
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

    let mut text = String::new();
    let failed: Vec<(StackId, &Vec<Failure>, &String)> = results
        .iter()
        .filter_map(|(id, r)| match r {
            StackResult::Failed { failures, status } => Some((*id, failures, status)),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(text, "\nFailed:");
        for (id, failures, status) in &failed {
            let _ = writeln!(text, "  {id} ({status}):");
            for f in *failures {
                let _ = writeln!(
                    text,
                    "    {} {} {}: {}",
                    f.logical_id, f.resource_type, f.status, f.reason
                );
            }
        }
    }
    for (id, r) in &results {
        match r {
            StackResult::Skipped { because } => {
                let _ = writeln!(
                    text,
                    "Skipped {id}: it depends on {because}, which did not deploy."
                );
            }
            StackResult::Refused { reason } => {
                let _ = writeln!(text, "Refused {id}: {reason}");
            }
            StackResult::Interrupted { detail } => {
                let _ = writeln!(text, "Interrupted {id}: {detail}");
            }
            _ => {}
        }
    }
    let done = results
        .values()
        .filter(|r| matches!(r, StackResult::Done { .. }))
        .count();
    let unchanged = results
        .values()
        .filter(|r| matches!(r, StackResult::Unchanged))
        .count();
    let capacity_failed = matches!(search_capacity, Some(CapacityOutcome::Failed { .. }));
    let status = if interrupted {
        ApplyStatus::Interrupted
    } else if results.values().all(StackResult::ok) && !capacity_failed {
        ApplyStatus::Applied
    } else {
        ApplyStatus::Failed
    };
    let verdict = match status {
        ApplyStatus::Applied => "Apply complete",
        ApplyStatus::Interrupted => "Apply interrupted",
        _ => "Apply FAILED",
    };
    let _ = writeln!(
        text,
        "\n{verdict}: {done} stack{} deployed, {unchanged} unchanged, {} not deployed, in {}.",
        if done == 1 { "" } else { "s" },
        results.len() - done - unchanged,
        human_duration(started.elapsed())
    );
    progress.text(&text);
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
    capacity::pending(aoss, &rendered.plan).await.map(Some)
}

/// Runs the stacks along the graph. Returns each selected stack's result
/// and whether Ctrl-C stopped the run.
async fn execute(
    ctx: &Ctx<'_>,
    plan: &Plan,
    prompter: &dyn Prompter,
    interrupt: &mut watch::Receiver<u32>,
) -> (BTreeMap<StackId, StackResult>, bool) {
    let chosen: BTreeSet<StackId> = plan.stacks.iter().map(|s| s.stack).collect();
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
            let deps: Vec<StackId> = ctx
                .rendered
                .graph
                .depends_on
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

async fn run_stack(ctx: &Ctx<'_>, s: &StackPlan) -> (StackId, StackResult) {
    let result = match run_stack_inner(ctx, s).await {
        Ok(r) => r,
        Err(e) => {
            ctx.progress.finish(
                s.stack,
                false,
                &format!("error: {}: {}", e.code().unwrap_or("ERROR"), e.message()),
            );
            StackResult::Failed {
                status: "ERROR".into(),
                failures: vec![Failure {
                    logical_id: s.stack_name.clone(),
                    resource_type: "AWS::CloudFormation::Stack".into(),
                    status: e.code().unwrap_or("ERROR").to_owned(),
                    reason: e.message().to_owned(),
                }],
            }
        }
    };
    (s.stack, result)
}

async fn run_stack_inner(ctx: &Ctx<'_>, s: &StackPlan) -> Result<StackResult, CfnError> {
    let id = s.stack;
    let mut created = s.action.creates();
    let mut change_set: Option<Result<String, String>> = s.change_set_id.clone().map(Ok);
    match &s.action {
        PlanAction::Unchanged => {}
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
        PlanAction::Create | PlanAction::Update => {}
        PlanAction::Busy { .. } | PlanAction::Error { .. } => {
            return Ok(StackResult::Refused {
                reason: "blocked at plan time".into(),
            });
        }
    }
    let late = matches!(
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
    let status = status.unwrap_or_else(|| "unchanged".into());
    ctx.progress.finish(id, true, &status);
    Ok(if status == "unchanged" && !created {
        StackResult::Unchanged
    } else {
        StackResult::Done { status }
    })
}

fn failed(ctx: &Ctx<'_>, id: StackId, status: &StackStatus, failures: Vec<Failure>) -> StackResult {
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

async fn delete_after_interrupt(ctx: &Ctx<'_>, id: StackId, name: &str) -> Result<(), CfnError> {
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
    ctx: &'c Ctx<'_>,
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
    ctx: &Ctx<'_>,
    s: &StackPlan,
    kind: ChangeSetKind,
) -> Result<Option<Result<String, String>>, CfnError> {
    let Some(rs) = ctx.rendered.stacks.iter().find(|r| r.id == s.stack) else {
        return Ok(Some(Err("not rendered".into())));
    };
    let request = plan::change_set_request(ctx.rendered, rs, kind, &ctx.change_set_name);
    let id = match ctx.cfn.create_change_set(&request).await {
        Ok(id) => id,
        Err(e) if e.code().is_some() => return Ok(Some(Err(e.message().to_owned()))),
        Err(e) => return Err(e),
    };
    let cs = plan::wait_for_change_set(ctx.cfn, &s.stack_name, &id, ctx.opts.backoff).await?;
    if cs.is_empty_failure() {
        ctx.cfn.delete_change_set(&s.stack_name, &id).await?;
        return Ok(None);
    }
    if cs.status != "CREATE_COMPLETE" {
        return Ok(Some(Err(cs
            .status_reason
            .unwrap_or_else(|| format!("change set {}", cs.status)))));
    }
    let changes: Vec<_> = cs
        .changes
        .iter()
        .map(|c| plan::planned_change(ctx.rendered, s.stack, c))
        .collect();
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

/// Outputs worth printing after apply: (stack, output key, label).
pub const USEFUL_OUTPUTS: &[(StackId, &str, &str)] = &[
    (StackId::Edge, "ChatUrl", "Chat WebSocket URL"),
    (StackId::Edge, "DistributionDomainName", "CloudFront domain"),
    (StackId::Service, "AlbDnsName", "Load balancer DNS"),
    (StackId::Service, "ClusterName", "ECS cluster"),
    (StackId::Memory, "TableName", "Conversation table"),
];

/// The useful outputs as text lines.
pub fn outputs_text(outputs: &BTreeMap<StackId, BTreeMap<String, String>>) -> String {
    let mut text = String::new();
    for (id, key, label) in USEFUL_OUTPUTS {
        if let Some(v) = outputs.get(id).and_then(|o| o.get(*key)) {
            let _ = writeln!(text, "  {label:<20} {v}");
        }
    }
    if text.is_empty() {
        text
    } else {
        format!("\nOutputs:\n{text}")
    }
}

/// Writes `outputs.json` (every output of every stack) into `dir`.
pub fn write_outputs(
    dir: &Path,
    environment: &str,
    outputs: &BTreeMap<StackId, BTreeMap<String, String>>,
) -> Result<std::path::PathBuf, DeployError> {
    #[derive(Serialize)]
    struct File<'a> {
        environment: &'a str,
        stacks: &'a BTreeMap<StackId, BTreeMap<String, String>>,
    }
    let path = dir.join("outputs.json");
    let err = |source| DeployError::Write {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let body = serde_json::to_string_pretty(&File {
        environment,
        stacks: outputs,
    })
    .map_err(|e| err(std::io::Error::other(e)))?
        + "\n";
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, body).map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok(path)
}
