//! A scripted, in-memory [`CloudFormation`] for tests of `src/deploy/`: the
//! states moto cannot produce (per-resource events, failures with
//! rollback, replacements in change sets, ROLLBACK_COMPLETE,
//! UPDATE_ROLLBACK_FAILED, stacks busy with someone else's update).
//!
//! It behaves like CloudFormation where the deploy logic depends on it:
//! CREATE change sets make a `REVIEW_IN_PROGRESS` stack, empty change sets
//! fail with CloudFormation's "didn't contain changes" reason, operations
//! run asynchronously (each `describe_stack` advances a running operation by
//! one step, so pollers see the `*_IN_PROGRESS` states and events arrive
//! over several polls), protected stacks refuse deletion, exports appear
//! when a stack completes. Event shapes and reasons follow the
//! DescribeStackEvents/DescribeChangeSet examples of the API reference.
//!
//! Tests script what happens next per stack with [`FakeCloudFormation::script`]
//! (an operation's [`Behavior`]) and [`FakeCloudFormation::script_change_set`]
//! (a change set's answer), seed existing stacks with
//! [`FakeCloudFormation::seed_stack`], and read [`FakeCloudFormation::calls`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde_json::Value;

use super::cloudformation::{
    Action, CfnError, CfnResult, ChangeDetail, ChangeSet, ChangeSetKind, ChangeSetRequest,
    CloudFormation, Replacement, ResourceChange, Stack, StackEvent, StackOutput, StackStatus,
};

/// What the next operation on a stack does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behavior {
    /// Every resource goes IN_PROGRESS then COMPLETE.
    Succeed,
    /// `logical_id` fails with `reason`; resources still in progress are
    /// cancelled ("Resource creation cancelled") and the stack rolls back.
    FailResource { logical_id: String, reason: String },
    /// Like `FailResource` on an update, but the rollback fails too
    /// (`rollback_reason` on the same resource): UPDATE_ROLLBACK_FAILED.
    FailRollback {
        logical_id: String,
        reason: String,
        rollback_reason: String,
    },
    /// Stays in progress (one resource event per poll) until cancelled.
    Hang,
}

/// The answer the next change set of a stack gets instead of the computed diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptedChangeSet {
    pub status: String,
    pub status_reason: Option<String>,
    pub changes: Vec<ResourceChange>,
}

/// A stack that exists before the test starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    pub name: String,
    pub status: String,
    pub status_reason: Option<String>,
    /// The template the stack was last deployed with (JSON), if any.
    pub template: Option<String>,
    pub termination_protection: bool,
    /// Its last events, oldest first.
    pub events: Vec<SeedEvent>,
}

/// A past event of a seeded stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedEvent {
    /// The stack's name for stack-level events.
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: Option<String>,
    /// The client request token of the operation (the "who").
    pub token: Option<String>,
}

impl SeedEvent {
    pub fn new(
        logical_id: &str,
        resource_type: &str,
        status: &str,
        reason: Option<&str>,
        token: Option<&str>,
    ) -> Self {
        SeedEvent {
            logical_id: logical_id.to_owned(),
            resource_type: resource_type.to_owned(),
            status: status.to_owned(),
            reason: reason.map(str::to_owned),
            token: token.map(str::to_owned),
        }
    }
}

#[derive(Debug)]
pub struct FakeCloudFormation {
    state: Mutex<State>,
}

impl Default for FakeCloudFormation {
    fn default() -> Self {
        Self::new()
    }
}

/// 2024-05-01T12:00:00Z: the fake's clock starts here and ticks a second per event.
const EPOCH: u64 = 1_714_564_800;

#[derive(Debug, Default)]
struct State {
    tick: u64,
    next_id: u64,
    stacks: BTreeMap<String, FakeStack>,
    deleted: BTreeMap<String, FakeStack>,
    exports: BTreeMap<String, String>,
    change_sets: BTreeMap<String, FakeChangeSet>,
    scripted_change_sets: BTreeMap<String, VecDeque<ScriptedChangeSet>>,
    behaviors: BTreeMap<String, VecDeque<Behavior>>,
    calls: Vec<String>,
}

#[derive(Debug, Clone)]
struct FakeStack {
    name: String,
    id: String,
    status: String,
    reason: Option<String>,
    termination_protection: bool,
    template: Option<Value>,
    tags: BTreeMap<String, String>,
    events: Vec<StackEvent>,
    /// The running operation, one step per `describe_stack`.
    pending: VecDeque<Step>,
    /// The operation's current token, stamped on the events it produces.
    token: Option<String>,
    /// Whether a `Hang` operation is running (endless until cancelled).
    hanging: bool,
}

#[derive(Debug, Clone)]
struct Step {
    /// (logical ID, type, status, reason); a logical ID of `""` is the stack itself.
    events: Vec<(String, String, String, Option<String>)>,
    status: Option<String>,
    /// Template and exports take effect with this step (a completed operation).
    commit: Option<Commit>,
}

#[derive(Debug, Clone)]
enum Commit {
    Template(Option<Value>),
    Deleted,
}

#[derive(Debug, Clone)]
struct FakeChangeSet {
    id: String,
    name: String,
    stack: String,
    kind: ChangeSetKind,
    template: Option<Value>,
    tags: BTreeMap<String, String>,
    status: String,
    reason: Option<String>,
    changes: Vec<ResourceChange>,
    /// Describes left before CREATE_COMPLETE shows (creation takes a moment).
    describes_until_ready: u32,
}

fn api(operation: &'static str, stack: &str, code: &str, message: impl Into<String>) -> CfnError {
    CfnError::Api {
        operation,
        stack: stack.to_owned(),
        code: code.to_owned(),
        message: message.into(),
    }
}

fn resources(template: Option<&Value>) -> BTreeMap<String, Value> {
    template
        .and_then(|t| t.get("Resources"))
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn resource_type(v: &Value) -> String {
    v.get("Type")
        .and_then(Value::as_str)
        .unwrap_or("AWS::CloudFormation::CustomResource")
        .to_owned()
}

fn changed_properties(old: &Value, new: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let o = old
        .get("Properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let n = new
        .get("Properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let keys: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
    keys.into_iter()
        .filter(|k| o.get(*k) != n.get(*k))
        .cloned()
        .collect()
}

/// The diff CloudFormation would report for a template change, without
/// replacements (tests script those explicitly).
fn diff(old: Option<&Value>, new: Option<&Value>) -> Vec<ResourceChange> {
    let before = resources(old);
    let after = resources(new);
    let mut out = Vec::new();
    for (id, v) in &after {
        match before.get(id) {
            None => out.push(ResourceChange {
                action: Action::Add,
                logical_id: id.clone(),
                physical_id: None,
                resource_type: resource_type(v),
                replacement: None,
                scope: vec![],
                details: vec![],
            }),
            Some(old) if old != v => {
                let props = changed_properties(old, v);
                out.push(ResourceChange {
                    action: Action::Modify,
                    logical_id: id.clone(),
                    physical_id: Some(format!("{id}-physical")),
                    resource_type: resource_type(v),
                    replacement: Some(Replacement::False),
                    scope: vec!["Properties".into()],
                    details: props
                        .into_iter()
                        .map(|p| ChangeDetail {
                            attribute: Some("Properties".into()),
                            name: Some(p),
                            requires_recreation: Some("Never".into()),
                            evaluation: Some("Static".into()),
                            change_source: Some("DirectModification".into()),
                            causing_entity: None,
                        })
                        .collect(),
                });
            }
            Some(_) => {}
        }
    }
    for (id, v) in &before {
        if !after.contains_key(id) {
            out.push(ResourceChange {
                action: Action::Remove,
                logical_id: id.clone(),
                physical_id: Some(format!("{id}-physical")),
                resource_type: resource_type(v),
                replacement: None,
                scope: vec![],
                details: vec![],
            });
        }
    }
    out
}

fn ev(
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

const STACK: &str = "AWS::CloudFormation::Stack";

/// The steps of a stack operation (`verb`: CREATE, UPDATE or DELETE) over
/// `targets` (logical ID, type, the resource's own verb: an update creates
/// added resources and deletes removed ones).
fn operation_steps(
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

fn rollback_steps(targets: &[(String, String)], first_reason: &str) -> VecDeque<Step> {
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

impl FakeCloudFormation {
    pub fn new() -> Self {
        FakeCloudFormation {
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock has failed already;
        // the state is still readable for its report.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next operation on `stack` (execute, delete, continue-rollback) behaves like this.
    pub fn script(&self, stack: &str, behavior: Behavior) {
        self.lock()
            .behaviors
            .entry(stack.to_owned())
            .or_default()
            .push_back(behavior);
    }

    /// The next change set created for `stack` gets this answer.
    pub fn script_change_set(&self, stack: &str, answer: ScriptedChangeSet) {
        self.lock()
            .scripted_change_sets
            .entry(stack.to_owned())
            .or_default()
            .push_back(answer);
    }

    /// Creates `seed` as an existing stack.
    pub fn seed_stack(&self, seed: Seed) {
        let mut st = self.lock();
        let id = format!(
            "arn:aws:cloudformation:us-east-1:123456789012:stack/{}/seed-{}",
            seed.name, st.next_id
        );
        st.next_id += 1;
        let template = seed
            .template
            .as_deref()
            .and_then(|t| serde_json::from_str::<Value>(t).ok());
        let mut stack = FakeStack {
            name: seed.name.clone(),
            id,
            status: seed.status.clone(),
            reason: seed.status_reason.clone(),
            termination_protection: seed.termination_protection,
            template,
            tags: BTreeMap::new(),
            events: Vec::new(),
            pending: VecDeque::new(),
            token: None,
            hanging: false,
        };
        for e in seed.events {
            stack.token = e.token;
            st.tick += 1;
            push_event(
                &mut stack,
                st.tick,
                &e.logical_id,
                &e.resource_type,
                &e.status,
                e.reason,
            );
        }
        stack.token = None;
        if stack.status.ends_with("_COMPLETE") && !stack.status.contains("ROLLBACK")
            || stack.status == "UPDATE_ROLLBACK_COMPLETE"
        {
            publish_exports(&mut st.exports, &stack);
        }
        st.stacks.insert(seed.name, stack);
    }

    /// Every call so far, as `Operation stack [detail]`.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// The current status of `stack`, without advancing it.
    pub fn status(&self, stack: &str) -> Option<String> {
        self.lock().stacks.get(stack).map(|s| s.status.clone())
    }

    pub fn termination_protection(&self, stack: &str) -> Option<bool> {
        self.lock()
            .stacks
            .get(stack)
            .map(|s| s.termination_protection)
    }

    /// Change sets that still exist.
    pub fn change_set_count(&self) -> usize {
        self.lock().change_sets.len()
    }

    /// Stack-level tags the last executed change set gave `stack`.
    pub fn tags(&self, stack: &str) -> BTreeMap<String, String> {
        self.lock()
            .stacks
            .get(stack)
            .map(|s| s.tags.clone())
            .unwrap_or_default()
    }
}

fn push_event(
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

fn publish_exports(exports: &mut BTreeMap<String, String>, stack: &FakeStack) {
    exports.retain(|_, owner| *owner != stack.name);
    for (_, output) in outputs_of(stack.template.as_ref()) {
        if let Some(name) = output {
            exports.insert(name, stack.name.clone());
        }
    }
}

/// (output key, export name) of a template.
fn outputs_of(template: Option<&Value>) -> Vec<(String, Option<String>)> {
    template
        .and_then(|t| t.get("Outputs"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.pointer("/Export/Name")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

impl State {
    fn call(&mut self, s: String) {
        self.calls.push(s);
    }

    fn behavior(&mut self, stack: &str) -> Behavior {
        self.behaviors
            .get_mut(stack)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Behavior::Succeed)
    }

    /// Runs one step of `stack`'s pending operation.
    fn advance(&mut self, name: &str) {
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
            Some(Commit::Template(t)) => {
                stack.template = t;
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

    fn find(&self, name: &str) -> Option<&FakeStack> {
        self.stacks
            .get(name)
            .or_else(|| self.stacks.values().find(|s| s.id == name))
            .or_else(|| self.deleted.get(name))
    }

    fn live_name(&self, name_or_id: &str) -> Option<String> {
        self.stacks
            .get(name_or_id)
            .or_else(|| self.stacks.values().find(|s| s.id == name_or_id))
            .map(|s| s.name.clone())
    }
}

fn to_stack(s: &FakeStack) -> Stack {
    Stack {
        name: s.name.clone(),
        id: s.id.clone(),
        status: StackStatus::new(&s.status),
        status_reason: s.reason.clone(),
        termination_protection: s.termination_protection,
        outputs: if s.status.ends_with("_COMPLETE") {
            outputs_of(s.template.as_ref())
                .into_iter()
                .map(|(key, export_name)| StackOutput {
                    value: format!("fake-{}-{key}", s.name),
                    key,
                    export_name,
                    description: None,
                })
                .collect()
        } else {
            vec![]
        },
        tags: s.tags.clone(),
    }
}

fn targets_of(template: Option<&Value>, verb: &str) -> Vec<(String, String, String)> {
    resources(template)
        .into_iter()
        .map(|(id, v)| (id, resource_type(&v), verb.to_owned()))
        .collect()
}

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

    async fn export_names(&self) -> CfnResult<BTreeSet<String>> {
        Ok(self.lock().exports.keys().cloned().collect())
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
                "arn:aws:cloudformation:us-east-1:123456789012:stack/{}/fake-{n}",
                r.stack_name
            );
            let mut stack = FakeStack {
                name: r.stack_name.clone(),
                id,
                status: "REVIEW_IN_PROGRESS".into(),
                reason: None,
                termination_protection: false,
                template: None,
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
        let old = existing.as_ref().and_then(|s| s.template.clone());
        let (status, reason, changes) = match st
            .scripted_change_sets
            .get_mut(&r.stack_name)
            .and_then(VecDeque::pop_front)
        {
            Some(s) => (s.status, s.status_reason, s.changes),
            None => {
                let changes = diff(old.as_ref(), template.as_ref());
                if changes.is_empty() && r.kind == ChangeSetKind::Update {
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
            "arn:aws:cloudformation:us-east-1:123456789012:changeSet/{}/fake-{n}",
            r.change_set_name
        );
        st.change_sets.insert(
            id.clone(),
            FakeChangeSet {
                id: id.clone(),
                name: r.change_set_name.clone(),
                stack: r.stack_name.clone(),
                kind: r.kind,
                template,
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
        s.pending = operation_steps(
            verb,
            &targets,
            &behavior,
            Commit::Template(cs.template.clone()),
        );
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
}

fn collect_imports(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "Fn::ImportValue" {
                    if let Some(s) = x.as_str() {
                        out.push(s.to_owned());
                        continue;
                    }
                }
                collect_imports(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_imports(x, out)),
        _ => {}
    }
}
