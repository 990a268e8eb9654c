//! The fake's scripting API: what the next operation or change set of a
//! stack does, stacks that exist before a test starts, and the calls made.

use std::collections::{BTreeMap, VecDeque};
use std::sync::MutexGuard;

use serde_json::Value;

use super::simulate::*;
use super::*;
use crate::aws::cloudformation::{ResourceChange, ResourceDrift};

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

/// What the next drift detections of a stack find, shaped like the API
/// reference's DescribeStackDriftDetectionStatus and
/// DescribeStackResourceDrifts responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriftScript {
    /// DETECTION_COMPLETE with these resource drifts (resources of types
    /// CloudFormation cannot check are simply absent, as in the API).
    Complete(Vec<ResourceDrift>),
    /// DETECTION_FAILED with this `DetectionStatusReason`.
    Failed(String),
    /// DETECTION_IN_PROGRESS for ever.
    NeverFinishes,
}

/// A stack that exists before the test starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    pub name: String,
    pub status: String,
    pub status_reason: Option<String>,
    /// The template the stack was last deployed with (JSON), if any.
    pub template: Option<String>,
    /// The parameter values it was deployed with.
    pub parameters: BTreeMap<String, String>,
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

impl FakeCloudFormation {
    pub fn new() -> Self {
        Self::in_region("us-east-1")
    }

    /// A fake of CloudFormation in `region`: its stack and change set ARNs
    /// name that region, as the real ones do.
    pub fn in_region(region: &str) -> Self {
        FakeCloudFormation {
            state: Mutex::new(State {
                region: region.to_owned(),
                ..State::default()
            }),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
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
    /// What drift detection on `stack` finds from now on.
    pub fn script_drift(&self, stack: &str, script: DriftScript) {
        self.lock().drift_scripts.insert(stack.to_owned(), script);
    }

    /// The current value of output `key` of `stack`, as DescribeStacks
    /// reports it (for seeding consumers with their producers' values).
    pub fn output(&self, stack: &str, key: &str) -> Option<String> {
        let st = self.lock();
        st.find(stack)
            .map(to_stack)
            .and_then(|s| s.output(key).map(str::to_owned))
    }

    pub fn seed_stack(&self, seed: Seed) {
        let mut st = self.lock();
        let id = format!(
            "arn:aws:cloudformation:{}:123456789012:stack/{}/seed-{}",
            st.region, seed.name, st.next_id
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
            parameters: seed.parameters.clone(),
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
