//! The [`CloudFormation`] trait over the fake's state: each call checks
//! what CloudFormation checks, records itself in the call log and answers
//! with the shapes of the API reference.

use std::collections::BTreeSet;

use async_trait::async_trait;

use super::simulate::*;
use super::template::*;
use super::*;
use crate::aws::cloudformation::{
    Action, CfnResult, ChangeDetail, ChangeSet, ChangeSetRequest, CloudFormation, DriftDetection,
    Replacement, ResourceChange, ResourceDrift, Stack, StackEvent,
};

#[async_trait]
impl CloudFormation for FakeCloudFormation {
    async fn describe_stack(&self, name: &str) -> CfnResult<Option<Stack>> {
        let mut st = self.lock();
        if let Some(live) = st.live_name(name) {
            st.advance(&live);
        }
        Ok(st.find(name).map(to_stack))
    }

    async fn stack_events(&self, name: &str) -> CfnResult<Vec<StackEvent>> {
        let st = self.lock();
        match st.find(name) {
            Some(s) => Ok(s.events.iter().rev().take(100).cloned().collect()),
            None => Err(api(
                "DescribeStackEvents",
                name,
                "ValidationError",
                format!("Stack [{name}] does not exist"),
            )),
        }
    }

    async fn template(&self, name: &str) -> CfnResult<Option<String>> {
        // A read: not in the call log (which records what changes things).
        let st = self.lock();
        Ok(st
            .find(name)
            .filter(|s| s.status != "REVIEW_IN_PROGRESS")
            .and_then(|s| s.template.as_ref())
            .map(Value::to_string))
    }

    async fn create_change_set(&self, r: &ChangeSetRequest) -> CfnResult<String> {
        let mut st = self.lock();
        let kind = match r.kind {
            ChangeSetKind::Create => "CREATE",
            ChangeSetKind::Update => "UPDATE",
        };
        st.call(format!("CreateChangeSet {} {kind}", r.stack_name));
        let template: Option<Value> = serde_json::from_str(&r.template_body).ok();
        // CloudFormation checks imports when it creates the change set.
        if let Some(t) = &template {
            let mut missing = Vec::new();
            collect_imports(t, &mut missing);
            if let Some(name) = missing.iter().find(|n| !st.exports.contains_key(*n)) {
                return Err(api(
                    "CreateChangeSet",
                    &r.stack_name,
                    "ValidationError",
                    format!("No export named {name} found."),
                ));
            }
        }
        // Like CloudFormation, every parameter without a default needs a value.
        let unset: Vec<String> = template
            .as_ref()
            .map(required_parameters)
            .unwrap_or_default()
            .into_iter()
            .filter(|p| !r.parameters.contains_key(p))
            .collect();
        if !unset.is_empty() {
            return Err(api(
                "CreateChangeSet",
                &r.stack_name,
                "ValidationError",
                format!("Parameters: [{}] must have values", unset.join(", ")),
            ));
        }
        let existing = st.stacks.get(&r.stack_name).cloned();
        match (r.kind, &existing) {
            (ChangeSetKind::Update, None) => {
                return Err(api(
                    "CreateChangeSet",
                    &r.stack_name,
                    "ValidationError",
                    format!("Stack [{}] does not exist", r.stack_name),
                ))
            }
            (ChangeSetKind::Update, Some(s))
                if s.status.ends_with("_IN_PROGRESS")
                    || s.status == "ROLLBACK_COMPLETE"
                    || s.status.ends_with("_FAILED") =>
            {
                return Err(api(
                    "CreateChangeSet",
                    &r.stack_name,
                    "ValidationError",
                    format!(
                        "Stack:{} is in {} state and can not be updated.",
                        s.id, s.status
                    ),
                ))
            }
            (ChangeSetKind::Create, Some(s)) if s.status != "REVIEW_IN_PROGRESS" => {
                return Err(api(
                    "CreateChangeSet",
                    &r.stack_name,
                    "AlreadyExistsException",
                    format!("Stack [{}] already exists", r.stack_name),
                ))
            }
            _ => {}
        }
        st.next_id += 1;
        let n = st.next_id;
        if existing.is_none() {
            let id = format!(
                "arn:aws:cloudformation:{}:123456789012:stack/{}/fake-{n}",
                st.region, r.stack_name
            );
            let mut stack = FakeStack {
                name: r.stack_name.clone(),
                id,
                status: "REVIEW_IN_PROGRESS".into(),
                reason: None,
                termination_protection: false,
                template: None,
                parameters: BTreeMap::new(),
                tags: BTreeMap::new(),
                events: Vec::new(),
                pending: VecDeque::new(),
                token: None,
                hanging: false,
            };
            st.tick += 1;
            push_event(
                &mut stack,
                st.tick,
                "",
                STACK,
                "REVIEW_IN_PROGRESS",
                Some("User Initiated".into()),
            );
            st.stacks.insert(r.stack_name.clone(), stack);
        }
        // Compared as CloudFormation resolves them: parameters bound.
        let exports = st.export_values();
        let old = existing.as_ref().and_then(|s| {
            s.template
                .as_ref()
                .map(|t| bind_with(t, &s.parameters, &exports))
        });
        let new = template
            .as_ref()
            .map(|t| bind_with(t, &r.parameters, &exports));
        let (status, reason, changes) = match st
            .scripted_change_sets
            .get_mut(&r.stack_name)
            .and_then(VecDeque::pop_front)
        {
            Some(s) => (s.status, s.status_reason, s.changes),
            None => {
                let mut changes = diff(old.as_ref(), new.as_ref());
                if r.revert_drift && r.kind == ChangeSetKind::Update {
                    revert_scripted_drift(st.drift_scripts.get(&r.stack_name), &mut changes);
                }
                // A template whose resources resolve the same but whose
                // outputs or parameters differ still updates (with no
                // resource changes); only an identical one has nothing to do.
                if changes.is_empty() && r.kind == ChangeSetKind::Update && old == new {
                    (
                        "FAILED".to_owned(),
                        Some("The submitted information didn't contain changes. Submit different information to create a change set.".to_owned()),
                        changes,
                    )
                } else {
                    ("CREATE_COMPLETE".to_owned(), None, changes)
                }
            }
        };
        let id = format!(
            "arn:aws:cloudformation:{}:123456789012:changeSet/{}/fake-{n}",
            st.region, r.change_set_name
        );
        st.change_sets.insert(
            id.clone(),
            FakeChangeSet {
                id: id.clone(),
                name: r.change_set_name.clone(),
                stack: r.stack_name.clone(),
                kind: r.kind,
                template,
                parameters: r.parameters.clone(),
                tags: r.tags.clone(),
                status,
                reason,
                changes,
                describes_until_ready: 1,
            },
        );
        Ok(id)
    }

    async fn describe_change_set(&self, stack: &str, change_set: &str) -> CfnResult<ChangeSet> {
        let mut st = self.lock();
        let Some(cs) = st
            .change_sets
            .values_mut()
            .find(|c| (c.id == change_set || c.name == change_set) && c.stack == stack)
        else {
            return Err(api(
                "DescribeChangeSet",
                stack,
                "ChangeSetNotFound",
                format!("ChangeSet [{change_set}] does not exist"),
            ));
        };
        if cs.describes_until_ready > 0 {
            cs.describes_until_ready -= 1;
            return Ok(ChangeSet {
                id: cs.id.clone(),
                stack_id: None,
                status: "CREATE_IN_PROGRESS".into(),
                execution_status: Some("UNAVAILABLE".into()),
                status_reason: None,
                changes: vec![],
            });
        }
        Ok(ChangeSet {
            id: cs.id.clone(),
            stack_id: None,
            status: cs.status.clone(),
            execution_status: Some(
                if cs.status == "CREATE_COMPLETE" {
                    "AVAILABLE"
                } else {
                    "UNAVAILABLE"
                }
                .into(),
            ),
            status_reason: cs.reason.clone(),
            changes: cs.changes.clone(),
        })
    }

    async fn delete_change_set(&self, stack: &str, change_set: &str) -> CfnResult<()> {
        let mut st = self.lock();
        st.call(format!("DeleteChangeSet {stack}"));
        let key = st
            .change_sets
            .values()
            .find(|c| (c.id == change_set || c.name == change_set) && c.stack == stack)
            .map(|c| c.id.clone());
        match key {
            Some(k) => {
                st.change_sets.remove(&k);
                Ok(())
            }
            None => Err(api(
                "DeleteChangeSet",
                stack,
                "ChangeSetNotFound",
                format!("ChangeSet [{change_set}] does not exist"),
            )),
        }
    }

    async fn execute_change_set(
        &self,
        stack: &str,
        change_set: &str,
        token: &str,
    ) -> CfnResult<()> {
        let mut st = self.lock();
        st.call(format!("ExecuteChangeSet {stack}"));
        let key = st
            .change_sets
            .values()
            .find(|c| (c.id == change_set || c.name == change_set) && c.stack == stack)
            .map(|c| c.id.clone());
        let Some(cs) = key.and_then(|k| st.change_sets.remove(&k)) else {
            return Err(api(
                "ExecuteChangeSet",
                stack,
                "ChangeSetNotFound",
                format!("ChangeSet [{change_set}] does not exist"),
            ));
        };
        if cs.status != "CREATE_COMPLETE" {
            return Err(api(
                "ExecuteChangeSet",
                stack,
                "InvalidChangeSetStatus",
                format!(
                    "ChangeSet [{}] cannot be executed in its current status of [{}]",
                    cs.id, cs.status
                ),
            ));
        }
        let behavior = st.behavior(stack);
        let in_use = if cs.kind == ChangeSetKind::Update {
            st.export_in_use(stack, cs.template.as_ref(), &cs.parameters)
        } else {
            None
        };
        let Some(s) = st.stacks.get_mut(stack) else {
            return Err(api(
                "ExecuteChangeSet",
                stack,
                "ValidationError",
                format!("Stack [{stack}] does not exist"),
            ));
        };
        let verb = if cs.kind == ChangeSetKind::Create {
            "CREATE"
        } else {
            "UPDATE"
        };
        let targets: Vec<(String, String, String)> = if verb == "CREATE" {
            targets_of(cs.template.as_ref(), "CREATE")
        } else {
            cs.changes
                .iter()
                .map(|c| {
                    let v = match c.action {
                        Action::Add => "CREATE",
                        Action::Remove => "DELETE",
                        _ => "UPDATE",
                    };
                    (c.logical_id.clone(), c.resource_type.clone(), v.to_owned())
                })
                .collect()
        };
        s.token = Some(token.to_owned());
        s.tags = cs.tags.clone();
        s.hanging = behavior == Behavior::Hang;
        let commit = Commit::Template(cs.template.clone(), cs.parameters.clone());
        s.pending = match in_use {
            // CloudFormation updates exports at the end of an update and
            // rolls back when one in use would change or go: the stack-level
            // UPDATE_ROLLBACK_IN_PROGRESS carries "Export <name> cannot be
            // updated/deleted as it is in use by <stack>".
            Some(reason) => {
                let mut steps = operation_steps(verb, &[], &Behavior::Succeed, commit);
                steps.truncate(1);
                let touched: Vec<(String, String)> = targets
                    .iter()
                    .map(|(id, ty, _)| (id.clone(), ty.clone()))
                    .collect();
                steps.extend(rollback_steps(&touched, &reason));
                steps
            }
            None => operation_steps(verb, &targets, &behavior, commit),
        };
        // Other change sets of the stack are stale once one executes.
        st.change_sets.retain(|_, c| c.stack != stack);
        Ok(())
    }

    async fn delete_stack(&self, stack: &str, token: &str) -> CfnResult<()> {
        let mut st = self.lock();
        let Some(name) = st.live_name(stack) else {
            st.call(format!("DeleteStack {stack}"));
            return Ok(());
        };
        st.call(format!("DeleteStack {name}"));
        let behavior = st.behavior(&name);
        let in_use = st.export_in_use(&name, None, &BTreeMap::new());
        let Some(s) = st.stacks.get_mut(&name) else {
            return Ok(());
        };
        if s.termination_protection {
            return Err(api(
                "DeleteStack",
                stack,
                "ValidationError",
                format!("Stack [{name}] cannot be deleted while TerminationProtection is enabled"),
            ));
        }
        if s.status.ends_with("_IN_PROGRESS") && s.status != "REVIEW_IN_PROGRESS" {
            return Err(api(
                "DeleteStack",
                stack,
                "ValidationError",
                format!("Stack [{name}] is in {} state", s.status),
            ));
        }
        if let Some(reason) = in_use {
            // The deletion starts and fails on the export; the stack keeps
            // its status (CloudFormation: "Export <name> cannot be deleted
            // as it is in use by <stack>").
            let status = s.status.clone();
            s.token = Some(token.to_owned());
            s.pending = VecDeque::from([
                Step {
                    events: vec![(
                        String::new(),
                        STACK.into(),
                        "DELETE_IN_PROGRESS".into(),
                        Some("User Initiated".into()),
                    )],
                    status: Some("DELETE_IN_PROGRESS".into()),
                    commit: None,
                },
                Step {
                    events: vec![(
                        String::new(),
                        STACK.into(),
                        "DELETE_FAILED".into(),
                        Some(reason),
                    )],
                    status: Some(if status == "REVIEW_IN_PROGRESS" {
                        status
                    } else {
                        "DELETE_FAILED".into()
                    }),
                    commit: None,
                },
            ]);
            return Ok(());
        }
        let mut targets = if s.status == "ROLLBACK_COMPLETE" || s.status == "REVIEW_IN_PROGRESS" {
            vec![]
        } else {
            targets_of(s.template.as_ref(), "DELETE")
        };
        targets.reverse();
        s.token = Some(token.to_owned());
        s.pending = operation_steps("DELETE", &targets, &behavior, Commit::Deleted);
        Ok(())
    }

    async fn continue_update_rollback(&self, stack: &str, token: &str) -> CfnResult<()> {
        let mut st = self.lock();
        let name = st.live_name(stack).unwrap_or_default();
        st.call(format!("ContinueUpdateRollback {name}"));
        let Some(s) = st.stacks.get_mut(&name) else {
            return Err(api(
                "ContinueUpdateRollback",
                stack,
                "ValidationError",
                format!("Stack [{stack}] does not exist"),
            ));
        };
        if s.status != "UPDATE_ROLLBACK_FAILED" {
            return Err(api(
                "ContinueUpdateRollback",
                stack,
                "ValidationError",
                format!(
                    "Stack {stack} is in {} state and can not continue update rollback",
                    s.status
                ),
            ));
        }
        s.token = Some(token.to_owned());
        let targets: Vec<(String, String)> = s
            .events
            .iter()
            .filter(|e| !e.is_stack_level() && e.status == "UPDATE_FAILED")
            .map(|e| (e.logical_id.clone(), e.resource_type.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        s.pending = rollback_steps(&targets, "User Initiated");
        Ok(())
    }

    async fn cancel_update_stack(&self, stack: &str, token: &str) -> CfnResult<()> {
        let mut st = self.lock();
        let name = st.live_name(stack).unwrap_or_default();
        st.call(format!("CancelUpdateStack {name}"));
        let Some(s) = st.stacks.get_mut(&name) else {
            return Err(api(
                "CancelUpdateStack",
                stack,
                "ValidationError",
                format!("Stack [{stack}] does not exist"),
            ));
        };
        if s.status != "UPDATE_IN_PROGRESS" {
            return Err(api(
                "CancelUpdateStack",
                stack,
                "ValidationError",
                format!(
                    "CancelUpdateStack cannot be called from current stack status {}",
                    s.status
                ),
            ));
        }
        s.token = Some(token.to_owned());
        s.hanging = false;
        let targets: Vec<(String, String)> = s
            .events
            .iter()
            .filter(|e| !e.is_stack_level() && e.status == "UPDATE_IN_PROGRESS")
            .map(|e| (e.logical_id.clone(), e.resource_type.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        s.pending = rollback_steps(&targets, "Stack update cancelled");
        Ok(())
    }

    async fn set_termination_protection(&self, stack: &str, enabled: bool) -> CfnResult<()> {
        let mut st = self.lock();
        let name = st.live_name(stack).unwrap_or_default();
        st.call(format!("UpdateTerminationProtection {name} {enabled}"));
        match st.stacks.get_mut(&name) {
            Some(s) => {
                s.termination_protection = enabled;
                Ok(())
            }
            None => Err(api(
                "UpdateTerminationProtection",
                stack,
                "ValidationError",
                format!("Stack [{stack}] does not exist"),
            )),
        }
    }

    async fn stack_names(&self) -> CfnResult<Vec<String>> {
        Ok(self.lock().stacks.keys().cloned().collect())
    }

    async fn detect_stack_drift(&self, stack: &str) -> CfnResult<String> {
        let mut st = self.lock();
        let Some(name) = st.live_name(stack) else {
            return Err(api(
                "DetectStackDrift",
                stack,
                "ValidationError",
                format!("Stack [{stack}] does not exist"),
            ));
        };
        st.call(format!("DetectStackDrift {name}"));
        st.next_id += 1;
        let id = format!("fake-drift-{}", st.next_id);
        st.detections.insert(id.clone(), name);
        Ok(id)
    }

    async fn drift_detection(&self, stack: &str, id: &str) -> CfnResult<DriftDetection> {
        let st = self.lock();
        let Some(name) = st.detections.get(id) else {
            return Err(api(
                "DescribeStackDriftDetectionStatus",
                stack,
                "ValidationError",
                format!("Stack drift detection [{id}] does not exist"),
            ));
        };
        Ok(match st.drift_scripts.get(name) {
            Some(DriftScript::NeverFinishes) => DriftDetection {
                status: "DETECTION_IN_PROGRESS".into(),
                stack_drift_status: None,
                reason: None,
            },
            Some(DriftScript::Failed(reason)) => DriftDetection {
                status: "DETECTION_FAILED".into(),
                stack_drift_status: None,
                reason: Some(reason.clone()),
            },
            Some(DriftScript::Complete(drifts)) => DriftDetection {
                status: "DETECTION_COMPLETE".into(),
                stack_drift_status: Some(
                    if drifts
                        .iter()
                        .any(|d| d.status == "MODIFIED" || d.status == "DELETED")
                    {
                        "DRIFTED"
                    } else {
                        "IN_SYNC"
                    }
                    .into(),
                ),
                reason: None,
            },
            None => DriftDetection {
                status: "DETECTION_COMPLETE".into(),
                stack_drift_status: Some("IN_SYNC".into()),
                reason: None,
            },
        })
    }

    async fn resource_drifts(&self, stack: &str) -> CfnResult<Vec<ResourceDrift>> {
        let st = self.lock();
        let Some(s) = st.find(stack) else {
            return Err(api(
                "DescribeStackResourceDrifts",
                stack,
                "ValidationError",
                format!("Stack [{stack}] does not exist"),
            ));
        };
        Ok(match st.drift_scripts.get(&s.name) {
            Some(DriftScript::Complete(drifts)) => drifts.clone(),
            _ => targets_of(s.template.as_ref(), "CHECK")
                .into_iter()
                .map(|(logical_id, resource_type, _)| ResourceDrift {
                    logical_id,
                    resource_type,
                    status: "IN_SYNC".into(),
                    differences: vec![],
                })
                .collect(),
        })
    }
}

/// A drift-aware change set (`DeploymentMode: REVERT_DRIFT`) also modifies
/// every MODIFIED resource of the stack's drift script back to its template
/// value: one detail per drifted property, with the live value it had
/// (`Target.Drift.ActualValue`) and the value it gets (`AfterValue`), as
/// the API reference's ResourceTargetDefinition describes.
fn revert_scripted_drift(script: Option<&DriftScript>, changes: &mut Vec<ResourceChange>) {
    let Some(DriftScript::Complete(drifts)) = script else {
        return;
    };
    for d in drifts.iter().filter(|d| d.status == "MODIFIED") {
        let details = d.differences.iter().map(|p| ChangeDetail {
            attribute: Some("Properties".into()),
            name: p
                .path
                .trim_start_matches('/')
                .split('/')
                .next()
                .map(str::to_owned),
            requires_recreation: Some("Never".into()),
            evaluation: Some("Static".into()),
            change_source: Some("DirectModification".into()),
            causing_entity: None,
            path: Some(p.path.clone()),
            live_value: Some(p.actual.clone()),
            after_value: Some(p.expected.clone()),
        });
        match changes.iter_mut().find(|c| c.logical_id == d.logical_id) {
            Some(c) => c.details.extend(details),
            None => changes.push(ResourceChange {
                action: Action::Modify,
                logical_id: d.logical_id.clone(),
                physical_id: Some(format!("{}-physical", d.logical_id)),
                resource_type: d.resource_type.clone(),
                replacement: Some(Replacement::False),
                scope: vec!["Properties".into()],
                details: details.collect(),
            }),
        }
    }
}
