//! `destroy`: deletes an environment's stacks in reverse dependency order
//! (a stack goes once every stack importing from it is gone), independent
//! ones in parallel, with the same progress and failure reporting as apply.
//!
//! Refused up front, before anything is deleted: stacks with termination
//! protection (unless `--disable-termination-protection`), stacks with an
//! operation in progress, and with `--stack`, a stack others still import
//! from. Prod needs its name typed (`confirm.rs`). Data stores the
//! templates retain (DeletionPolicy Retain/Snapshot, from the manifest) are
//! reported as kept; the others as deleted with their data.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use stacks::model::Policy;
use stacks::render::Rendered;
use stacks::stacks::StackId;
use tokio::sync::watch;

use super::confirm::{self, Decision, Prompter};
use super::progress::Progress;
use super::wait::{Failure, OnInterrupt, Watcher};
use super::{human_duration, is_data_store, Backoff, DeployError};
use crate::aws::cloudformation::Stack;
use crate::aws::{CfnError, CloudFormation};

#[derive(Debug, Clone)]
pub struct DestroyOptions {
    pub only: Option<StackId>,
    pub yes: bool,
    pub confirm_env: Option<String>,
    /// Turn termination protection off and delete anyway.
    pub disable_termination_protection: bool,
    pub concurrency: usize,
    pub backoff: Backoff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DestroyStatus {
    /// Nothing of the environment exists.
    NothingToDo,
    Destroyed,
    Declined,
    Failed,
    Interrupted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum DeleteResult {
    Absent,
    Deleted,
    Failed {
        status: String,
        failures: Vec<Failure>,
    },
    Skipped {
        because: StackId,
    },
    NotStarted,
}

#[derive(Debug, Clone, Serialize)]
pub struct DestroyReport {
    pub status: DestroyStatus,
    pub results: BTreeMap<StackId, DeleteResult>,
    /// `stack/LogicalId (type, policy)` of data stores left in the account.
    pub kept: Vec<String>,
}

pub async fn destroy(
    cfn: &dyn CloudFormation,
    rendered: &Rendered,
    opts: &DestroyOptions,
    progress: &Progress,
    prompter: &dyn Prompter,
    mut interrupt: watch::Receiver<u32>,
) -> Result<DestroyReport, DeployError> {
    let env = rendered.manifest.environment.clone();
    let chosen = super::selected(rendered, opts.only);
    let mut existing: BTreeMap<StackId, Stack> = BTreeMap::new();
    for s in &rendered.stacks {
        if let Some(stack) = cfn.describe_stack(&s.stack_name).await? {
            existing.insert(s.id, stack);
        }
    }
    let targets: Vec<StackId> = chosen
        .iter()
        .copied()
        .filter(|id| existing.contains_key(id))
        .collect();
    let refuse = |reason: String| DeployError::Refused {
        action: "destroy",
        reason,
    };

    if let Some(only) = opts.only {
        let users: Vec<&str> = rendered
            .graph
            .dependents(only)
            .into_iter()
            .filter(|d| existing.contains_key(d))
            .map(StackId::name)
            .collect();
        if !users.is_empty() && existing.contains_key(&only) {
            return Err(refuse(format!(
                "{only} is referenced by {}, which still exist; destroy those first",
                users.join(", ")
            )));
        }
    }
    let busy: Vec<String> = targets
        .iter()
        .filter_map(|id| {
            existing
                .get(id)
                .filter(|s| s.status.is_in_progress())
                .map(|s| format!("{id} ({})", s.status))
        })
        .collect();
    if !busy.is_empty() {
        return Err(refuse(format!(
            "an operation is in progress on {}; wait for it to finish",
            busy.join(", ")
        )));
    }
    let protected: Vec<StackId> = targets
        .iter()
        .copied()
        .filter(|id| existing.get(id).is_some_and(|s| s.termination_protection))
        .collect();
    if !protected.is_empty() && !opts.disable_termination_protection {
        let names: Vec<&str> = protected.iter().map(|s| s.name()).collect();
        return Err(refuse(format!(
            "termination protection is on for {}; pass --disable-termination-protection to turn it off and delete them",
            names.join(", ")
        )));
    }

    // What goes and what stays.
    let mut text = String::new();
    let mut kept = Vec::new();
    let mut lost = Vec::new();
    for id in targets.iter().rev() {
        let Some(m) = rendered.manifest.stacks.get(id) else {
            continue;
        };
        for (logical, r) in &m.retained {
            let how = match r.policy {
                Policy::Snapshot => "a final snapshot is kept",
                _ => "kept in the account",
            };
            kept.push(format!("{id}/{logical} ({}, {how})", r.kind));
        }
        if let Some(rs) = rendered.stacks.iter().find(|s| s.id == *id) {
            let value = rs.template.to_value();
            if let Some(resources) = value.get("Resources").and_then(|r| r.as_object()) {
                for (logical, r) in resources {
                    let ty = r.get("Type").and_then(|t| t.as_str()).unwrap_or_default();
                    if !m.retained.contains_key(logical)
                        && is_data_store(rendered, *id, logical, ty)
                    {
                        lost.push(format!("{id}/{logical} ({ty})"));
                    }
                }
            }
        }
    }
    let order: Vec<&str> = targets.iter().rev().map(|s| s.name()).collect();
    let absent: Vec<&str> = chosen
        .iter()
        .filter(|id| !existing.contains_key(id))
        .map(|s| s.name())
        .collect();
    if targets.is_empty() {
        progress.text(&format!(
            "Nothing to destroy: no stack of `{env}` exists.\n"
        ));
        return Ok(DestroyReport {
            status: DestroyStatus::NothingToDo,
            results: BTreeMap::new(),
            kept: vec![],
        });
    }
    let _ = writeln!(
        text,
        "Destroy `{env}` ({}): delete {}",
        rendered.manifest.region,
        order.join(", ")
    );
    if !absent.is_empty() {
        let _ = writeln!(text, "  already absent: {}", absent.join(", "));
    }
    if !protected.is_empty() {
        let names: Vec<&str> = protected.iter().map(|s| s.name()).collect();
        let _ = writeln!(
            text,
            "  termination protection turned off first: {}",
            names.join(", ")
        );
    }
    for k in &kept {
        let _ = writeln!(text, "  kept: {k}");
    }
    for l in &lost {
        let _ = writeln!(text, "  !! deleted with its data: {l}");
    }
    progress.text(&text);

    let decision = confirm::confirm(
        "destroy",
        &env,
        opts.yes,
        sizing::is_production(&env),
        opts.confirm_env.as_deref(),
        prompter,
        progress,
    )?;
    if decision == Decision::Declined {
        progress.text("Destroy cancelled; nothing was deleted.\n");
        return Ok(DestroyReport {
            status: DestroyStatus::Declined,
            results: BTreeMap::new(),
            kept: vec![],
        });
    }

    let started = Instant::now();
    let token = super::client_token("destroy");
    let mut results: BTreeMap<StackId, DeleteResult> = chosen
        .iter()
        .filter(|id| !existing.contains_key(id))
        .map(|id| (*id, DeleteResult::Absent))
        .collect();
    let mut waiting: Vec<StackId> = targets.iter().rev().copied().collect();
    let mut running = FuturesUnordered::new();
    let mut interrupted = *interrupt.borrow_and_update() > 0;
    loop {
        let mut still = Vec::new();
        for id in waiting {
            // Stacks importing from `id` that exist and are part of this run must go first.
            let users: Vec<StackId> = rendered
                .graph
                .dependents(id)
                .into_iter()
                .filter(|d| targets.contains(d))
                .collect();
            if let Some(bad) = users.iter().find(|u| {
                results
                    .get(u)
                    .is_some_and(|r| !matches!(r, DeleteResult::Deleted | DeleteResult::Absent))
            }) {
                progress.finish(id, false, &format!("skipped: {bad} was not deleted"));
                results.insert(id, DeleteResult::Skipped { because: *bad });
            } else if interrupted {
                results.insert(id, DeleteResult::NotStarted);
            } else if running.len() < opts.concurrency.max(1)
                && users
                    .iter()
                    .all(|u| matches!(results.get(u), Some(DeleteResult::Deleted)))
            {
                let name = existing.get(&id).map(|s| s.id.clone()).unwrap_or_default();
                let protected = protected.contains(&id);
                running.push(delete_one(
                    cfn,
                    progress,
                    id,
                    name,
                    protected,
                    &token,
                    opts.backoff,
                    interrupt.clone(),
                ));
            } else {
                still.push(id);
            }
        }
        waiting = still;
        if running.is_empty() {
            for id in waiting {
                results.entry(id).or_insert(DeleteResult::NotStarted);
            }
            break;
        }
        tokio::select! {
            Some((id, r)) = running.next() => {
                results.insert(id, r);
            }
            changed = interrupt.changed(), if !interrupted => {
                if changed.is_ok() {
                    interrupted = true;
                    progress.text("\nCtrl-C: deletions in progress finish (they cannot be cancelled); no further stacks are deleted. Ctrl-C again exits at once.\n");
                } else {
                    let (_tx, rx) = watch::channel(0);
                    interrupt = rx;
                }
            }
        }
    }

    let mut text = String::new();
    for (id, r) in &results {
        match r {
            DeleteResult::Failed { status, failures } => {
                let _ = writeln!(text, "\nFailed to delete {id} ({status}):");
                for f in failures {
                    let _ = writeln!(
                        text,
                        "    {} {} {}: {}",
                        f.logical_id, f.resource_type, f.status, f.reason
                    );
                }
            }
            DeleteResult::Skipped { because } => {
                let _ = writeln!(text, "Skipped {id}: {because} still references it.");
            }
            _ => {}
        }
    }
    let deleted = results
        .values()
        .filter(|r| matches!(r, DeleteResult::Deleted))
        .count();
    let status = if interrupted {
        DestroyStatus::Interrupted
    } else if results
        .values()
        .all(|r| matches!(r, DeleteResult::Deleted | DeleteResult::Absent))
    {
        DestroyStatus::Destroyed
    } else {
        DestroyStatus::Failed
    };
    let verdict = match status {
        DestroyStatus::Destroyed => "Destroy complete",
        DestroyStatus::Interrupted => "Destroy interrupted",
        _ => "Destroy FAILED",
    };
    let _ = writeln!(
        text,
        "\n{verdict}: {deleted} stack{} deleted in {}.",
        if deleted == 1 { "" } else { "s" },
        human_duration(started.elapsed())
    );
    for k in &kept {
        let _ = writeln!(text, "Kept: {k}; delete it by hand when no longer needed.");
    }
    progress.text(&text);
    Ok(DestroyReport {
        status,
        results,
        kept,
    })
}

#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
async fn delete_one(
    cfn: &dyn CloudFormation,
    progress: &Progress,
    id: StackId,
    stack_id: String,
    protected: bool,
    token: &str,
    backoff: Backoff,
    mut interrupt: watch::Receiver<u32>,
) -> (StackId, DeleteResult) {
    let run = async {
        if protected {
            cfn.set_termination_protection(&stack_id, false).await?;
            progress.note(id, "termination protection off");
        }
        let mut watcher = Watcher::new(cfn, progress, id, &stack_id, backoff).await?;
        progress.start(id, "deleting");
        cfn.delete_stack(&stack_id, token).await?;
        watcher
            .until_done(OnInterrupt::Wait, &mut interrupt, token)
            .await
    };
    let r: Result<_, CfnError> = run.await;
    let result = match r {
        Ok(end) if end.status.as_str() == "DELETE_COMPLETE" => {
            progress.finish(id, true, "DELETE_COMPLETE");
            DeleteResult::Deleted
        }
        Ok(end) => {
            let failures = end.failures();
            let first = failures
                .first()
                .map(|f| format!(": {} {}", f.logical_id, f.reason))
                .unwrap_or_default();
            progress.finish(id, false, &format!("{}{first}", end.status));
            DeleteResult::Failed {
                status: end.status.to_string(),
                failures,
            }
        }
        Err(e) => {
            progress.finish(id, false, &format!("error: {e}"));
            DeleteResult::Failed {
                status: "ERROR".into(),
                failures: vec![Failure::of_call(&stack_name(&stack_id), &e)],
            }
        }
    };
    (id, result)
}

/// `name` from a stack ID (`arn:…:stack/NAME/UUID`), for messages.
fn stack_name(stack_id: &str) -> String {
    stack_id.split('/').nth(1).unwrap_or(stack_id).to_owned()
}
