//! The [`CloudFormation`] trait: the few CloudFormation calls `plan`, `apply`
//! and `destroy` make, in terms of plain types defined here, so the deploy
//! logic (`src/deploy/`) never touches SDK types and tests can run it
//! against the scripted fake (`src/fakes/`, feature `fakes`).
//!
//! [`SdkCloudFormation`] implements it with `aws-sdk-cloudformation`. Its
//! errors are [`CfnError`]s (`error.rs`'s `AwsError`) carrying the
//! operation, the stack, CloudFormation's error code and message, the HTTP
//! status and the request id.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use async_trait::async_trait;
use aws_sdk_cloudformation::config::http::HttpResponse;
use aws_sdk_cloudformation::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudformation::primitives::DateTime;
use aws_sdk_cloudformation::types;
use aws_sdk_cloudformation::Client;

use super::error::{AwsError, ErrorClass};

/// A failed CloudFormation call: the workspace's one AWS error type
/// (`error.rs`), which names the operation, the stack, the code, message,
/// HTTP status and request id, and classifies the failure.
pub type CfnError = AwsError;

const SERVICE: &str = "CloudFormation";

pub type CfnResult<T> = Result<T, CfnError>;

/// A stack status such as `UPDATE_ROLLBACK_FAILED`. Kept as CloudFormation's
/// string, because new statuses appear over time; the predicates below are
/// what the deploy logic asks of it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StackStatus(pub String);

impl StackStatus {
    pub fn new(s: impl Into<String>) -> Self {
        StackStatus(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An operation is running. `REVIEW_IN_PROGRESS` is not one: it is the
    /// shell of a stack whose first change set was never executed.
    pub fn is_in_progress(&self) -> bool {
        self.0.ends_with("_IN_PROGRESS") && self.0 != "REVIEW_IN_PROGRESS"
    }

    pub fn is_review(&self) -> bool {
        self.0 == "REVIEW_IN_PROGRESS"
    }

    /// The last operation succeeded.
    pub fn is_success(&self) -> bool {
        matches!(
            self.0.as_str(),
            "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE" | "DELETE_COMPLETE"
        )
    }

    /// Rolled back or failed: the last operation did not do what was asked.
    pub fn is_failure(&self) -> bool {
        self.0.ends_with("_FAILED") || self.0.ends_with("ROLLBACK_COMPLETE")
    }
}

impl fmt::Display for StackStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackOutput {
    pub key: String,
    pub value: String,
    pub export_name: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    pub name: String,
    pub id: String,
    pub status: StackStatus,
    pub status_reason: Option<String>,
    pub termination_protection: bool,
    pub outputs: Vec<StackOutput>,
    /// The parameter values the stack was last deployed with (`NoEcho`
    /// values read as `****`).
    pub parameters: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    /// LastUpdatedTime, or CreationTime for a stack never updated.
    pub last_updated: Option<SystemTime>,
}

impl Stack {
    /// The value of output `key`, if the stack has it.
    pub fn output(&self, key: &str) -> Option<&str> {
        self.outputs
            .iter()
            .find(|o| o.key == key)
            .map(|o| o.value.as_str())
    }

    /// Whether any output carries an `Export` (a deployment made before
    /// references became parameters: `src/deploy/references.rs`).
    pub fn has_exports(&self) -> bool {
        self.outputs.iter().any(|o| o.export_name.is_some())
    }
}

/// One entry of DescribeStackEvents. Stack-level events have the stack's
/// name as `logical_id` and `AWS::CloudFormation::Stack` as type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackEvent {
    pub event_id: String,
    pub stack_name: String,
    pub logical_id: String,
    pub physical_id: Option<String>,
    pub resource_type: String,
    pub status: String,
    pub reason: Option<String>,
    pub timestamp: SystemTime,
    /// The token the caller passed; `Console-…` for the console, ours is
    /// `mangactl-<user>-…`. The only "who" CloudFormation records on events.
    pub client_request_token: Option<String>,
}

impl StackEvent {
    pub fn is_stack_level(&self) -> bool {
        self.resource_type == "AWS::CloudFormation::Stack" && self.logical_id == self.stack_name
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeSetKind {
    Create,
    Update,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSetRequest {
    pub stack_name: String,
    pub change_set_name: String,
    pub kind: ChangeSetKind,
    pub template_body: String,
    /// Parameter values (every reference to another stack's output).
    pub parameters: BTreeMap<String, String>,
    pub capabilities: Vec<String>,
    pub tags: BTreeMap<String, String>,
    pub description: Option<String>,
    /// `DeploymentMode: REVERT_DRIFT`: a drift-aware change set, which also
    /// resets live drift to the template (updates only).
    pub revert_drift: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Action {
    Add,
    Modify,
    Remove,
    Import,
    Dynamic,
    Other(String),
}

impl Action {
    fn parse(s: &str) -> Action {
        match s {
            "Add" => Action::Add,
            "Modify" => Action::Modify,
            "Remove" => Action::Remove,
            "Import" => Action::Import,
            "Dynamic" => Action::Dynamic,
            other => Action::Other(other.to_owned()),
        }
    }
}

/// DescribeChangeSet's `Replacement`: `True`, `False` or `Conditional`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Replacement {
    True,
    False,
    Conditional,
}

/// One `ResourceChangeDetail`: what changes and whether it recreates.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ChangeDetail {
    /// `Properties`, `Tags`, `Metadata`, …
    pub attribute: Option<String>,
    /// The property name, for `Properties`.
    pub name: Option<String>,
    /// `Never`, `Conditionally` or `Always`.
    pub requires_recreation: Option<String>,
    /// `Static` or `Dynamic`.
    pub evaluation: Option<String>,
    /// `ResourceReference`, `ParameterReference`, `ResourceAttribute`, `DirectModification`, `Automatic`.
    pub change_source: Option<String>,
    /// The parameter, resource or attribute that causes the change, when not a direct modification.
    pub causing_entity: Option<String>,
    /// Drift-aware change sets only: the property path, the live value it
    /// had drifted to (`Drift.ActualValue`) and the value it gets.
    pub path: Option<String>,
    pub live_value: Option<String>,
    pub after_value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResourceChange {
    pub action: Action,
    pub logical_id: String,
    pub physical_id: Option<String>,
    pub resource_type: String,
    pub replacement: Option<Replacement>,
    pub scope: Vec<String>,
    pub details: Vec<ChangeDetail>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSet {
    pub id: String,
    pub stack_id: Option<String>,
    /// `CREATE_PENDING`, `CREATE_IN_PROGRESS`, `CREATE_COMPLETE`, `FAILED`, …
    pub status: String,
    pub execution_status: Option<String>,
    pub status_reason: Option<String>,
    pub changes: Vec<ResourceChange>,
}

impl ChangeSet {
    pub fn is_pending(&self) -> bool {
        matches!(
            self.status.as_str(),
            "CREATE_PENDING" | "CREATE_IN_PROGRESS"
        )
    }

    /// Computed and executable.
    pub fn is_ready(&self) -> bool {
        self.status == "CREATE_COMPLETE"
    }

    /// CloudFormation fails a change set that changes nothing; that is an
    /// answer ("no changes"), not an error. Both wordings occur.
    pub fn is_empty_failure(&self) -> bool {
        self.status == "FAILED" && self.status_reason.as_deref().is_some_and(is_no_changes)
    }
}

/// DescribeStackDriftDetectionStatus: where a drift detection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftDetection {
    /// `DETECTION_IN_PROGRESS`, `DETECTION_COMPLETE` or `DETECTION_FAILED`.
    pub status: String,
    /// `DRIFTED`, `IN_SYNC`, `UNKNOWN` or `NOT_CHECKED`, once complete.
    pub stack_drift_status: Option<String>,
    pub reason: Option<String>,
}

impl DriftDetection {
    pub fn is_in_progress(&self) -> bool {
        self.status == "DETECTION_IN_PROGRESS"
    }

    pub fn is_complete(&self) -> bool {
        self.status == "DETECTION_COMPLETE"
    }
}

/// One `StackResourceDrift` of DescribeStackResourceDrifts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResourceDrift {
    pub logical_id: String,
    pub resource_type: String,
    /// `IN_SYNC`, `MODIFIED`, `DELETED`, `NOT_CHECKED`, `UNKNOWN` or `UNSUPPORTED`.
    pub status: String,
    pub differences: Vec<PropertyDifference>,
}

/// One `PropertyDifference`: expected (template) against actual.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PropertyDifference {
    pub path: String,
    pub expected: String,
    pub actual: String,
    /// `ADD`, `REMOVE` or `NOT_EQUAL`.
    pub kind: String,
}

/// CloudFormation's two wordings for "nothing to change" (a failed change
/// set's reason; moto also answers CreateChangeSet itself with the second).
pub fn is_no_changes(reason: &str) -> bool {
    reason.contains("didn't contain changes") || reason.contains("No updates are to be performed")
}

/// The CloudFormation calls the deploy commands make.
#[async_trait]
pub trait CloudFormation: Send + Sync + fmt::Debug {
    /// The stack named (or with the ID) `name`; `None` if it does not exist.
    async fn describe_stack(&self, name: &str) -> CfnResult<Option<Stack>>;
    /// The most recent events of the stack, newest first (one page).
    async fn stack_events(&self, name: &str) -> CfnResult<Vec<StackEvent>>;
    /// The template the stack was last deployed with (GetTemplate,
    /// `TemplateStage` Original); `None` if the stack does not exist.
    async fn template(&self, name: &str) -> CfnResult<Option<String>>;
    /// Starts creating a change set; returns its ID.
    async fn create_change_set(&self, request: &ChangeSetRequest) -> CfnResult<String>;
    /// The change set with all its changes (every page).
    async fn describe_change_set(&self, stack: &str, change_set: &str) -> CfnResult<ChangeSet>;
    async fn delete_change_set(&self, stack: &str, change_set: &str) -> CfnResult<()>;
    async fn execute_change_set(&self, stack: &str, change_set: &str, token: &str)
        -> CfnResult<()>;
    async fn delete_stack(&self, stack: &str, token: &str) -> CfnResult<()>;
    async fn continue_update_rollback(&self, stack: &str, token: &str) -> CfnResult<()>;
    async fn cancel_update_stack(&self, stack: &str, token: &str) -> CfnResult<()>;
    async fn set_termination_protection(&self, stack: &str, enabled: bool) -> CfnResult<()>;
    /// Names of the stacks that exist (ListStacks, every status but
    /// DELETE_COMPLETE), every page.
    async fn stack_names(&self) -> CfnResult<Vec<String>>;
    /// DetectStackDrift: starts a drift detection; returns its ID.
    async fn detect_stack_drift(&self, stack: &str) -> CfnResult<String>;
    /// DescribeStackDriftDetectionStatus of detection `id` on `stack`.
    async fn drift_detection(&self, stack: &str, id: &str) -> CfnResult<DriftDetection>;
    /// DescribeStackResourceDrifts: every checked resource (every page).
    async fn resource_drifts(&self, stack: &str) -> CfnResult<Vec<ResourceDrift>>;
}

/// [`CloudFormation`] through the AWS SDK.
#[derive(Debug, Clone)]
pub struct SdkCloudFormation {
    client: Client,
}

impl SdkCloudFormation {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        SdkCloudFormation {
            client: Client::new(config),
        }
    }
}

fn sdk_error<E>(operation: &'static str, stack: &str, err: SdkError<E, HttpResponse>) -> CfnError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    AwsError::from_sdk(SERVICE, operation, Some(stack), err)
}

fn time(t: Option<&DateTime>) -> SystemTime {
    t.and_then(|t| SystemTime::try_from(*t).ok())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_owned)
}

fn stack_from_sdk(s: &types::Stack) -> Stack {
    Stack {
        name: s.stack_name().unwrap_or_default().to_owned(),
        id: s.stack_id().unwrap_or_default().to_owned(),
        status: StackStatus::new(s.stack_status().map(|s| s.as_str()).unwrap_or("UNKNOWN")),
        status_reason: owned(s.stack_status_reason()),
        termination_protection: s.enable_termination_protection().unwrap_or(false),
        last_updated: s
            .last_updated_time()
            .or(s.creation_time())
            .map(|t| time(Some(t))),
        outputs: s
            .outputs()
            .iter()
            .map(|o| StackOutput {
                key: o.output_key().unwrap_or_default().to_owned(),
                value: o.output_value().unwrap_or_default().to_owned(),
                export_name: owned(o.export_name()),
                description: owned(o.description()),
            })
            .collect(),
        parameters: s
            .parameters()
            .iter()
            .map(|p| {
                (
                    p.parameter_key().unwrap_or_default().to_owned(),
                    p.parameter_value().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        tags: s
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
    }
}

fn change_from_sdk(c: &types::Change) -> Option<ResourceChange> {
    let rc = c.resource_change()?;
    Some(ResourceChange {
        action: Action::parse(rc.action().map(|a| a.as_str()).unwrap_or("Unknown")),
        logical_id: rc.logical_resource_id().unwrap_or_default().to_owned(),
        physical_id: owned(rc.physical_resource_id()),
        resource_type: rc.resource_type().unwrap_or_default().to_owned(),
        replacement: rc.replacement().and_then(|r| match r.as_str() {
            "True" => Some(Replacement::True),
            "False" => Some(Replacement::False),
            "Conditional" => Some(Replacement::Conditional),
            _ => None,
        }),
        scope: rc.scope().iter().map(|s| s.as_str().to_owned()).collect(),
        details: rc
            .details()
            .iter()
            .map(|d| ChangeDetail {
                attribute: d
                    .target()
                    .and_then(|t| t.attribute())
                    .map(|a| a.as_str().to_owned()),
                name: d.target().and_then(|t| t.name()).map(str::to_owned),
                requires_recreation: d
                    .target()
                    .and_then(|t| t.requires_recreation())
                    .map(|r| r.as_str().to_owned()),
                evaluation: d.evaluation().map(|e| e.as_str().to_owned()),
                change_source: d.change_source().map(|c| c.as_str().to_owned()),
                causing_entity: owned(d.causing_entity()),
                path: d.target().and_then(|t| t.path()).map(str::to_owned),
                live_value: d
                    .target()
                    .and_then(|t| t.drift())
                    .and_then(|dr| dr.actual_value())
                    .map(str::to_owned),
                after_value: d.target().and_then(|t| t.after_value()).map(str::to_owned),
            })
            .collect(),
    })
}

#[async_trait]
impl CloudFormation for SdkCloudFormation {
    async fn describe_stack(&self, name: &str) -> CfnResult<Option<Stack>> {
        match self.client.describe_stacks().stack_name(name).send().await {
            Ok(out) => Ok(out.stacks().first().map(stack_from_sdk)),
            Err(e) => {
                let err = sdk_error("DescribeStacks", name, e);
                if err.class == ErrorClass::NotFound {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn stack_events(&self, name: &str) -> CfnResult<Vec<StackEvent>> {
        let out = self
            .client
            .describe_stack_events()
            .stack_name(name)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeStackEvents", name, e))?;
        Ok(out
            .stack_events()
            .iter()
            .map(|e| StackEvent {
                event_id: e.event_id().unwrap_or_default().to_owned(),
                stack_name: e.stack_name().unwrap_or_default().to_owned(),
                logical_id: e.logical_resource_id().unwrap_or_default().to_owned(),
                physical_id: owned(e.physical_resource_id()),
                resource_type: e.resource_type().unwrap_or_default().to_owned(),
                status: e
                    .resource_status()
                    .map(|s| s.as_str())
                    .unwrap_or("UNKNOWN")
                    .to_owned(),
                reason: owned(e.resource_status_reason()),
                timestamp: time(e.timestamp()),
                client_request_token: owned(e.client_request_token()),
            })
            .collect())
    }

    async fn template(&self, name: &str) -> CfnResult<Option<String>> {
        match self
            .client
            .get_template()
            .stack_name(name)
            .template_stage(types::TemplateStage::Original)
            .send()
            .await
        {
            Ok(out) => Ok(out.template_body().map(str::to_owned)),
            Err(e) => {
                let err = sdk_error("GetTemplate", name, e);
                if err.class == ErrorClass::NotFound {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn create_change_set(&self, r: &ChangeSetRequest) -> CfnResult<String> {
        let tags = r
            .tags
            .iter()
            .map(|(k, v)| types::Tag::builder().key(k).value(v).build())
            .collect();
        let capabilities = r
            .capabilities
            .iter()
            .map(|c| types::Capability::from(c.as_str()))
            .collect();
        let parameters = r
            .parameters
            .iter()
            .map(|(k, v)| {
                types::Parameter::builder()
                    .parameter_key(k)
                    .parameter_value(v)
                    .build()
            })
            .collect();
        let kind = match r.kind {
            ChangeSetKind::Create => types::ChangeSetType::Create,
            ChangeSetKind::Update => types::ChangeSetType::Update,
        };
        let out = self
            .client
            .create_change_set()
            .stack_name(&r.stack_name)
            .change_set_name(&r.change_set_name)
            .change_set_type(kind)
            .template_body(&r.template_body)
            .set_parameters(Some(parameters))
            .set_capabilities(Some(capabilities))
            .set_tags(Some(tags))
            .set_description(r.description.clone())
            .set_deployment_mode(
                (r.revert_drift && r.kind == ChangeSetKind::Update)
                    .then_some(types::DeploymentMode::RevertDrift),
            )
            .send()
            .await
            .map_err(|e| sdk_error("CreateChangeSet", &r.stack_name, e))?;
        Ok(out.id().unwrap_or(&r.change_set_name).to_owned())
    }

    async fn describe_change_set(&self, stack: &str, change_set: &str) -> CfnResult<ChangeSet> {
        let mut token: Option<String> = None;
        let mut result: Option<ChangeSet> = None;
        loop {
            let out = self
                .client
                .describe_change_set()
                .stack_name(stack)
                .change_set_name(change_set)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| sdk_error("DescribeChangeSet", stack, e))?;
            let changes = out.changes().iter().filter_map(change_from_sdk);
            match &mut result {
                Some(cs) => cs.changes.extend(changes),
                None => {
                    result = Some(ChangeSet {
                        id: out.change_set_id().unwrap_or(change_set).to_owned(),
                        stack_id: owned(out.stack_id()),
                        status: out
                            .status()
                            .map(|s| s.as_str())
                            .unwrap_or("UNKNOWN")
                            .to_owned(),
                        execution_status: out.execution_status().map(|s| s.as_str().to_owned()),
                        status_reason: owned(out.status_reason()),
                        changes: changes.collect(),
                    })
                }
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        result.ok_or_else(|| {
            AwsError::unanswered(
                SERVICE,
                "DescribeChangeSet",
                Some(stack),
                "empty response",
                ErrorClass::Other,
            )
        })
    }

    async fn delete_change_set(&self, stack: &str, change_set: &str) -> CfnResult<()> {
        self.client
            .delete_change_set()
            .stack_name(stack)
            .change_set_name(change_set)
            .send()
            .await
            .map_err(|e| sdk_error("DeleteChangeSet", stack, e))?;
        Ok(())
    }

    async fn execute_change_set(
        &self,
        stack: &str,
        change_set: &str,
        token: &str,
    ) -> CfnResult<()> {
        self.client
            .execute_change_set()
            .stack_name(stack)
            .change_set_name(change_set)
            .client_request_token(token)
            .send()
            .await
            .map_err(|e| sdk_error("ExecuteChangeSet", stack, e))?;
        Ok(())
    }

    async fn delete_stack(&self, stack: &str, token: &str) -> CfnResult<()> {
        self.client
            .delete_stack()
            .stack_name(stack)
            .client_request_token(token)
            .send()
            .await
            .map_err(|e| sdk_error("DeleteStack", stack, e))?;
        Ok(())
    }

    async fn continue_update_rollback(&self, stack: &str, token: &str) -> CfnResult<()> {
        self.client
            .continue_update_rollback()
            .stack_name(stack)
            .client_request_token(token)
            .send()
            .await
            .map_err(|e| sdk_error("ContinueUpdateRollback", stack, e))?;
        Ok(())
    }

    async fn cancel_update_stack(&self, stack: &str, token: &str) -> CfnResult<()> {
        self.client
            .cancel_update_stack()
            .stack_name(stack)
            .client_request_token(token)
            .send()
            .await
            .map_err(|e| sdk_error("CancelUpdateStack", stack, e))?;
        Ok(())
    }

    async fn set_termination_protection(&self, stack: &str, enabled: bool) -> CfnResult<()> {
        self.client
            .update_termination_protection()
            .stack_name(stack)
            .enable_termination_protection(enabled)
            .send()
            .await
            .map_err(|e| sdk_error("UpdateTerminationProtection", stack, e))?;
        Ok(())
    }

    async fn stack_names(&self) -> CfnResult<Vec<String>> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_stacks()
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(SERVICE, "ListStacks", None, e))?;
            names.extend(
                out.stack_summaries()
                    .iter()
                    .filter(|s| s.stack_status().map(|s| s.as_str()) != Some("DELETE_COMPLETE"))
                    .filter_map(|s| s.stack_name().map(str::to_owned)),
            );
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(names),
            }
        }
    }

    async fn detect_stack_drift(&self, stack: &str) -> CfnResult<String> {
        let out = self
            .client
            .detect_stack_drift()
            .stack_name(stack)
            .send()
            .await
            .map_err(|e| sdk_error("DetectStackDrift", stack, e))?;
        Ok(out
            .stack_drift_detection_id()
            .unwrap_or_default()
            .to_owned())
    }

    async fn drift_detection(&self, stack: &str, id: &str) -> CfnResult<DriftDetection> {
        let out = self
            .client
            .describe_stack_drift_detection_status()
            .stack_drift_detection_id(id)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeStackDriftDetectionStatus", stack, e))?;
        Ok(DriftDetection {
            status: out
                .detection_status()
                .map(|s| s.as_str())
                .unwrap_or("UNKNOWN")
                .to_owned(),
            stack_drift_status: out.stack_drift_status().map(|s| s.as_str().to_owned()),
            reason: owned(out.detection_status_reason()),
        })
    }

    async fn resource_drifts(&self, stack: &str) -> CfnResult<Vec<ResourceDrift>> {
        let mut drifts = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .describe_stack_resource_drifts()
                .stack_name(stack)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| sdk_error("DescribeStackResourceDrifts", stack, e))?;
            drifts.extend(out.stack_resource_drifts().iter().map(|d| {
                ResourceDrift {
                    logical_id: d.logical_resource_id().unwrap_or_default().to_owned(),
                    resource_type: d.resource_type().unwrap_or_default().to_owned(),
                    status: d
                        .stack_resource_drift_status()
                        .map(|s| s.as_str())
                        .unwrap_or("UNKNOWN")
                        .to_owned(),
                    differences: d
                        .property_differences()
                        .iter()
                        .map(|p| PropertyDifference {
                            path: p.property_path().unwrap_or_default().to_owned(),
                            expected: p.expected_value().unwrap_or_default().to_owned(),
                            actual: p.actual_value().unwrap_or_default().to_owned(),
                            kind: p
                                .difference_type()
                                .map(|k| k.as_str())
                                .unwrap_or("NOT_EQUAL")
                                .to_owned(),
                        })
                        .collect(),
                }
            }));
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(drifts),
            }
        }
    }
}
