//! `drift`: does what is deployed still match what the repository says?
//! The logic behind `mangactl drift` (`src/cli/drift.rs`), in three layers,
//! per stack and in parallel, under one deadline:
//!
//! 1. **Code drift**: the deployed template (GetTemplate) and parameters
//!    (DescribeStacks) against what `render` produces now, with references
//!    resolved as `apply` would (`references.rs`). Differences are listed by
//!    path (`Resources.Table.Properties.BillingMode`), not as a text diff.
//!    A rendered stack that does not exist is drift, and so is a stack named
//!    like this environment's that is no longer rendered.
//! 2. **Resource drift**: CloudFormation's drift detection (DetectStackDrift,
//!    DescribeStackDriftDetectionStatus until done, then
//!    DescribeStackResourceDrifts). MODIFIED and DELETED resources are drift,
//!    with expected and actual per property path. "Resources that don't
//!    currently support drift detection aren't checked, and so not
//!    included" (API reference, DescribeStackResourceDrifts), and
//!    NOT_CHECKED, UNKNOWN and UNSUPPORTED say the same: all of those are
//!    listed as unchecked, never counted as in sync. A detection that
//!    fails, times out or that the endpoint does not implement makes the
//!    run incomplete, not clean.
//! 3. **Live capacity** (`live.rs`): every sized resource's live value
//!    (ECS, Application Auto Scaling, ElastiCache, DAX, SageMaker,
//!    OpenSearch Serverless) against what the rendering allows: a desired
//!    count the autoscaler moved inside the rendered bounds is not drift,
//!    one outside them or changed bounds is. This covers the types
//!    CloudFormation's detection skips. A read the endpoint does not
//!    implement leaves the item unchecked; any other failed read makes the
//!    run incomplete.
//!
//! Scale records and `drift.accept` entries cover items of the second and
//! third layers alike (both name properties as drift detection does). A
//! deployed template that carries a value an unexpired record holds (an
//! apply since the scale kept it: `holds.rs`) is acknowledged, not code
//! drift, while the record stands, and code drift once it expires.
//!
//! The outcome ([`DriftReport`] → `src/outcome.rs`): drift found → 2; a
//! detection that failed or ran out of time → 3; resources left unchecked
//! (types CloudFormation does not check, an endpoint without drift
//! detection) → 3, or 0 with `allow_unchecked`; everything checked and in
//! sync → 0. Never 0 when nothing was compared.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::Value;
use stacks::render::{Rendered, RenderedStack};
use stacks::stacks::StackId;
use tokio::time::Instant;

use super::holds;
use super::live::{self, CapacityItem, Component, ItemStatus, LiveReaders};
use super::references;
use super::Backoff;
use crate::aws::cloudformation::PropertyDifference;
use crate::aws::scale_records::ScaleRecord;
use crate::aws::{CfnError, CloudFormation, ErrorClass};
use stacks::env::AcceptedDrift;

/// The version of the JSON document `drift --output json` prints.
pub const SCHEMA: &str = "mangactl.drift/v1";

#[derive(Debug, Clone)]
pub struct DriftOptions {
    pub only: Option<StackId>,
    /// The environment file's `drift.accept` entries.
    pub accepted: Vec<AcceptedDrift>,
    /// Scale records (`src/aws/scale_records.rs`) read by the caller.
    pub scale_records: Vec<ScaleRecord>,
    /// Today (`YYYY-MM-DD`), against which acceptances and records expire.
    pub today: String,
    /// The whole run's deadline.
    pub timeout: Duration,
    /// Unchecked resources do not make the run incomplete.
    pub allow_unchecked: bool,
    pub concurrency: usize,
    pub backoff: Backoff,
}

/// The whole check.
#[derive(Debug, Clone, Serialize)]
pub struct DriftReport {
    pub schema: &'static str,
    pub environment: String,
    /// Unchecked resources were accepted (`--allow-unchecked`).
    pub allow_unchecked: bool,
    pub stacks: Vec<StackDrift>,
    /// Stacks named like this environment's that `render` no longer makes.
    pub orphans: Vec<String>,
    pub summary: DriftSummary,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DriftSummary {
    pub stacks: usize,
    pub code_drifted: usize,
    pub missing: usize,
    pub resources_drifted: usize,
    pub resources_unchecked: usize,
    /// Live capacity values outside what the rendering allows.
    pub capacity_drifted: usize,
    /// Live capacity values that could not be read.
    pub capacity_unchecked: usize,
    /// Drifted items the environment file accepts (not counted as drift).
    pub ignored: usize,
    /// Drifted items scale records acknowledge (not counted as drift).
    pub acknowledged: usize,
    /// Stacks whose resource check did not finish (failed or timed out),
    /// or whose live capacity could not be read (`<stack> (capacity)`).
    pub incomplete: Vec<String>,
    pub drift: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct StackDrift {
    pub stack: StackId,
    pub stack_name: String,
    pub region: String,
    pub code: CodeLayer,
    pub resources: ResourceLayer,
    /// Live capacity of what this stack sizes (empty for stacks that size
    /// nothing, and when the stack is missing).
    pub capacity: Vec<CapacityItem>,
    /// Why the live capacity could not be read, when a read failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity_failed: Option<String>,
    /// Resource drift the environment file accepts (`drift.accept`), not
    /// counted as drift.
    pub ignored: Vec<IgnoredDrift>,
    /// Resource drift a `mangactl scale` record covers, not counted as drift.
    pub acknowledged: Vec<AcknowledgedDrift>,
}

/// Drift an unexpired scale record covers: who changed what, when, why.
#[derive(Debug, Clone, Serialize)]
pub struct AcknowledgedDrift {
    pub logical_id: String,
    pub property: String,
    pub value: String,
    pub by: String,
    pub at: String,
    pub reason: String,
    pub until: String,
}

/// Drift an unexpired `drift.accept` entry covers.
#[derive(Debug, Clone, Serialize)]
pub struct IgnoredDrift {
    pub logical_id: String,
    pub path: Option<String>,
    pub reason: String,
    pub expires: Option<String>,
}

/// Template and parameters against the rendering.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CodeLayer {
    InSync,
    Drifted {
        differences: Vec<CodeDifference>,
    },
    /// The stack should exist and does not.
    Missing,
}

/// One path where the deployed template or parameters differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CodeDifference {
    /// `Resources.<Id>.Properties.<Name>…` or `Parameters.<Name>`.
    pub path: String,
    /// `changed`, `added` (only in the rendering) or `removed` (only deployed).
    pub kind: &'static str,
    pub expected: Option<String>,
    pub actual: Option<String>,
}

/// CloudFormation's drift detection.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceLayer {
    /// `in_sync`, `drifted`, `not_run` (the stack is missing), `unchecked`
    /// (the endpoint has no drift detection), or `incomplete` (failed or
    /// out of time; see `reason`).
    pub status: &'static str,
    pub drifted: Vec<DriftedResource>,
    pub unchecked: Vec<UncheckedResource>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DriftedResource {
    pub logical_id: String,
    pub resource_type: String,
    /// `MODIFIED` or `DELETED`.
    pub status: String,
    pub differences: Vec<PropertyDifference>,
    /// Set when a `drift.accept` entry covered this and has expired.
    pub expired_acceptance: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UncheckedResource {
    pub logical_id: String,
    pub resource_type: String,
    pub why: String,
}

impl DriftReport {
    /// Whether a check failed or did not finish (never accepted).
    pub fn is_incomplete(&self) -> bool {
        !self.summary.incomplete.is_empty()
    }

    /// Whether resources were left unchecked (`--allow-unchecked` accepts that).
    pub fn has_unchecked(&self) -> bool {
        self.summary.resources_unchecked + self.summary.capacity_unchecked > 0
    }
}

/// Runs both layers over the selected stacks.
pub async fn drift(
    cfn: &dyn CloudFormation,
    live: LiveReaders<'_>,
    rendered: &Rendered,
    opts: &DriftOptions,
) -> Result<DriftReport, CfnError> {
    let deadline = Instant::now() + opts.timeout;
    // A deployed template may carry a value an unexpired scale record
    // holds (an apply since the scale kept it: `holds.rs`); that is not
    // code drift while the record stands.
    let held = match holds::apply_holds(&mut rendered.clone(), &opts.scale_records, &opts.today) {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!("scale records not applied to the rendering: {e}");
            Vec::new()
        }
    };
    let held = held.as_slice();
    let ids = super::selected(rendered, opts.only);
    let results: Vec<Result<StackDrift, CfnError>> =
        stream::iter(rendered.stacks.iter().filter(|s| ids.contains(&s.id)))
            .map(|s| check_stack(cfn, live, rendered, held, s, opts, deadline))
            .buffered(opts.concurrency.max(1))
            .collect()
            .await;
    let mut stacks = Vec::new();
    for r in results {
        stacks.push(r?);
    }
    let orphans = if opts.only.is_none() {
        let prefix = format!("mangaassist-{}-", rendered.manifest.environment);
        let ours: BTreeSet<&str> = rendered
            .stacks
            .iter()
            .map(|s| s.stack_name.as_str())
            .collect();
        cfn.stack_names()
            .await?
            .into_iter()
            .filter(|n| n.starts_with(&prefix) && !ours.contains(n.as_str()))
            .collect()
    } else {
        Vec::new()
    };
    let summary = summarize(&stacks, &orphans);
    Ok(DriftReport {
        schema: SCHEMA,
        environment: rendered.manifest.environment.clone(),
        allow_unchecked: opts.allow_unchecked,
        stacks,
        orphans,
        summary,
    })
}

fn summarize(stacks: &[StackDrift], orphans: &[String]) -> DriftSummary {
    let mut s = DriftSummary {
        stacks: stacks.len(),
        ..DriftSummary::default()
    };
    for st in stacks {
        match &st.code {
            CodeLayer::Drifted { .. } => s.code_drifted += 1,
            CodeLayer::Missing => s.missing += 1,
            CodeLayer::InSync => {}
        }
        s.resources_drifted += st.resources.drifted.len();
        s.resources_unchecked += st.resources.unchecked.len();
        s.ignored += st.ignored.len();
        s.acknowledged += st.acknowledged.len();
        for item in &st.capacity {
            match item.status {
                ItemStatus::Drifted => s.capacity_drifted += 1,
                ItemStatus::Unchecked => s.capacity_unchecked += 1,
                ItemStatus::Acknowledged => s.acknowledged += 1,
                ItemStatus::Ignored => s.ignored += 1,
                ItemStatus::InSync => {}
            }
        }
        if st.resources.status == "incomplete" {
            s.incomplete.push(st.stack.name().to_owned());
        }
        if st.capacity_failed.is_some() {
            s.incomplete.push(format!("{} (capacity)", st.stack.name()));
        }
    }
    s.drift =
        s.code_drifted + s.missing + s.resources_drifted + s.capacity_drifted + orphans.len() > 0;
    s
}

async fn check_stack(
    cfn: &dyn CloudFormation,
    live: LiveReaders<'_>,
    rendered: &Rendered,
    held: &[holds::Hold],
    s: &RenderedStack,
    opts: &DriftOptions,
    deadline: Instant,
) -> Result<StackDrift, CfnError> {
    let region = rendered
        .manifest
        .stacks
        .get(&s.id)
        .map_or_else(|| rendered.manifest.region.clone(), |m| m.region.clone());
    let existing = cfn
        .describe_stack(&s.stack_name)
        .await?
        .filter(|e| !e.status.is_review());
    let Some(existing) = existing else {
        return Ok(StackDrift {
            stack: s.id,
            stack_name: s.stack_name.clone(),
            region,
            code: CodeLayer::Missing,
            resources: ResourceLayer {
                status: "not_run",
                drifted: vec![],
                unchecked: vec![],
                reason: Some("the stack does not exist".into()),
            },
            capacity: vec![],
            capacity_failed: None,
            ignored: vec![],
            acknowledged: vec![],
        });
    };

    // Layer 1: template and parameters.
    let mut differences = Vec::new();
    let deployed: Option<Value> = cfn
        .template(&s.stack_name)
        .await?
        .and_then(|t| serde_json::from_str(&t).ok());
    let expected_template = s.template.to_value();
    match &deployed {
        Some(d) => diff_values("", &expected_template, d, &mut differences),
        None => differences.push(CodeDifference {
            path: "(template)".into(),
            kind: "changed",
            expected: Some("the rendered template".into()),
            actual: Some("a template that is not JSON".into()),
        }),
    }
    let resolved = references::resolve(cfn, rendered, s.id).await?;
    // What CloudFormation holds: the template's defaults, unless passed.
    let mut expected_params: BTreeMap<String, String> = s
        .template
        .parameter_defaults()
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect();
    expected_params.extend(resolved.values.clone());
    for m in &resolved.missing {
        expected_params.insert(
            m.parameter.clone(),
            format!("(output {} of {}, which does not exist)", m.output, m.stack),
        );
    }
    let names: BTreeSet<&String> = expected_params
        .keys()
        .chain(existing.parameters.keys())
        .collect();
    for name in names {
        let (e, a) = (expected_params.get(name), existing.parameters.get(name));
        if e != a {
            differences.push(CodeDifference {
                path: format!("Parameters.{name}"),
                kind: match (e, a) {
                    (Some(_), None) => "added",
                    (None, Some(_)) => "removed",
                    _ => "changed",
                },
                expected: e.cloned(),
                actual: a.cloned(),
            });
        }
    }
    let mut held_in_template = Vec::new();
    differences.retain(|d| {
        let hold = held.iter().find(|h| {
            h.stack == s.id
                && d.path
                    == format!(
                        "Resources.{}.Properties{}",
                        h.logical_id,
                        h.property.replace('/', ".")
                    )
                && d.actual.as_deref() == Some(h.held.as_str())
        });
        if let Some(h) = hold {
            held_in_template.push(AcknowledgedDrift {
                logical_id: h.logical_id.clone(),
                property: h.property.clone(),
                value: h.held.clone(),
                by: h.by.clone(),
                at: h.at.clone(),
                reason: h.reason.clone(),
                until: h.until.clone(),
            });
        }
        hold.is_none()
    });
    let code = if differences.is_empty() {
        CodeLayer::InSync
    } else {
        CodeLayer::Drifted { differences }
    };

    // Layers 2 and 3 together: CloudFormation drift detection, and the live
    // capacity of what this stack sizes; then what covers their drift.
    let capacity_check = async {
        match Component::of_stack(s.id) {
            Some(c) => live::check(live, rendered, c, &existing).await,
            None => live::LiveCheck::default(),
        }
    };
    let (mut resources, capacity) = tokio::join!(detect(cfn, s, opts, deadline), capacity_check);
    if let Some(c) = Component::of_stack(s.id) {
        admit_scheduled_min(&mut resources, rendered, s, c, live.now);
    }
    let (ignored, mut acknowledged) = apply_coverage(s.id, &mut resources, opts);
    acknowledged.extend(held_in_template);
    let mut items = capacity.items;
    cover_capacity(s.id, &mut items, opts);
    Ok(StackDrift {
        stack: s.id,
        stack_name: s.stack_name.clone(),
        region,
        code,
        resources,
        capacity: items,
        capacity_failed: capacity.failed,
        ignored,
        acknowledged,
    })
}

/// A scalable target's MinCapacity that its scheduled actions set is not
/// drift: CloudFormation's detection compares it with the template's floor,
/// the live layer with the minimum due now (`live::scheduled_min`).
fn admit_scheduled_min(
    layer: &mut ResourceLayer,
    rendered: &Rendered,
    s: &RenderedStack,
    component: Component,
    now: i64,
) {
    let Some(allowed) = live::scheduled_min(rendered, &s.template.to_value(), component, now)
    else {
        return;
    };
    layer.drifted.retain_mut(|d| {
        if d.logical_id != "ScalableTarget" {
            return true;
        }
        d.differences
            .retain(|p| !(p.path == "/MinCapacity" && allowed.admits(&p.actual)));
        !d.differences.is_empty()
    });
    if layer.status == "drifted" && layer.drifted.is_empty() {
        layer.status = "in_sync";
    }
}

fn incomplete(reason: String, unchecked: Vec<UncheckedResource>) -> ResourceLayer {
    ResourceLayer {
        status: "incomplete",
        drifted: vec![],
        unchecked,
        reason: Some(reason),
    }
}

/// Every resource of the rendered template, as unchecked for `why`.
fn all_unchecked(s: &RenderedStack, why: &str) -> Vec<UncheckedResource> {
    s.template
        .resource_types()
        .map(|(id, ty)| UncheckedResource {
            logical_id: id.to_owned(),
            resource_type: ty.to_owned(),
            why: why.to_owned(),
        })
        .collect()
}

async fn detect(
    cfn: &dyn CloudFormation,
    s: &RenderedStack,
    opts: &DriftOptions,
    deadline: Instant,
) -> ResourceLayer {
    let failed = |e: CfnError| {
        if e.class == ErrorClass::NotImplemented {
            // An endpoint without drift detection (an emulator) cannot
            // check any resource: unchecked, which --allow-unchecked may
            // accept, unlike a detection that failed or ran out of time.
            ResourceLayer {
                status: "unchecked",
                drifted: vec![],
                unchecked: all_unchecked(s, "the endpoint does not implement drift detection"),
                reason: Some(e.to_string()),
            }
        } else {
            incomplete(
                e.to_string(),
                all_unchecked(s, "drift detection did not run"),
            )
        }
    };
    let id = match cfn.detect_stack_drift(&s.stack_name).await {
        Ok(id) => id,
        Err(e) => return failed(e),
    };
    let mut delay = opts.backoff.initial;
    let status = loop {
        match cfn.drift_detection(&s.stack_name, &id).await {
            Ok(d) if d.is_in_progress() => {}
            Ok(d) => break d,
            Err(e) => return failed(e),
        }
        if Instant::now() + delay > deadline {
            return incomplete(
                format!(
                    "drift detection {id} did not finish within the run's {}s timeout",
                    opts.timeout.as_secs()
                ),
                all_unchecked(s, "drift detection did not finish"),
            );
        }
        tokio::time::sleep(delay).await;
        delay = opts.backoff.next(delay);
    };
    if !status.is_complete() {
        return incomplete(
            format!(
                "drift detection {}: {}",
                status.status,
                status.reason.unwrap_or_else(|| "no reason given".into())
            ),
            all_unchecked(s, "drift detection failed"),
        );
    }
    let drifts = match cfn.resource_drifts(&s.stack_name).await {
        Ok(d) => d,
        Err(e) => return failed(e),
    };
    let mut layer = ResourceLayer {
        status: "in_sync",
        drifted: vec![],
        unchecked: vec![],
        reason: None,
    };
    let mut seen = BTreeSet::new();
    for d in drifts {
        seen.insert(d.logical_id.clone());
        match d.status.as_str() {
            "IN_SYNC" => {}
            "MODIFIED" | "DELETED" => layer.drifted.push(DriftedResource {
                logical_id: d.logical_id,
                resource_type: d.resource_type,
                status: d.status,
                differences: d.differences,
                expired_acceptance: None,
            }),
            other => layer.unchecked.push(UncheckedResource {
                logical_id: d.logical_id,
                resource_type: d.resource_type,
                why: format!("CloudFormation reports {other}"),
            }),
        }
    }
    for u in all_unchecked(s, "CloudFormation does not check this resource type") {
        if !seen.contains(&u.logical_id) {
            layer.unchecked.push(u);
        }
    }
    if !layer.drifted.is_empty() {
        layer.status = "drifted";
    }
    layer
}

/// What can cover a drifted property: an accepted difference from the
/// environment file, or a scale record.
enum Cover<'a> {
    Accepted(&'a AcceptedDrift),
    Scaled(&'a ScaleRecord),
}

impl Cover<'_> {
    fn logical_id(&self) -> &str {
        match self {
            Cover::Accepted(a) => &a.logical_id,
            Cover::Scaled(r) => &r.logical_id,
        }
    }
    /// `None`: the whole resource.
    fn path(&self) -> Option<&str> {
        match self {
            Cover::Accepted(a) => a.path.as_deref(),
            Cover::Scaled(r) => Some(&r.property),
        }
    }
    /// The last day it holds.
    fn until(&self) -> Option<&str> {
        match self {
            Cover::Accepted(a) => a.expires.as_deref(),
            Cover::Scaled(r) => Some(&r.until),
        }
    }
    fn describe(&self) -> String {
        match self {
            Cover::Accepted(a) => format!("accepted: {}", a.reason),
            Cover::Scaled(r) => format!(
                "scaled to {} by {} at {}: {}",
                r.value, r.by, r.at, r.reason
            ),
        }
    }
}

/// Moves the drift that unexpired acceptances and scale records cover out
/// of `layer` into the returned lists; an expired one leaves its drift in
/// place, marked. A cover with a path covers that property only (a resource
/// stays drifted while other properties differ).
fn apply_coverage(
    stack: StackId,
    layer: &mut ResourceLayer,
    opts: &DriftOptions,
) -> (Vec<IgnoredDrift>, Vec<AcknowledgedDrift>) {
    let covers: Vec<Cover<'_>> = opts
        .accepted
        .iter()
        .filter(|a| a.stack == stack)
        .map(Cover::Accepted)
        .chain(
            opts.scale_records
                .iter()
                .filter(|r| r.stack == stack)
                .map(Cover::Scaled),
        )
        .collect();
    let (mut ignored, mut acknowledged) = (Vec::new(), Vec::new());
    layer.drifted.retain_mut(|d| {
        let mut covered = false;
        for c in covers.iter().filter(|c| c.logical_id() == d.logical_id) {
            if c.until().is_some_and(|u| u < opts.today.as_str()) {
                d.expired_acceptance = Some(format!(
                    "{} until {}; counts again",
                    c.describe(),
                    c.until().unwrap_or_default()
                ));
                continue;
            }
            let hits = |p: &PropertyDifference| c.path().is_none_or(|path| p.path == path);
            if !(c.path().is_none() || d.differences.iter().any(hits)) {
                continue;
            }
            covered = true;
            match c {
                Cover::Accepted(a) => ignored.push(IgnoredDrift {
                    logical_id: d.logical_id.clone(),
                    path: a.path.clone(),
                    reason: a.reason.clone(),
                    expires: a.expires.clone(),
                }),
                Cover::Scaled(r) => acknowledged.push(AcknowledgedDrift {
                    logical_id: r.logical_id.clone(),
                    property: r.property.clone(),
                    value: r.value.clone(),
                    by: r.by.clone(),
                    at: r.at.clone(),
                    reason: r.reason.clone(),
                    until: r.until.clone(),
                }),
            }
            d.differences.retain(|p| !hits(p));
        }
        // Kept while something is left uncovered.
        !(covered && d.differences.is_empty())
    });
    if layer.status == "drifted" && layer.drifted.is_empty() {
        layer.status = "in_sync";
    }
    (ignored, acknowledged)
}

/// Marks live capacity items that an unexpired scale record (of the value
/// now live) or `drift.accept` entry covers; an expired or disagreeing one
/// leaves the item drifted, with a note saying so.
fn cover_capacity(stack: StackId, items: &mut [CapacityItem], opts: &DriftOptions) {
    for item in items.iter_mut().filter(|i| i.status == ItemStatus::Drifted) {
        let covers = opts
            .accepted
            .iter()
            .filter(|a| a.stack == stack)
            .map(Cover::Accepted)
            .chain(
                opts.scale_records
                    .iter()
                    .filter(|r| r.stack == stack)
                    .map(Cover::Scaled),
            )
            .filter(|c| {
                c.logical_id() == item.logical_id && c.path().is_none_or(|p| p == item.property)
            });
        for c in covers {
            if c.until().is_some_and(|u| u < opts.today.as_str()) {
                item.note = Some(format!(
                    "{} until {}; counts again",
                    c.describe(),
                    c.until().unwrap_or_default()
                ));
                continue;
            }
            match c {
                Cover::Scaled(r) if item.actual.as_deref() != Some(r.value.as_str()) => {
                    item.note = Some(format!(
                        "a scale record says {} ({}), but the live value differs",
                        r.value,
                        c.describe()
                    ));
                }
                Cover::Scaled(r) => {
                    item.status = ItemStatus::Acknowledged;
                    item.note = Some(format!(
                        "scaled by {} at {} ({}), until {}",
                        r.by, r.at, r.reason, r.until
                    ));
                    break;
                }
                Cover::Accepted(a) => {
                    item.status = ItemStatus::Ignored;
                    item.note = Some(format!(
                        "accepted: {}{}",
                        a.reason,
                        a.expires
                            .as_deref()
                            .map(|e| format!(", until {e}"))
                            .unwrap_or_default()
                    ));
                    break;
                }
            }
        }
    }
}

/// Structural differences between `expected` and `actual` JSON, by path.
fn diff_values(path: &str, expected: &Value, actual: &Value, out: &mut Vec<CodeDifference>) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let keys: BTreeSet<&String> = e.keys().chain(a.keys()).collect();
            for k in keys {
                match (e.get(k), a.get(k)) {
                    (Some(x), Some(y)) => diff_values(&join(k), x, y, out),
                    (Some(x), None) => out.push(CodeDifference {
                        path: join(k),
                        kind: "added",
                        expected: Some(compact(x)),
                        actual: None,
                    }),
                    (None, Some(y)) => out.push(CodeDifference {
                        path: join(k),
                        kind: "removed",
                        expected: None,
                        actual: Some(compact(y)),
                    }),
                    (None, None) => {}
                }
            }
        }
        (x, y) if x != y => out.push(CodeDifference {
            path: if path.is_empty() {
                "(template)".into()
            } else {
                path.to_owned()
            },
            kind: "changed",
            expected: Some(compact(x)),
            actual: Some(compact(y)),
        }),
        _ => {}
    }
}

/// A value in one line, cut at 200 characters.
fn compact(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > 200 {
        format!("{}…", s.chars().take(200).collect::<String>())
    } else {
        s
    }
}

/// The report as people read it: a section per stack, then the summary.
pub fn render_text(r: &DriftReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Drift of `{}`, {} stacks:",
        r.environment,
        r.stacks.len()
    );
    for s in &r.stacks {
        let _ = writeln!(
            out,
            "\n{:<14} {} ({})",
            s.stack.name(),
            s.stack_name,
            s.region
        );
        match &s.code {
            CodeLayer::InSync => {
                let _ = writeln!(out, "  code: in sync with the rendering");
            }
            CodeLayer::Missing => {
                let _ = writeln!(out, "  code: MISSING (the stack does not exist)");
            }
            CodeLayer::Drifted { differences } => {
                let _ = writeln!(out, "  code: DRIFTED ({} differences)", differences.len());
                for d in differences {
                    let _ = writeln!(
                        out,
                        "    ~ {} ({}): expected {}, deployed {}",
                        d.path,
                        d.kind,
                        d.expected.as_deref().unwrap_or("nothing"),
                        d.actual.as_deref().unwrap_or("nothing")
                    );
                }
            }
        }
        let l = &s.resources;
        match l.status {
            "not_run" => {}
            "incomplete" => {
                let _ = writeln!(
                    out,
                    "  resources: INCOMPLETE: {}",
                    l.reason.as_deref().unwrap_or("no reason")
                );
            }
            "unchecked" => {
                let _ = writeln!(
                    out,
                    "  resources: {} UNCHECKED: {}",
                    l.unchecked.len(),
                    l.reason.as_deref().unwrap_or("no reason")
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "  resources: {} drifted, {} unchecked",
                    l.drifted.len(),
                    l.unchecked.len()
                );
                for d in &l.drifted {
                    let note = d
                        .expired_acceptance
                        .as_deref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "    ! {} {} {}{note}",
                        d.logical_id, d.resource_type, d.status
                    );
                    for p in &d.differences {
                        let _ = writeln!(
                            out,
                            "        {} ({}): expected {}, actual {}",
                            p.path, p.kind, p.expected, p.actual
                        );
                    }
                }
                let mut by_why: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
                for u in &l.unchecked {
                    by_why.entry(&u.why).or_default().push(&u.logical_id);
                }
                for (why, ids) in by_why {
                    let _ = writeln!(out, "    ? unchecked ({why}): {}", ids.join(", "));
                }
            }
        }
        if !s.capacity.is_empty() {
            let count = |st: ItemStatus| s.capacity.iter().filter(|i| i.status == st).count();
            let _ = writeln!(
                out,
                "  capacity: {} drifted, {} unchecked{}",
                count(ItemStatus::Drifted),
                count(ItemStatus::Unchecked),
                s.capacity_failed
                    .as_deref()
                    .map(|f| format!(" (INCOMPLETE: {f})"))
                    .unwrap_or_default()
            );
            for i in &s.capacity {
                let _ = writeln!(out, "    {}", i.line());
            }
        }
    }
    for o in &r.orphans {
        let _ = writeln!(
            out,
            "\n!! {o} exists but is no longer rendered for `{}`",
            r.environment
        );
    }
    for s in &r.stacks {
        for a in &s.acknowledged {
            let _ = writeln!(
                out,
                "acknowledged: {}/{}{} = {}, scaled by {} at {} ({}), until {}",
                s.stack, a.logical_id, a.property, a.value, a.by, a.at, a.reason, a.until
            );
        }
        for i in &s.ignored {
            let until = i
                .expires
                .as_deref()
                .map(|e| format!(", accepted until {e}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "ignored: {}/{}{} ({}{until})",
                s.stack,
                i.logical_id,
                i.path.as_deref().unwrap_or(""),
                i.reason
            );
        }
    }
    let sm = &r.summary;
    let _ = writeln!(
        out,
        "\nDrift: code {} drifted and {} missing of {} stacks, {} orphaned; resources {} drifted, {} unchecked; capacity {} drifted, {} unchecked; {} ignored, {} acknowledged{}.",
        sm.code_drifted,
        sm.missing,
        sm.stacks,
        r.orphans.len(),
        sm.resources_drifted,
        sm.resources_unchecked,
        sm.capacity_drifted,
        sm.capacity_unchecked,
        sm.ignored,
        sm.acknowledged,
        if sm.incomplete.is_empty() {
            String::new()
        } else {
            format!("; detection incomplete for {}", sm.incomplete.join(", "))
        }
    );
    out
}

/// The report as JUnit XML: a test case per stack (and per orphan), a
/// failure per drifted item; unchecked resources go to `system-out`.
pub fn render_junit(r: &DriftReport) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut cases = String::new();
    let mut failures = 0;
    for s in &r.stacks {
        let mut body = String::new();
        let mut fail = |message: String, detail: String, body: &mut String| {
            failures += 1;
            let _ = write!(
                body,
                "<failure message=\"{}\">{}</failure>",
                esc(&message),
                esc(&detail)
            );
        };
        match &s.code {
            CodeLayer::InSync => {}
            CodeLayer::Missing => fail("stack missing".into(), s.stack_name.clone(), &mut body),
            CodeLayer::Drifted { differences } => {
                for d in differences {
                    fail(
                        format!("code drift: {}", d.path),
                        format!(
                            "expected {}, deployed {}",
                            d.expected.as_deref().unwrap_or("nothing"),
                            d.actual.as_deref().unwrap_or("nothing")
                        ),
                        &mut body,
                    );
                }
            }
        }
        for d in &s.resources.drifted {
            let detail: Vec<String> = d
                .differences
                .iter()
                .map(|p| format!("{}: expected {}, actual {}", p.path, p.expected, p.actual))
                .collect();
            fail(
                format!("resource drift: {} {}", d.logical_id, d.status),
                detail.join("\n"),
                &mut body,
            );
        }
        for i in s
            .capacity
            .iter()
            .filter(|i| i.status == ItemStatus::Drifted)
        {
            fail(
                format!("capacity drift: {}{}", i.logical_id, i.property),
                format!(
                    "live {}, allowed {}{}",
                    i.actual.as_deref().unwrap_or("unknown"),
                    i.allowed,
                    i.note
                        .as_deref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default()
                ),
                &mut body,
            );
        }
        let mut out = Vec::new();
        if let Some(reason) = &s.resources.reason {
            out.push(format!("resources: {reason}"));
        }
        for u in &s.resources.unchecked {
            out.push(format!(
                "unchecked {} ({}): {}",
                u.logical_id, u.resource_type, u.why
            ));
        }
        for i in s
            .capacity
            .iter()
            .filter(|i| i.status == ItemStatus::Unchecked)
        {
            out.push(format!(
                "capacity unchecked {}{}: {}",
                i.logical_id,
                i.property,
                i.note.as_deref().unwrap_or("")
            ));
        }
        if !out.is_empty() {
            let _ = write!(body, "<system-out>{}</system-out>", esc(&out.join("\n")));
        }
        let _ = write!(
            cases,
            "<testcase classname=\"{}\" name=\"{}\">{body}</testcase>",
            esc(&s.stack_name),
            esc(s.stack.name())
        );
    }
    for o in &r.orphans {
        failures += 1;
        let _ = write!(
            cases,
            "<testcase classname=\"{0}\" name=\"{0}\"><failure message=\"orphaned stack\">{0} exists but is no longer rendered</failure></testcase>",
            esc(o)
        );
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites><testsuite name=\"mangactl drift {}\" tests=\"{}\" failures=\"{failures}\">{cases}</testsuite></testsuites>\n",
        esc(&r.environment),
        r.stacks.len() + r.orphans.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn differences_are_listed_by_path() {
        let mut out = Vec::new();
        diff_values(
            "",
            &json!({"Resources": {"T": {"Properties": {"A": 1, "B": {"C": "x"}}}, "N": {}}}),
            &json!({"Resources": {"T": {"Properties": {"A": 2, "B": {"C": "x"}, "D": true}}}}),
            &mut out,
        );
        let paths: Vec<(&str, &str)> = out.iter().map(|d| (d.path.as_str(), d.kind)).collect();
        assert_eq!(
            paths,
            [
                ("Resources.N", "added"),
                ("Resources.T.Properties.A", "changed"),
                ("Resources.T.Properties.D", "removed")
            ]
        );
        assert_eq!(out[1].expected.as_deref(), Some("1"));
        assert_eq!(out[1].actual.as_deref(), Some("2"));
    }
}
