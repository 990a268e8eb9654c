//! `mangactl scale`: the on-call engineer's capacity change, in seconds,
//! never silently undone. The CLI (`src/cli/scale.rs`) parses the flags;
//! this module checks them ([`validate`], before any call), reads the live
//! values and builds the change ([`prepare`]: before → after, utilisation
//! at peak from the sizing model), makes it ([`execute`]: the service APIs
//! of `src/aws/capacity.rs`, then a scale record per changed property,
//! `src/aws/scale_records.rs`) and waits for it to take effect ([`wait`]).
//!
//! The record is what keeps the change: `drift` reports it as acknowledged
//! until it expires, and `plan`/`apply` keep its value in the templates
//! (`holds.rs`). `--revert` returns the component to the rendering's values
//! and removes its records.

use std::fmt::{self, Write as _};
use std::time::Duration;

use serde::Serialize;
use stacks::render::Rendered;
use stacks::stacks::StackId;

use super::holds;
use super::live::{self, Component, LiveReaders, Target, ACCOUNT_SETTINGS};
use super::plan::{self, PlanAction};
use crate::aws::capacity::{Bounds, ScalableId};
use crate::aws::opensearch::{CapacityLimits, MIN_MAX_OCU};
use crate::aws::scale_records::{RecordStore, ScaleRecord, RECORD_VERSION};
use crate::aws::{AwsError, CapacityError, CloudFormation};

/// The most replicas per node group: "The maximum value for
/// NewReplicaCount is 5" (ElastiCache API Reference, ConfigureShard).
pub const MAX_REPLICAS: u32 = 5;
/// "A DAX cluster can support up to 11 nodes per cluster (the primary node
/// and a maximum of 10 read replicas)" (DynamoDB Developer Guide, DAX
/// cluster components).
pub const MAX_DAX_NODES: u32 = 11;

/// What to change, as the flags say.
#[derive(Debug, Clone, Default)]
pub struct ScaleRequest {
    pub min: Option<u32>,
    pub max: Option<u32>,
    pub desired: Option<u32>,
    pub replicas: Option<u32>,
    pub node_type: Option<String>,
    pub nodes: Option<u32>,
    pub instances: Option<u32>,
    pub max_search_ocu: Option<u32>,
    pub max_indexing_ocu: Option<u32>,
    /// Back to the rendering's values; the component's records end.
    pub revert: bool,
    pub reason: Option<String>,
    /// Below the sized minimum in prod.
    pub force: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ScaleError {
    #[error("scale {component} refused:\n  - {}", reasons.join("\n  - "))]
    Invalid {
        component: Component,
        reasons: Vec<String>,
    },
    #[error("scale {component} refused: {stack} is {status} since {since}, by {by}; wait for that operation to finish")]
    Busy {
        component: Component,
        stack: String,
        status: String,
        since: String,
        by: String,
    },
    #[error("scale {component}: {what}")]
    NotDeployed { component: Component, what: String },
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Capacity(#[from] CapacityError),
}

fn invalid(component: Component, reasons: Vec<String>) -> ScaleError {
    ScaleError::Invalid { component, reasons }
}

/// The flags each component takes.
fn flags(c: Component) -> &'static [&'static str] {
    match c {
        Component::Service => &["--min", "--max", "--desired"],
        Component::Cache => &["--replicas", "--node-type"],
        Component::Dax => &["--nodes"],
        Component::Intent => &["--instances", "--min", "--max"],
        Component::Search => &["--max-search-ocu", "--max-indexing-ocu"],
    }
}

impl ScaleRequest {
    fn given(&self) -> Vec<&'static str> {
        let mut g = Vec::new();
        for (flag, set) in [
            ("--min", self.min.is_some()),
            ("--max", self.max.is_some()),
            ("--desired", self.desired.is_some()),
            ("--replicas", self.replicas.is_some()),
            ("--node-type", self.node_type.is_some()),
            ("--nodes", self.nodes.is_some()),
            ("--instances", self.instances.is_some()),
            ("--max-search-ocu", self.max_search_ocu.is_some()),
            ("--max-indexing-ocu", self.max_indexing_ocu.is_some()),
        ] {
            if set {
                g.push(flag);
            }
        }
        g
    }
}

fn template(rendered: &Rendered, stack: StackId) -> serde_json::Value {
    rendered
        .stacks
        .iter()
        .find(|s| s.id == stack)
        .map(|s| s.template.to_value())
        .unwrap_or_default()
}

/// Every rule that needs no AWS call, all reported at once: flags that fit
/// the component, bounds in order, values the APIs accept, a node type the
/// sizing model knows, no replica-less Multi-AZ cache, and in prod a reason
/// and nothing below the sized minimum without `--force`.
pub fn validate(
    component: Component,
    req: &ScaleRequest,
    rendered: &Rendered,
) -> Result<(), ScaleError> {
    let mut why = Vec::new();
    let given = req.given();
    for flag in &given {
        if !flags(component).contains(flag) {
            why.push(format!(
                "{flag} does not apply to {component} (it takes {})",
                flags(component).join(", ")
            ));
        }
    }
    if req.revert && !given.is_empty() {
        why.push("--revert returns to the rendering's values; give no other value with it".into());
    }
    if !req.revert && given.is_empty() {
        why.push(format!(
            "nothing to change: give {} (or --revert)",
            flags(component).join(", ")
        ));
    }
    if let (Some(min), Some(max)) = (req.min, req.max) {
        if min > max {
            why.push(format!("--min {min} is above --max {max}"));
        }
    }
    if let (Some(d), Some(min)) = (req.desired, req.min) {
        if d < min {
            why.push(format!("--desired {d} is below --min {min}"));
        }
    }
    if let (Some(d), Some(max)) = (req.desired.or(req.instances), req.max) {
        if d > max {
            why.push(format!("the desired count {d} is above --max {max}"));
        }
    }
    if req.max == Some(0) {
        why.push("--max 0 would stop every task; use destroy to take the environment down".into());
    }
    if req.instances == Some(0) || req.desired == Some(0) {
        why.push("a desired count of 0 stops the component; the lowest is 1".into());
    }
    let sizing = &rendered.sizing;
    if let Some(r) = req.replicas {
        if r > MAX_REPLICAS {
            why.push(format!(
                "--replicas {r}: ElastiCache allows at most {MAX_REPLICAS} replicas per node group"
            ));
        }
        let t = template(rendered, StackId::Cache);
        let multi_az = live::property(&t, "Redis", "MultiAZEnabled")
            .and_then(serde_json::Value::as_bool)
            == Some(true);
        if r == 0 && multi_az {
            why.push("--replicas 0 on a Multi-AZ replication group: ElastiCache keeps at least 1 replica when Multi-AZ is enabled (API Reference, DecreaseReplicaCount), and failover needs one".into());
        }
    }
    if let Some(t) = &req.node_type {
        match sizing::Assumptions::embedded() {
            Ok(a) => {
                let known: Vec<&str> = a.redis.node_types.iter().map(|n| n.name.as_str()).collect();
                if !known.contains(&t.as_str()) {
                    why.push(format!(
                        "--node-type {t} is not a node type the sizing model knows ({})",
                        known.join(", ")
                    ));
                }
            }
            Err(e) => why.push(format!(
                "the sizing model's node types could not be read: {e}"
            )),
        }
    }
    if let Some(n) = req.nodes {
        if !(1..=MAX_DAX_NODES).contains(&n) {
            why.push(format!(
                "--nodes {n}: a DAX cluster has 1 to {MAX_DAX_NODES} nodes"
            ));
        }
    }
    for (flag, v) in [
        ("--max-search-ocu", req.max_search_ocu),
        ("--max-indexing-ocu", req.max_indexing_ocu),
    ] {
        if let Some(v) = v.filter(|v| *v < MIN_MAX_OCU) {
            why.push(format!(
                "{flag} {v}: OpenSearch Serverless limits are at least {MIN_MAX_OCU} OCUs"
            ));
        }
    }
    if ::sizing::is_production(&rendered.manifest.environment) {
        if req.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            why.push(format!(
                "--reason is required in {} (it goes into the scale record)",
                rendered.manifest.environment
            ));
        }
        let minimums: [(&str, Option<u32>, u32); 7] = [
            (
                "--min",
                req.min.filter(|_| component == Component::Service),
                sizing.service.min_tasks,
            ),
            ("--desired", req.desired, sizing.service.min_tasks),
            ("--replicas", req.replicas, sizing.redis.replicas_per_shard),
            ("--nodes", req.nodes, sizing.dax.nodes),
            ("--instances", req.instances, sizing.sagemaker.min_instances),
            (
                "--max-search-ocu",
                req.max_search_ocu,
                sizing.opensearch.search_ocu_max,
            ),
            (
                "--max-indexing-ocu",
                req.max_indexing_ocu,
                sizing.opensearch.indexing_ocu_max,
            ),
        ];
        let intent_min = [(
            "--min",
            req.min.filter(|_| component == Component::Intent),
            sizing.sagemaker.min_instances,
        )];
        for (flag, v, sized) in minimums.into_iter().chain(intent_min) {
            if let Some(v) = v.filter(|v| *v < sized) {
                if !req.force {
                    why.push(format!(
                        "{flag} {v} is below the sized minimum {sized} for {}; add --force (with --reason) to go below it",
                        rendered.manifest.environment
                    ));
                }
            }
        }
    }
    if why.is_empty() {
        Ok(())
    } else {
        Err(invalid(component, why))
    }
}

/// One API call of a scale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Call {
    SetBounds {
        id: ScalableId,
        bounds: Bounds,
    },
    SetDesired {
        cluster: String,
        service: String,
        n: u32,
    },
    SetReplicas {
        group: String,
        from: u32,
        to: u32,
    },
    SetNodeType {
        group: String,
        node_type: String,
    },
    SetDaxNodes {
        cluster: String,
        from: u32,
        to: u32,
    },
    SetInstances {
        endpoint: String,
        variant: String,
        n: u32,
    },
    SetSearch {
        limits: CapacityLimits,
    },
}

impl fmt::Display for Call {
    /// The API call as it goes out, for `--dry-run`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Call::SetBounds { id, bounds } => {
                write!(
                    f,
                    "application-autoscaling RegisterScalableTarget ServiceNamespace={} ResourceId={} ScalableDimension={} MinCapacity={} MaxCapacity={}",
                    id.namespace, id.resource_id, id.dimension, bounds.min, bounds.max
                )?;
                match bounds.scheduled_suspended {
                    Some(s) => write!(f, " SuspendedState.ScheduledScalingSuspended={s}"),
                    None => Ok(()),
                }
            }
            Call::SetDesired { cluster, service, n } => {
                write!(f, "ecs UpdateService cluster={cluster} service={service} desiredCount={n}")
            }
            Call::SetReplicas { group, from, to } => write!(
                f,
                "elasticache {} ReplicationGroupId={group} NewReplicaCount={to} ApplyImmediately=true",
                if to > from { "IncreaseReplicaCount" } else { "DecreaseReplicaCount" }
            ),
            Call::SetNodeType { group, node_type } => write!(
                f,
                "elasticache ModifyReplicationGroup ReplicationGroupId={group} CacheNodeType={node_type} ApplyImmediately=true"
            ),
            Call::SetDaxNodes { cluster, from, to } => write!(
                f,
                "dax {} ClusterName={cluster} NewReplicationFactor={to}",
                if to > from { "IncreaseReplicationFactor" } else { "DecreaseReplicationFactor" }
            ),
            Call::SetInstances { endpoint, variant, n } => write!(
                f,
                "sagemaker UpdateEndpointWeightsAndCapacities EndpointName={endpoint} VariantName={variant} DesiredInstanceCount={n}"
            ),
            Call::SetSearch { limits } => write!(
                f,
                "aoss UpdateAccountSettings capacityLimits.maxSearchCapacityInOCU={} capacityLimits.maxIndexingCapacityInOCU={}",
                limits.max_search_ocu.map_or("-".into(), |v| v.to_string()),
                limits.max_indexing_ocu.map_or("-".into(), |v| v.to_string())
            ),
        }
    }
}

/// One property before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub logical_id: String,
    pub property: String,
    pub before: String,
    pub after: String,
}

/// A prepared scale: what changes, the calls that change it, the records.
#[derive(Debug, Clone, Serialize)]
pub struct ScalePlan {
    pub component: Component,
    pub environment: String,
    pub stack_name: String,
    #[serde(skip)]
    pub target: Target,
    pub steps: Vec<Step>,
    pub calls: Vec<Call>,
    /// The sizing model's utilisation at peak with the new capacity.
    pub utilisation: Option<String>,
    pub revert: bool,
}

impl ScalePlan {
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }
}

/// The properties a component's records may cover.
pub fn properties(c: Component) -> &'static [(&'static str, &'static str)] {
    match c {
        Component::Service => &[
            ("ScalableTarget", "/MinCapacity"),
            ("ScalableTarget", "/MaxCapacity"),
            ("ScalableTarget", holds::SCHEDULE_SUSPENDED),
            ("Service", "/DesiredCount"),
        ],
        Component::Cache => &[
            ("Redis", "/ReplicasPerNodeGroup"),
            ("Redis", "/CacheNodeType"),
        ],
        Component::Dax => &[("DaxCluster", "/ReplicationFactor")],
        Component::Intent => &[
            ("ScalableTarget", "/MinCapacity"),
            ("ScalableTarget", "/MaxCapacity"),
            ("ScalableTarget", holds::SCHEDULE_SUSPENDED),
            ("Endpoint", "/DesiredInstanceCount"),
        ],
        Component::Search => &[
            (ACCOUNT_SETTINGS, "/capacityLimits/maxSearchCapacityInOCU"),
            (ACCOUNT_SETTINGS, "/capacityLimits/maxIndexingCapacityInOCU"),
        ],
    }
}

fn step(
    steps: &mut Vec<Step>,
    logical_id: &str,
    property: &str,
    before: impl ToString,
    after: impl ToString,
) -> bool {
    let (before, after) = (before.to_string(), after.to_string());
    if before == after {
        return false;
    }
    steps.push(Step {
        logical_id: logical_id.into(),
        property: property.into(),
        before,
        after,
    });
    true
}

fn missing(component: Component, what: impl Into<String>) -> ScaleError {
    ScaleError::NotDeployed {
        component,
        what: what.into(),
    }
}

/// Utilisation at peak with `new` units where the sizing model has `sized`.
fn utilisation(a: &sizing::Assessment, sized: u32, new: u32, unit: &str) -> Option<String> {
    (new > 0).then(|| {
        let u = a.utilisation_at_peak * f64::from(sized) / f64::from(new);
        format!(
            "utilisation at peak {:.0}% with {new} {unit} (the sizing model: {:.0}% with {sized})",
            u * 100.0,
            a.utilisation_at_peak * 100.0
        )
    })
}

/// Reads the stack and the live values and builds the change. Refused
/// while the stack has an operation in progress.
pub async fn prepare(
    cfn: &dyn CloudFormation,
    live: LiveReaders<'_>,
    rendered: &Rendered,
    component: Component,
    req: &ScaleRequest,
) -> Result<ScalePlan, ScaleError> {
    let s = rendered
        .stacks
        .iter()
        .find(|s| s.id == component.stack())
        .ok_or_else(|| missing(component, "its stack is not rendered"))?;
    let stack = cfn
        .describe_stack(&s.stack_name)
        .await?
        .filter(|st| !st.status.is_review())
        .ok_or_else(|| {
            missing(
                component,
                format!(
                    "{} does not exist; apply the environment first",
                    s.stack_name
                ),
            )
        })?;
    if stack.status.is_in_progress() {
        if let PlanAction::Busy {
            status, since, by, ..
        } = plan::busy(cfn, Some(&stack), stack.status.as_str()).await?
        {
            return Err(ScaleError::Busy {
                component,
                stack: s.stack_name.clone(),
                status,
                since,
                by,
            });
        }
    }
    let target = Target::of(component, &stack, s).map_err(|e| missing(component, e))?;
    let t = s.template.to_value();
    let sizing = &rendered.sizing;
    let mut steps = Vec::new();
    let mut calls = Vec::new();
    let mut util = None;
    let cap = live.capacity;
    match &target {
        Target::Service {
            cluster, service, ..
        }
        | Target::Intent {
            endpoint: cluster,
            variant: service,
        } => {
            let is_service = component == Component::Service;
            let id = target
                .scalable_id()
                .ok_or_else(|| missing(component, "no scalable target"))?;
            let live_bounds = cap.scalable_target(&id).await?.ok_or_else(|| {
                missing(
                    component,
                    format!("no scalable target is registered for {}", id.resource_id),
                )
            })?;
            let rendered_bounds =
                live::rendered_bounds(&t, "ScalableTarget").unwrap_or(live_bounds);
            // A scheduled pool: a scale suspends the schedule (the record
            // takes precedence over the scheduled minimum, `holds.rs`), and
            // --revert resumes it at the minimum due this hour.
            let scheduled = live::is_scheduled(&t);
            let bounds = if req.revert {
                let due = match live::schedule_due(rendered, &t, component, live.now) {
                    Some(live::Allowed::Scheduled { min, .. }) => min,
                    _ => rendered_bounds.min,
                };
                Bounds {
                    min: due,
                    max: rendered_bounds.max,
                    scheduled_suspended: scheduled.then_some(false),
                }
            } else {
                Bounds {
                    min: req.min.unwrap_or(live_bounds.min),
                    max: req.max.unwrap_or(live_bounds.max),
                    scheduled_suspended: scheduled.then_some(true),
                }
            };
            if bounds.min > bounds.max {
                return Err(invalid(
                    component,
                    vec![format!(
                        "the bounds would be {}..{} (min above max; the live bounds are {}..{})",
                        bounds.min, bounds.max, live_bounds.min, live_bounds.max
                    )],
                ));
            }
            let current = if is_service {
                cap.ecs_service(cluster, service)
                    .await?
                    .ok_or_else(|| {
                        missing(
                            component,
                            format!("ECS service {cluster}/{service} does not exist"),
                        )
                    })?
                    .desired
            } else {
                cap.endpoint(cluster)
                    .await?
                    .and_then(|e| e.variant(service).map(|v| v.desired_instances))
                    .ok_or_else(|| {
                        missing(
                            component,
                            format!("endpoint {cluster} has no variant {service}"),
                        )
                    })?
            };
            let wanted = if req.revert {
                let sized = if is_service {
                    sizing.service.tasks
                } else {
                    sizing.sagemaker.instances
                };
                Some(sized.clamp(bounds.min, bounds.max))
            } else if is_service {
                req.desired
            } else {
                req.instances
            };
            if let Some(d) = wanted {
                if !(bounds.min..=bounds.max).contains(&d) {
                    return Err(invalid(component, vec![format!(
                        "the desired count {d} is outside the autoscaling bounds {}..{}; give --min/--max too",
                        bounds.min, bounds.max
                    )]));
                }
            }
            let b1 = step(
                &mut steps,
                "ScalableTarget",
                "/MinCapacity",
                live_bounds.min,
                bounds.min,
            );
            let b2 = step(
                &mut steps,
                "ScalableTarget",
                "/MaxCapacity",
                live_bounds.max,
                bounds.max,
            );
            let b3 = match bounds.scheduled_suspended {
                Some(after) => step(
                    &mut steps,
                    "ScalableTarget",
                    holds::SCHEDULE_SUSPENDED,
                    live_bounds.scheduled_suspended.unwrap_or(false),
                    after,
                ),
                None => false,
            };
            if b1 || b2 || b3 {
                calls.push(Call::SetBounds {
                    id: id.clone(),
                    bounds,
                });
            }
            // Application Auto Scaling moves the desired count inside new
            // bounds by itself ("it changes the resource's current capacity
            // to a value that is inside of this range": RegisterScalableTarget).
            let after = wanted.unwrap_or_else(|| current.clamp(bounds.min, bounds.max));
            let (logical, prop) = if is_service {
                ("Service", "/DesiredCount")
            } else {
                ("Endpoint", "/DesiredInstanceCount")
            };
            if step(&mut steps, logical, prop, current, after) && wanted.is_some() {
                calls.push(if is_service {
                    Call::SetDesired {
                        cluster: cluster.clone(),
                        service: service.clone(),
                        n: after,
                    }
                } else {
                    Call::SetInstances {
                        endpoint: cluster.clone(),
                        variant: service.clone(),
                        n: after,
                    }
                });
            }
            util = if is_service {
                utilisation(
                    &sizing.service.assessment,
                    sizing.service.tasks,
                    after,
                    "tasks",
                )
            } else {
                utilisation(
                    &sizing.sagemaker.assessment,
                    sizing.sagemaker.instances,
                    after,
                    "instances",
                )
            };
        }
        Target::Cache { group } => {
            let g = cap.replication_group(group).await?.ok_or_else(|| {
                missing(
                    component,
                    format!("replication group {group} does not exist"),
                )
            })?;
            let from = g.replicas.iter().copied().max().unwrap_or(0);
            let (replicas, node_type) = if req.revert {
                (
                    live::property(&t, "Redis", "ReplicasPerNodeGroup")
                        .and_then(serde_json::Value::as_u64)
                        .and_then(|n| u32::try_from(n).ok()),
                    live::property(&t, "Redis", "CacheNodeType")
                        .and_then(|v| v.as_str())
                        .map(str::to_owned),
                )
            } else {
                (req.replicas, req.node_type.clone())
            };
            if let Some(to) = replicas {
                if step(
                    &mut steps,
                    "Redis",
                    "/ReplicasPerNodeGroup",
                    live::replicas_text(&g.replicas),
                    to,
                ) {
                    calls.push(Call::SetReplicas {
                        group: group.clone(),
                        from,
                        to,
                    });
                }
                let nodes_sized = sizing.redis.replicas_per_shard + 1;
                util = utilisation(
                    &sizing.redis.assessment,
                    nodes_sized,
                    to + 1,
                    "nodes per shard",
                );
            }
            if let Some(nt) = node_type {
                if step(&mut steps, "Redis", "/CacheNodeType", &g.node_type, &nt) {
                    calls.push(Call::SetNodeType {
                        group: group.clone(),
                        node_type: nt,
                    });
                }
            }
        }
        Target::Dax { cluster } => {
            let c = cap.dax_cluster(cluster).await?.ok_or_else(|| {
                missing(component, format!("DAX cluster {cluster} does not exist"))
            })?;
            let to = if req.revert {
                live::property(&t, "DaxCluster", "ReplicationFactor")
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok())
            } else {
                req.nodes
            };
            if let Some(to) = to {
                if step(
                    &mut steps,
                    "DaxCluster",
                    "/ReplicationFactor",
                    c.total_nodes,
                    to,
                ) {
                    calls.push(Call::SetDaxNodes {
                        cluster: cluster.clone(),
                        from: c.total_nodes,
                        to,
                    });
                }
                util = utilisation(&sizing.dax.assessment, sizing.dax.nodes, to, "nodes");
            }
        }
        Target::Search => {
            let search = live
                .search
                .ok_or_else(|| missing(component, "OpenSearch Serverless is not reachable"))?;
            let now = search.capacity_limits().await?;
            let wanted = if req.revert {
                super::capacity::wanted(sizing)
            } else {
                CapacityLimits {
                    max_search_ocu: req.max_search_ocu.or(now.max_search_ocu),
                    max_indexing_ocu: req.max_indexing_ocu.or(now.max_indexing_ocu),
                }
            };
            let show = |v: Option<u32>| v.map_or_else(|| "unset".to_owned(), |v| v.to_string());
            let a = step(
                &mut steps,
                ACCOUNT_SETTINGS,
                "/capacityLimits/maxSearchCapacityInOCU",
                show(now.max_search_ocu),
                show(wanted.max_search_ocu),
            );
            let b = step(
                &mut steps,
                ACCOUNT_SETTINGS,
                "/capacityLimits/maxIndexingCapacityInOCU",
                show(now.max_indexing_ocu),
                show(wanted.max_indexing_ocu),
            );
            if a || b {
                calls.push(Call::SetSearch { limits: wanted });
            }
        }
    }
    Ok(ScalePlan {
        component,
        environment: rendered.manifest.environment.clone(),
        stack_name: s.stack_name.clone(),
        target,
        steps,
        calls,
        utilisation: util,
        revert: req.revert,
    })
}

/// Who, when, why and until when, for the records a scale writes.
#[derive(Debug, Clone)]
pub struct Attribution {
    pub by: String,
    pub at: String,
    pub reason: String,
    pub until: String,
}

/// The records `plan` writes (one per changed property).
pub fn records(plan: &ScalePlan, who: &Attribution) -> Vec<ScaleRecord> {
    plan.steps
        .iter()
        .map(|s| ScaleRecord {
            version: RECORD_VERSION,
            component: plan.component.name().into(),
            stack: plan.component.stack(),
            logical_id: s.logical_id.clone(),
            property: s.property.clone(),
            value: s.after.clone(),
            by: who.by.clone(),
            at: who.at.clone(),
            reason: who.reason.clone(),
            until: who.until.clone(),
        })
        .collect()
}

/// Makes the calls in order (bounds before counts), then writes the records
/// (or, for `--revert`, removes every record of the component). Stops at
/// the first failed call; the error names it and what was already done.
pub async fn execute(
    live: LiveReaders<'_>,
    store: &dyn RecordStore,
    plan: &ScalePlan,
    who: &Attribution,
) -> Result<Vec<String>, ScaleError> {
    let mut done = Vec::new();
    for call in &plan.calls {
        let r: Result<(), ScaleError> = match call {
            Call::SetBounds { id, bounds } => live
                .capacity
                .set_bounds(id, *bounds)
                .await
                .map_err(Into::into),
            Call::SetDesired {
                cluster,
                service,
                n,
            } => live
                .capacity
                .set_desired_count(cluster, service, *n)
                .await
                .map_err(Into::into),
            Call::SetReplicas { group, from, to } => live
                .capacity
                .set_replicas(group, *from, *to)
                .await
                .map_err(Into::into),
            Call::SetNodeType { group, node_type } => live
                .capacity
                .set_cache_node_type(group, node_type)
                .await
                .map_err(Into::into),
            Call::SetDaxNodes { cluster, from, to } => live
                .capacity
                .set_dax_nodes(cluster, *from, *to)
                .await
                .map_err(Into::into),
            Call::SetInstances {
                endpoint,
                variant,
                n,
            } => live
                .capacity
                .set_instances(endpoint, variant, *n)
                .await
                .map_err(Into::into),
            Call::SetSearch { limits } => match live.search {
                Some(s) => s
                    .set_capacity_limits(limits)
                    .await
                    .map(|_| ())
                    .map_err(Into::into),
                None => Err(missing(
                    plan.component,
                    "OpenSearch Serverless is not reachable",
                )),
            },
        };
        if let Err(e) = r {
            if !done.is_empty() {
                tracing::error!(
                    "scale {}: done before the failure: {}",
                    plan.component,
                    done.join("; ")
                );
            }
            return Err(e);
        }
        done.push(call.to_string());
    }
    if plan.revert {
        for (logical_id, property) in properties(plan.component) {
            let r = ScaleRecord {
                version: RECORD_VERSION,
                component: plan.component.name().into(),
                stack: plan.component.stack(),
                logical_id: (*logical_id).into(),
                property: (*property).into(),
                value: String::new(),
                by: who.by.clone(),
                at: who.at.clone(),
                reason: who.reason.clone(),
                until: who.until.clone(),
            };
            store.remove(&plan.environment, &r).await?;
        }
    } else {
        for r in records(plan, who) {
            store.put(&plan.environment, &r).await?;
            done.push(format!(
                "record {}",
                crate::aws::scale_records::name_of(&plan.environment, &r)
            ));
        }
    }
    Ok(done)
}

/// Before → after, the utilisation, the calls.
pub fn render_text(plan: &ScalePlan, who: Option<&Attribution>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Scale {} of `{}` ({}):",
        plan.component, plan.environment, plan.stack_name
    );
    if plan.steps.is_empty() {
        let _ = writeln!(
            out,
            "  nothing to change: the live values are already those"
        );
    }
    for s in &plan.steps {
        let _ = writeln!(
            out,
            "  {}{}: {} -> {}",
            s.logical_id, s.property, s.before, s.after
        );
    }
    if let Some(u) = &plan.utilisation {
        let _ = writeln!(out, "  {u}");
    }
    if let Some(w) = who {
        if plan.revert {
            let _ = writeln!(out, "  ends the {} scale records", plan.component);
        } else if !plan.steps.is_empty() {
            let _ = writeln!(
                out,
                "  recorded as scaled by {} ({}), until {}; drift acknowledges it and apply keeps it until then",
                w.by, w.reason, w.until
            );
        }
    }
    out
}

/// Whether the change has taken effect, and a line saying where it is.
pub async fn settled(
    live: LiveReaders<'_>,
    plan: &ScalePlan,
) -> Result<(bool, String), ScaleError> {
    let cap = live.capacity;
    Ok(match &plan.target {
        Target::Service {
            cluster, service, ..
        } => match cap.ecs_service(cluster, service).await? {
            Some(s) => (
                s.running == s.desired && s.pending == 0 && s.deployments <= 1,
                format!(
                    "running {}/{} (pending {}, {} deployment(s))",
                    s.running, s.desired, s.pending, s.deployments
                ),
            ),
            None => (false, "the service is gone".into()),
        },
        Target::Cache { group } => match cap.replication_group(group).await? {
            Some(g) => (
                g.status == "available",
                format!("replication group {}", g.status),
            ),
            None => (false, "the replication group is gone".into()),
        },
        Target::Dax { cluster } => match cap.dax_cluster(cluster).await? {
            Some(c) => (
                c.status == "available" && c.active_nodes == c.total_nodes,
                format!(
                    "cluster {}, {}/{} nodes active",
                    c.status, c.active_nodes, c.total_nodes
                ),
            ),
            None => (false, "the cluster is gone".into()),
        },
        Target::Intent { endpoint, variant } => match cap.endpoint(endpoint).await? {
            Some(e) => {
                let v = e.variant(variant);
                let (cur, want) = v.map_or((0, 0), |v| (v.current_instances, v.desired_instances));
                (
                    e.status == "InService" && cur == want,
                    format!("endpoint {}, {cur}/{want} instances", e.status),
                )
            }
            None => (false, "the endpoint is gone".into()),
        },
        // Account settings take effect when set.
        Target::Search => (true, "limits set".into()),
    })
}

/// Polls [`settled`] until it holds or `timeout` passes; `report` gets each
/// progress line. Returns whether it settled.
pub async fn wait(
    live: LiveReaders<'_>,
    plan: &ScalePlan,
    timeout: Duration,
    poll: Duration,
    report: &dyn Fn(&str),
) -> Result<bool, ScaleError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let (done, line) = settled(live, plan).await?;
        report(&line);
        if done {
            return Ok(true);
        }
        if tokio::time::Instant::now() + poll > deadline {
            return Ok(false);
        }
        tokio::time::sleep(poll).await;
    }
}
