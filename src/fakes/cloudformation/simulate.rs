//! Stack operations as the fake runs them: each operation becomes steps of
//! events (one step per `describe_stack`), failures cancel what is in
//! progress and roll back, a completed operation commits its template and
//! publishes its exports.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::template::*;
use super::*;
use crate::aws::cloudformation::{Stack, StackEvent, StackOutput, StackStatus};

pub(super) fn ev(
    id: &str,
    ty: &str,
    status: &str,
    reason: Option<&str>,
) -> (String, String, String, Option<String>) {
    (
        id.to_owned(),
        ty.to_owned(),
        status.to_owned(),
        reason.map(str::to_owned),
    )
}

pub(super) const STACK: &str = "AWS::CloudFormation::Stack";

/// The steps of a stack operation (`verb`: CREATE, UPDATE or DELETE) over
/// `targets` (logical ID, type, the resource's own verb: an update creates
/// added resources and deletes removed ones).
pub(super) fn operation_steps(
    verb: &str,
    targets: &[(String, String, String)],
    behavior: &Behavior,
    commit: Commit,
) -> VecDeque<Step> {
    let mut steps = VecDeque::new();
    let initiated = if verb == "UPDATE" {
        None
    } else {
        Some("User Initiated")
    };
    steps.push_back(Step {
        events: vec![ev("", STACK, &format!("{verb}_IN_PROGRESS"), initiated)],
        status: Some(format!("{verb}_IN_PROGRESS")),
        commit: None,
    });
    let fail_at = match behavior {
        Behavior::FailResource { logical_id, .. } | Behavior::FailRollback { logical_id, .. } => {
            Some(logical_id.as_str())
        }
        _ => None,
    };
    if *behavior == Behavior::Hang {
        for (id, ty, v) in targets.iter().take(1) {
            steps.push_back(Step {
                events: vec![ev(id, ty, &format!("{v}_IN_PROGRESS"), None)],
                status: None,
                commit: None,
            });
        }
        return steps;
    }
    let mut in_progress: Vec<(String, String, String)> = Vec::new();
    for (id, ty, v) in targets {
        steps.push_back(Step {
            events: vec![ev(id, ty, &format!("{v}_IN_PROGRESS"), None)],
            status: None,
            commit: None,
        });
        in_progress.push((id.clone(), ty.clone(), v.clone()));
        if Some(id.as_str()) == fail_at {
            break;
        }
        // Resources complete in pairs: two are in progress at a time, as in
        // a real deployment, so cancellations have something to cancel.
        if in_progress.len() == 2 {
            let (done_id, done_ty, done_v) = in_progress.remove(0);
            steps.push_back(Step {
                events: vec![ev(&done_id, &done_ty, &format!("{done_v}_COMPLETE"), None)],
                status: None,
                commit: None,
            });
        }
    }
    let Some(failed) = fail_at.filter(|f| targets.iter().any(|(id, _, _)| id == f)) else {
        let mut events: Vec<_> = in_progress
            .iter()
            .map(|(id, ty, v)| ev(id, ty, &format!("{v}_COMPLETE"), None))
            .collect();
        events.push(ev("", STACK, &format!("{verb}_COMPLETE"), None));
        steps.push_back(Step {
            events,
            status: Some(format!("{verb}_COMPLETE")),
            commit: Some(commit),
        });
        return steps;
    };
    let (reason, rollback_reason) = match behavior {
        Behavior::FailResource { reason, .. } => (reason.clone(), None),
        Behavior::FailRollback {
            reason,
            rollback_reason,
            ..
        } => (reason.clone(), Some(rollback_reason.clone())),
        _ => (String::new(), None),
    };
    let (failed_ty, failed_v) = targets
        .iter()
        .find(|(id, _, _)| id == failed)
        .map(|(_, t, v)| (t.clone(), v.clone()))
        .unwrap_or_default();
    let mut events = vec![ev(
        failed,
        &failed_ty,
        &format!("{failed_v}_FAILED"),
        Some(&reason),
    )];
    for (id, ty, v) in in_progress.iter().filter(|(id, _, _)| id != failed) {
        let cancelled = if v == "CREATE" {
            "Resource creation cancelled"
        } else {
            "Resource update cancelled"
        };
        events.push(ev(id, ty, &format!("{v}_FAILED"), Some(cancelled)));
    }
    steps.push_back(Step {
        events,
        status: None,
        commit: None,
    });
    let what = if verb == "CREATE" { "create" } else { "update" };
    let (rollback, done) = if verb == "CREATE" {
        ("ROLLBACK_IN_PROGRESS", "ROLLBACK_COMPLETE")
    } else {
        ("UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE")
    };
    let summary = format!(
        "The following resource(s) failed to {what}: [{failed}]. Rollback requested by user."
    );
    steps.push_back(Step {
        events: vec![ev("", STACK, rollback, Some(&summary))],
        status: Some(rollback.into()),
        commit: None,
    });
    match rollback_reason {
        Some(rr) => {
            steps.push_back(Step {
                events: vec![
                    ev(failed, &failed_ty, "UPDATE_FAILED", Some(&rr)),
                    ev(
                        "",
                        STACK,
                        "UPDATE_ROLLBACK_FAILED",
                        Some(&format!(
                            "The following resource(s) failed to update: [{failed}]."
                        )),
                    ),
                ],
                status: Some("UPDATE_ROLLBACK_FAILED".into()),
                commit: None,
            });
        }
        None => {
            let mut events: Vec<_> = in_progress
                .iter()
                .map(|(id, ty, v)| {
                    ev(
                        id,
                        ty,
                        if v == "CREATE" {
                            "DELETE_COMPLETE"
                        } else {
                            "UPDATE_COMPLETE"
                        },
                        None,
                    )
                })
                .collect();
            events.push(ev("", STACK, done, None));
            steps.push_back(Step {
                events,
                status: Some(done.into()),
                commit: None,
            });
        }
    }
    steps
}

pub(super) fn rollback_steps(targets: &[(String, String)], first_reason: &str) -> VecDeque<Step> {
    let mut steps = VecDeque::new();
    steps.push_back(Step {
        events: vec![ev(
            "",
            STACK,
            "UPDATE_ROLLBACK_IN_PROGRESS",
            Some(first_reason),
        )],
        status: Some("UPDATE_ROLLBACK_IN_PROGRESS".into()),
        commit: None,
    });
    let mut events: Vec<_> = targets
        .iter()
        .map(|(id, ty)| ev(id, ty, "UPDATE_COMPLETE", None))
        .collect();
    events.push(ev("", STACK, "UPDATE_ROLLBACK_COMPLETE", None));
    steps.push_back(Step {
        events,
        status: Some("UPDATE_ROLLBACK_COMPLETE".into()),
        commit: None,
    });
    steps
}

pub(super) fn push_event(
    stack: &mut FakeStack,
    tick: u64,
    logical: &str,
    ty: &str,
    status: &str,
    reason: Option<String>,
) {
    let n = stack.events.len();
    let logical = if logical.is_empty() {
        stack.name.clone()
    } else {
        logical.to_owned()
    };
    stack.events.push(StackEvent {
        event_id: format!("{}-{n}", stack.name),
        stack_name: stack.name.clone(),
        physical_id: Some(if logical == stack.name {
            stack.id.clone()
        } else {
            format!("{logical}-physical")
        }),
        logical_id: logical,
        resource_type: ty.to_owned(),
        status: status.to_owned(),
        reason,
        timestamp: SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH + tick),
        client_request_token: stack.token.clone(),
    });
}

pub(super) fn publish_exports(exports: &mut BTreeMap<String, String>, stack: &FakeStack) {
    exports.retain(|_, owner| *owner != stack.name);
    for (_, output) in outputs_of(stack.template.as_ref()) {
        if let Some(name) = output {
            exports.insert(name, stack.name.clone());
        }
    }
}

impl State {
    pub(super) fn call(&mut self, s: String) {
        self.calls.push(s);
    }

    pub(super) fn behavior(&mut self, stack: &str) -> Behavior {
        self.behaviors
            .get_mut(stack)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Behavior::Succeed)
    }

    /// Runs one step of `stack`'s pending operation.
    pub(super) fn advance(&mut self, name: &str) {
        let Some(stack) = self.stacks.get_mut(name) else {
            return;
        };
        let Some(step) = stack.pending.pop_front() else {
            if stack.hanging {
                self.tick += 1;
                let tick = self.tick;
                let Some(stack) = self.stacks.get_mut(name) else {
                    return;
                };
                let (id, ty) = stack
                    .events
                    .iter()
                    .rev()
                    .find(|e| !e.is_stack_level())
                    .map(|e| (e.logical_id.clone(), e.resource_type.clone()))
                    .unwrap_or_default();
                push_event(
                    stack,
                    tick,
                    &id,
                    &ty,
                    "UPDATE_IN_PROGRESS",
                    Some("Resource update in progress".into()),
                );
            }
            return;
        };
        for (logical, ty, status, reason) in step.events {
            self.tick += 1;
            let tick = self.tick;
            if let Some(stack) = self.stacks.get_mut(name) {
                push_event(stack, tick, &logical, &ty, &status, reason);
            }
        }
        let Some(stack) = self.stacks.get_mut(name) else {
            return;
        };
        if let Some(status) = step.status {
            stack.status = status;
        }
        match step.commit {
            Some(Commit::Template(t, params)) => {
                stack.template = t;
                stack.parameters = params;
                stack.token = None;
                let snapshot = stack.clone();
                publish_exports(&mut self.exports, &snapshot);
            }
            Some(Commit::Deleted) => {
                if let Some(mut gone) = self.stacks.remove(name) {
                    gone.status = "DELETE_COMPLETE".into();
                    self.exports.retain(|_, owner| owner != name);
                    self.deleted.insert(gone.id.clone(), gone);
                }
            }
            None => {}
        }
    }

    pub(super) fn find(&self, name: &str) -> Option<&FakeStack> {
        self.stacks
            .get(name)
            .or_else(|| self.stacks.values().find(|s| s.id == name))
            .or_else(|| self.deleted.get(name))
    }

    /// CloudFormation's export rule: an export another stack imports can
    /// neither change nor go. `new` is the stack's next template (`None`:
    /// the stack is being deleted). Returns the reason of the first export
    /// that would break the rule.
    pub(super) fn export_in_use(
        &self,
        stack: &str,
        new: Option<&Value>,
        new_params: &BTreeMap<String, String>,
    ) -> Option<String> {
        let current = self.stacks.get(stack)?;
        let old = exports_of(
            current
                .template
                .as_ref()
                .map(|t| bind(t, &current.parameters))
                .as_ref(),
        );
        let next = exports_of(new.map(|t| bind(t, new_params)).as_ref());
        for (name, value) in &old {
            let verb = match next.get(name) {
                None => "deleted",
                Some(v) if v != value => "updated",
                Some(_) => continue,
            };
            let importer = self.stacks.values().find(|s| {
                s.name != stack && {
                    let mut imports = Vec::new();
                    if let Some(t) = &s.template {
                        collect_imports(t, &mut imports);
                    }
                    imports.iter().any(|i| i == name)
                }
            });
            if let Some(importer) = importer {
                return Some(format!(
                    "Export {name} cannot be {verb} as it is in use by {}",
                    importer.name
                ));
            }
        }
        None
    }

    /// Export name → the value DescribeStacks shows for it, over every
    /// live stack.
    pub(super) fn export_values(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for s in self.stacks.values() {
            for o in to_stack(s).outputs {
                if let Some(name) = o.export_name {
                    out.insert(name, o.value);
                }
            }
        }
        out
    }

    pub(super) fn live_name(&self, name_or_id: &str) -> Option<String> {
        self.stacks
            .get(name_or_id)
            .or_else(|| self.stacks.values().find(|s| s.id == name_or_id))
            .map(|s| s.name.clone())
    }
}

pub(super) fn to_stack(s: &FakeStack) -> Stack {
    Stack {
        name: s.name.clone(),
        id: s.id.clone(),
        status: StackStatus::new(&s.status),
        status_reason: s.reason.clone(),
        termination_protection: s.termination_protection,
        last_updated: None,
        outputs: if s.status.ends_with("_COMPLETE") {
            let bound = s.template.as_ref().map(|t| bind(t, &s.parameters));
            outputs_of(s.template.as_ref())
                .into_iter()
                .map(|(key, export_name)| StackOutput {
                    value: output_value(&s.name, &key, bound.as_ref()),
                    key,
                    export_name,
                    description: None,
                })
                .collect()
        } else {
            vec![]
        },
        // DescribeStacks lists every parameter with its value in force:
        // the template's default unless one was passed.
        parameters: {
            let mut p = defaults_of(s.template.as_ref());
            p.extend(s.parameters.clone());
            p
        },
        tags: s.tags.clone(),
    }
}
