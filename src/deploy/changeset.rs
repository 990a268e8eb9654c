//! One change set, start to finish: build the request from the rendered
//! stack and its manifest entry, create it, wait until CloudFormation has
//! computed it, and say what came of it as a typed [`ChangeSetOutcome`].
//!
//! `plan.rs` makes one per stack up front; `apply.rs` makes "late" ones for
//! stacks that could only be planned after their dependencies deployed or a
//! stuck state was recovered. Both read the outcome, never CloudFormation's
//! status strings (those are read once, in `ChangeSet::is_pending` /
//! `is_ready` / `is_empty_failure` in `src/aws/cloudformation.rs`).

use std::collections::BTreeMap;

use stacks::render::{Rendered, RenderedStack};
use stacks::stacks::StackId;

use super::plan::{planned_change, PlannedChange};
use super::Backoff;
use crate::aws::cloudformation::{is_no_changes, ChangeSet, ChangeSetKind, ChangeSetRequest};
use crate::aws::{CfnError, CloudFormation};

/// What became of a change set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeSetOutcome {
    /// Computed and ready to execute, with its resource changes.
    Ready {
        id: String,
        changes: Vec<PlannedChange>,
    },
    /// CloudFormation found nothing to change (it fails such a change set;
    /// that is an answer, not an error). The failed change set `id`
    /// remains; `None` when the endpoint refused to create one for that
    /// reason (moto).
    NoChanges { id: Option<String> },
    /// CloudFormation refused it: at creation (`id` is `None`) or while
    /// computing it. `reason` is CloudFormation's.
    Rejected { id: Option<String>, reason: String },
}

/// How this run makes its change sets.
#[derive(Debug, Clone, Copy)]
pub struct How<'a> {
    /// The change set's name (the same for every stack of a run).
    pub name: &'a str,
    pub backoff: Backoff,
    /// `DeploymentMode: REVERT_DRIFT` for updates.
    pub revert_drift: bool,
}

/// Creates the change set `name` of kind `kind` for `s`, waits for it and
/// classifies it. Errors are calls that got no answer; an answer that
/// refuses the change set is [`ChangeSetOutcome::Rejected`].
pub async fn create(
    cfn: &dyn CloudFormation,
    rendered: &Rendered,
    s: &RenderedStack,
    kind: ChangeSetKind,
    parameters: &BTreeMap<String, String>,
    how: How<'_>,
) -> Result<ChangeSetOutcome, CfnError> {
    let How {
        name,
        backoff,
        revert_drift,
    } = how;
    let request = request(rendered, s, kind, name, parameters, revert_drift);
    let id = match cfn.create_change_set(&request).await {
        Ok(id) => id,
        Err(e) if e.is_answer() && is_no_changes(e.message()) => {
            return Ok(ChangeSetOutcome::NoChanges { id: None });
        }
        Err(e) if e.is_answer() => {
            let reason = if e.message().is_empty() {
                e.reason()
            } else {
                e.message().to_owned()
            };
            return Ok(ChangeSetOutcome::Rejected { id: None, reason });
        }
        Err(e) => return Err(e),
    };
    let cs = wait(cfn, &s.stack_name, &id, backoff).await?;
    Ok(classify(rendered, s.id, id, cs))
}

fn classify(rendered: &Rendered, stack: StackId, id: String, cs: ChangeSet) -> ChangeSetOutcome {
    if cs.is_empty_failure() {
        ChangeSetOutcome::NoChanges { id: Some(id) }
    } else if cs.is_ready() {
        let changes = cs
            .changes
            .iter()
            .map(|c| planned_change(rendered, stack, c))
            .collect();
        ChangeSetOutcome::Ready { id, changes }
    } else {
        let reason = cs
            .status_reason
            .unwrap_or_else(|| format!("change set {}", cs.status));
        ChangeSetOutcome::Rejected {
            id: Some(id),
            reason,
        }
    }
}

/// The change set for `s` with the manifest's tags and capabilities and
/// the references' values (`references.rs`).
pub fn request(
    rendered: &Rendered,
    s: &RenderedStack,
    kind: ChangeSetKind,
    name: &str,
    parameters: &BTreeMap<String, String>,
    revert_drift: bool,
) -> ChangeSetRequest {
    let m = rendered.manifest.stacks.get(&s.id);
    let mut tags = rendered.manifest.tags.clone();
    tags.insert("Stack".into(), s.id.name().into());
    ChangeSetRequest {
        stack_name: s.stack_name.clone(),
        change_set_name: name.to_owned(),
        kind,
        template_body: s.body.clone(),
        parameters: parameters.clone(),
        // Explicit, from the manifest: never "whatever the template needs".
        capabilities: m
            .map(|m| m.capabilities.iter().map(|c| (*c).to_owned()).collect())
            .unwrap_or_default(),
        tags,
        description: Some(format!(
            "mangactl {} ({})",
            rendered.manifest.environment, s.id
        )),
        revert_drift,
    }
}

/// Polls a change set until CloudFormation has computed it.
pub(super) async fn wait(
    cfn: &dyn CloudFormation,
    stack: &str,
    id: &str,
    backoff: Backoff,
) -> Result<ChangeSet, CfnError> {
    let mut delay = backoff.initial;
    loop {
        let cs = cfn.describe_change_set(stack, id).await?;
        if !cs.is_pending() {
            return Ok(cs);
        }
        tokio::time::sleep(delay).await;
        delay = backoff.next(delay);
    }
}
