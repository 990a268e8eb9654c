//! Following one stack operation (execute, delete, continue-rollback) to its
//! end: polls DescribeStacks and DescribeStackEvents with backoff, prints
//! every new event to [`Progress`], and on Ctrl-C cancels an update when
//! asked to. Used by `apply.rs` and `destroy.rs`.

use std::collections::HashSet;

use stacks::stacks::StackId;
use tokio::sync::watch;

use super::progress::Progress;
use super::{is_cancellation_echo, Backoff};
use crate::aws::cloudformation::{CfnResult, Stack, StackEvent, StackStatus};
use crate::aws::{CfnError, CloudFormation};

/// A resource that failed, with CloudFormation's reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: String,
}

impl Failure {
    /// A stack-level failure: an AWS call about stack `stack_name` failed
    /// (the error names the operation, code, HTTP status and request id).
    pub fn of_call(stack_name: &str, e: &CfnError) -> Failure {
        Failure {
            logical_id: stack_name.to_owned(),
            resource_type: "AWS::CloudFormation::Stack".into(),
            status: e.code().unwrap_or("ERROR").to_owned(),
            reason: e.to_string(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Finished {
    /// `DELETE_COMPLETE` when the stack is gone.
    pub status: StackStatus,
    pub stack: Option<Stack>,
    /// This operation's events, oldest first.
    pub events: Vec<StackEvent>,
    /// Ctrl-C arrived while waiting.
    pub interrupted: bool,
}

impl Finished {
    /// The failed resources, root causes only.
    pub fn failures(&self) -> Vec<Failure> {
        failures(&self.events, self.stack.as_ref())
    }
}

/// The failed resources in `events`, skipping CloudFormation's cancellation
/// echoes and the stack-level summary; falls back to the stack's own reason
/// when no resource says why.
pub fn failures(events: &[StackEvent], stack: Option<&Stack>) -> Vec<Failure> {
    let mut out: Vec<Failure> = Vec::new();
    for e in events {
        if e.is_stack_level() || !e.status.ends_with("_FAILED") {
            continue;
        }
        let reason = e
            .reason
            .clone()
            .unwrap_or_else(|| "(no reason given)".into());
        if is_cancellation_echo(&reason) {
            continue;
        }
        let f = Failure {
            logical_id: e.logical_id.clone(),
            resource_type: e.resource_type.clone(),
            status: e.status.clone(),
            reason,
        };
        if !out.contains(&f) {
            out.push(f);
        }
    }
    if out.is_empty() {
        let stack_failure = events.iter().rev().find(|e| {
            e.is_stack_level() && e.reason.is_some() && e.status.contains("ROLLBACK")
                || e.is_stack_level() && e.status.ends_with("_FAILED")
        });
        if let Some(e) = stack_failure {
            out.push(Failure {
                logical_id: e.logical_id.clone(),
                resource_type: e.resource_type.clone(),
                status: e.status.clone(),
                reason: e
                    .reason
                    .clone()
                    .unwrap_or_else(|| "(no reason given)".into()),
            });
        } else if let Some(s) = stack.filter(|s| s.status.is_failure()) {
            out.push(Failure {
                logical_id: s.name.clone(),
                resource_type: "AWS::CloudFormation::Stack".into(),
                status: s.status.to_string(),
                reason: s
                    .status_reason
                    .clone()
                    .unwrap_or_else(|| "(no reason given)".into()),
            });
        }
    }
    out
}

/// What to do on Ctrl-C while waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnInterrupt {
    /// Keep waiting (creates and deletes cannot be cancelled).
    Wait,
    /// CancelUpdateStack, then wait for the rollback.
    CancelUpdate,
}

#[derive(Debug)]
pub struct Watcher<'a> {
    cfn: &'a dyn CloudFormation,
    progress: &'a Progress,
    id: StackId,
    /// Stack name, or its ID once known (a deleted stack is only found by ID).
    name: String,
    seen: HashSet<String>,
    before: Option<StackStatus>,
    backoff: Backoff,
}

impl<'a> Watcher<'a> {
    /// Remembers the events and status from before the operation, so only
    /// the operation's own events are printed and its end is not mistaken
    /// for the previous one's.
    pub async fn new(
        cfn: &'a dyn CloudFormation,
        progress: &'a Progress,
        id: StackId,
        name: &str,
        backoff: Backoff,
    ) -> CfnResult<Watcher<'a>> {
        let stack = cfn.describe_stack(name).await?;
        let mut seen = HashSet::new();
        if let Some(s) = &stack {
            for e in cfn.stack_events(&s.id).await? {
                seen.insert(e.event_id);
            }
        }
        let name = stack
            .as_ref()
            .map_or_else(|| name.to_owned(), |s| s.id.clone());
        Ok(Watcher {
            cfn,
            progress,
            id,
            name,
            seen,
            before: stack.map(|s| s.status),
            backoff,
        })
    }

    /// Polls until the operation started after [`Watcher::new`] ends.
    pub async fn until_done(
        &mut self,
        on_interrupt: OnInterrupt,
        interrupt: &mut watch::Receiver<u32>,
        token: &str,
    ) -> CfnResult<Finished> {
        let mut delay = self.backoff.initial;
        let mut events = Vec::new();
        let mut started = false;
        let mut interrupted = *interrupt.borrow_and_update() > 0;
        let mut closed = false;
        let mut cancelled = false;
        loop {
            let stack = self.cfn.describe_stack(&self.name).await?;
            let Some(stack) = stack else {
                // Gone: a delete finished (by name, CloudFormation forgets it).
                return Ok(Finished {
                    status: StackStatus::new("DELETE_COMPLETE"),
                    stack: None,
                    events,
                    interrupted,
                });
            };
            self.name.clone_from(&stack.id);
            let mut fresh: Vec<StackEvent> = self
                .cfn
                .stack_events(&stack.id)
                .await?
                .into_iter()
                .filter(|e| !self.seen.contains(&e.event_id))
                .collect();
            fresh.reverse();
            for e in &fresh {
                self.seen.insert(e.event_id.clone());
                self.progress.event(self.id, e);
                if e.is_stack_level() {
                    started = true;
                }
            }
            if Some(&stack.status) != self.before.as_ref() {
                started = true;
            }
            let got_events = !fresh.is_empty();
            events.extend(fresh);
            if started && !stack.status.is_in_progress() && !stack.status.is_review() {
                return Ok(Finished {
                    status: stack.status.clone(),
                    stack: Some(stack),
                    events,
                    interrupted,
                });
            }
            if interrupted
                && !cancelled
                && on_interrupt == OnInterrupt::CancelUpdate
                && stack.status.as_str() == "UPDATE_IN_PROGRESS"
            {
                cancelled = true;
                self.progress.note(
                    self.id,
                    "Ctrl-C: cancelling the update (CloudFormation rolls it back)",
                );
                self.cfn.cancel_update_stack(&stack.id, token).await?;
                delay = self.backoff.initial;
                continue;
            }
            delay = if got_events {
                self.backoff.initial
            } else {
                self.backoff.next(delay)
            };
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                changed = interrupt.changed(), if !interrupted && !closed => {
                    // A closed channel means nobody can interrupt any more.
                    match changed {
                        Ok(()) => interrupted = true,
                        Err(_) => closed = true,
                    }
                }
            }
        }
    }
}
