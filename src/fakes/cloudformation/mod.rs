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
//!
//! Split by job:
//! - this file: the fake's state (stacks, change sets, exports, the clock);
//! - [`script`]: what tests say will happen ([`Behavior`], [`ScriptedChangeSet`],
//!   [`Seed`]) and read back ([`FakeCloudFormation::calls`]);
//! - `template`: reading templates (resources, outputs, imports) and the
//!   resource diff CloudFormation would report;
//! - `simulate`: stack operations as steps of events, rollbacks, exports;
//! - `api`: the [`CloudFormation`] trait over all of that.

mod api;
pub mod script;
mod simulate;
mod template;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use serde_json::Value;

use crate::aws::cloudformation::{ChangeSetKind, ResourceChange, StackEvent};
use crate::aws::error::AwsError;
use crate::aws::CfnError;
#[allow(unused_imports)] // named in the docs above
use crate::aws::CloudFormation;

pub use script::{Behavior, DriftScript, ScriptedChangeSet, Seed, SeedEvent};

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
pub(crate) struct State {
    /// The region its ARNs name.
    region: String,
    tick: u64,
    next_id: u64,
    stacks: BTreeMap<String, FakeStack>,
    deleted: BTreeMap<String, FakeStack>,
    exports: BTreeMap<String, String>,
    change_sets: BTreeMap<String, FakeChangeSet>,
    scripted_change_sets: BTreeMap<String, VecDeque<ScriptedChangeSet>>,
    behaviors: BTreeMap<String, VecDeque<Behavior>>,
    /// What drift detection finds, per stack (default: every resource IN_SYNC).
    drift_scripts: BTreeMap<String, DriftScript>,
    /// Started detections: ID → stack.
    detections: BTreeMap<String, String>,
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
    /// Parameter values of the last successful operation.
    parameters: BTreeMap<String, String>,
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
    /// The template and parameter values take effect.
    Template(Option<Value>, BTreeMap<String, String>),
    Deleted,
}

#[derive(Debug, Clone)]
struct FakeChangeSet {
    id: String,
    name: String,
    stack: String,
    kind: ChangeSetKind,
    template: Option<Value>,
    parameters: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
    status: String,
    reason: Option<String>,
    changes: Vec<ResourceChange>,
    /// Describes left before CREATE_COMPLETE shows (creation takes a moment).
    describes_until_ready: u32,
}

/// A CloudFormation error answer, as the SDK implementation would return it.
fn api(operation: &'static str, stack: &str, code: &str, message: impl Into<String>) -> CfnError {
    AwsError::service("CloudFormation", operation, Some(stack), code, message)
}
