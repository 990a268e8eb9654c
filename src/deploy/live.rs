//! Live capacity: for every resource `mangactl` sizes, the value the
//! service reports now against what the rendered templates say it may be.
//! Drift's third layer (`drift.rs`) and `mangactl status` read it; the
//! components are the ones `mangactl scale` changes (`src/cli/scale.rs`).
//!
//! | component | stack | resource / property | may be |
//! |---|---|---|---|
//! | service | service | `ScalableTarget` `/MinCapacity`, `/MaxCapacity` | as rendered; a scheduled minimum: the hour's (or the floor) |
//! | service | service | `Service` `/DesiredCount` | inside the rendered min..max (the autoscaler moves it) |
//! | service | service | `Service` `/TaskDefinition` | the revision the stack deployed (output `TaskDefinitionArn`) |
//! | cache | cache | `Redis` `/CacheNodeType`, `/ReplicasPerNodeGroup` | as rendered |
//! | dax | memory | `DaxCluster` `/NodeType`, `/ReplicationFactor` | as rendered |
//! | intent | intent | `ScalableTarget` `/MinCapacity`, `/MaxCapacity` | as rendered; a scheduled minimum: the hour's (or the floor) |
//! | intent | intent | `Endpoint` `/DesiredInstanceCount` | inside the rendered min..max |
//! | search | search | account settings `/capacityLimits/…` | the sizing plan's maxima |
//!
//! Properties are named as CloudFormation drift detection names them, so
//! one scale record or `drift.accept` entry covers a change in whichever
//! layer reports it. Physical names come from the stacks' outputs, never
//! from guessing. A read that fails leaves the item unchecked, with why.

use std::fmt;

use serde::Serialize;
use serde_json::Value;
use stacks::render::{Rendered, RenderedStack};
use stacks::stacks::{cache, intent, memory, service, StackId};

use super::capacity as search_capacity;
use crate::aws::capacity::{Bounds, Capacity, ScalableId};
use crate::aws::cloudformation::Stack;
use crate::aws::{AwsError, ErrorClass, SearchCapacity};

/// What `mangactl scale` changes: one per sized resource group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    Service,
    Cache,
    Dax,
    Intent,
    Search,
}

impl Component {
    pub const ALL: [Component; 5] = [
        Component::Service,
        Component::Cache,
        Component::Dax,
        Component::Intent,
        Component::Search,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Component::Service => "service",
            Component::Cache => "cache",
            Component::Dax => "dax",
            Component::Intent => "intent",
            Component::Search => "search",
        }
    }

    /// The stack that deploys it.
    pub fn stack(self) -> StackId {
        match self {
            Component::Service => StackId::Service,
            Component::Cache => StackId::Cache,
            Component::Dax => StackId::Memory,
            Component::Intent => StackId::Intent,
            Component::Search => StackId::Search,
        }
    }

    pub fn of_stack(stack: StackId) -> Option<Component> {
        Component::ALL.into_iter().find(|c| c.stack() == stack)
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where one live check stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    InSync,
    Drifted,
    /// Drifted, and an unexpired scale record covers it.
    Acknowledged,
    /// Drifted, and an unexpired `drift.accept` entry covers it.
    Ignored,
    /// Could not be read (see `note`).
    Unchecked,
}

/// What the templates allow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Allowed {
    Exactly {
        value: String,
    },
    /// Inclusive; the autoscaler moves the value inside.
    Between {
        min: u32,
        max: u32,
    },
    /// A scheduled minimum (sizing's `schedule.rs`): the hour's value, the
    /// previous hour's in the minutes after the hour, or the template's
    /// floor, which a stack update restores until the next hour's action.
    Scheduled {
        floor: u32,
        min: u32,
        previous: Option<u32>,
        hour: u32,
        timezone: String,
    },
}

impl Allowed {
    fn exactly(v: impl ToString) -> Self {
        Allowed::Exactly {
            value: v.to_string(),
        }
    }

    pub fn admits(&self, actual: &str) -> bool {
        match self {
            Allowed::Exactly { value } => value == actual,
            Allowed::Between { min, max } => actual
                .parse::<u32>()
                .is_ok_and(|n| (*min..=*max).contains(&n)),
            Allowed::Scheduled {
                floor,
                min,
                previous,
                ..
            } => actual
                .parse::<u32>()
                .is_ok_and(|n| n == *floor || n == *min || Some(n) == *previous),
        }
    }
}

impl fmt::Display for Allowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Allowed::Exactly { value } => f.write_str(value),
            Allowed::Between { min, max } => write!(f, "{min}..{max}"),
            Allowed::Scheduled {
                floor,
                min,
                previous,
                hour,
                timezone,
            } => {
                write!(f, "{min} (scheduled from {hour:02}:00 {timezone})")?;
                if let Some(p) = previous {
                    write!(f, " or {p} (the hour before, for the first minutes)")?;
                }
                write!(
                    f,
                    " or {floor} (the floor, until the next hour's action after a deploy)"
                )
            }
        }
    }
}

/// One live value against what it may be.
#[derive(Debug, Clone, Serialize)]
pub struct CapacityItem {
    pub component: Component,
    pub logical_id: String,
    /// `/DesiredCount`, as drift detection would name it.
    pub property: String,
    pub allowed: Allowed,
    /// The live value; `None` when the resource does not exist or could not be read.
    pub actual: Option<String>,
    pub status: ItemStatus,
    /// Running counts, why unchecked, or what covers it.
    pub note: Option<String>,
}

impl CapacityItem {
    /// The item as drift and status print it:
    /// `ok  Service/DesiredCount: live 2, allowed 1..3 (note)`.
    pub fn line(&self) -> String {
        let mark = match self.status {
            ItemStatus::InSync => "ok ",
            ItemStatus::Drifted => "!  ",
            ItemStatus::Acknowledged => "ack",
            ItemStatus::Ignored => "ign",
            ItemStatus::Unchecked => "?  ",
        };
        format!(
            "{mark} {}{}: live {}, allowed {}{}",
            self.logical_id,
            self.property,
            self.actual.as_deref().unwrap_or("unknown"),
            self.allowed,
            self.note
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        )
    }

    fn compare(
        component: Component,
        logical_id: &str,
        property: &str,
        allowed: Allowed,
        actual: Option<String>,
    ) -> Self {
        let status = match &actual {
            Some(a) if allowed.admits(a) => ItemStatus::InSync,
            _ => ItemStatus::Drifted,
        };
        CapacityItem {
            component,
            logical_id: logical_id.to_owned(),
            property: property.to_owned(),
            allowed,
            actual,
            status,
            note: None,
        }
    }

    fn unchecked(
        component: Component,
        logical_id: &str,
        property: &str,
        allowed: Allowed,
        why: String,
    ) -> Self {
        CapacityItem {
            component,
            logical_id: logical_id.to_owned(),
            property: property.to_owned(),
            allowed,
            actual: None,
            status: ItemStatus::Unchecked,
            note: Some(why),
        }
    }

    fn with_note(mut self, note: Option<String>) -> Self {
        if note.is_some() {
            self.note = note;
        }
        self
    }
}

/// A component's live check: its items, and whether a read failed for a
/// reason other than an endpoint that lacks the API (that makes a drift
/// run incomplete, not merely unchecked).
#[derive(Debug, Clone, Default, Serialize)]
pub struct LiveCheck {
    pub items: Vec<CapacityItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// The clients the live layer reads through.
#[derive(Debug, Clone, Copy)]
pub struct LiveReaders<'a> {
    pub capacity: &'a dyn Capacity,
    /// `None`: the OpenSearch Serverless limits are not read (`apply
    /// --skip-search-capacity`).
    pub search: Option<&'a dyn SearchCapacity>,
    /// The instant the checks judge at (Unix seconds): which scheduled
    /// minimum stands depends on it.
    pub now: i64,
}

/// The system clock in Unix seconds, for [`LiveReaders::now`].
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A property of a rendered resource.
pub fn property<'a>(template: &'a Value, logical_id: &str, name: &str) -> Option<&'a Value> {
    template
        .get("Resources")?
        .get(logical_id)?
        .get("Properties")?
        .get(name)
}

fn number(template: &Value, logical_id: &str, name: &str) -> Option<u32> {
    property(template, logical_id, name)?
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
}

fn text(template: &Value, logical_id: &str, name: &str) -> Option<String> {
    property(template, logical_id, name)?
        .as_str()
        .map(str::to_owned)
}

/// The rendered bounds of scalable target `logical_id`, if there is one.
pub fn rendered_bounds(template: &Value, logical_id: &str) -> Option<Bounds> {
    Some(Bounds {
        min: number(template, logical_id, "MinCapacity")?,
        max: number(template, logical_id, "MaxCapacity")?,
        scheduled_suspended: property(template, logical_id, "SuspendedState")
            .and_then(|s| s.get("ScheduledScalingSuspended")?.as_bool()),
    })
}

/// The scheduled minimum of `component`'s pool due at `now`, when the
/// rendering schedules one (`ScheduledActions` on its `ScalableTarget`) and
/// does not suspend it (an active scale record: `holds.rs`).
pub fn scheduled_min(
    rendered: &Rendered,
    template: &Value,
    component: Component,
    now: i64,
) -> Option<Allowed> {
    let suspended = rendered_bounds(template, "ScalableTarget")?.scheduled_suspended;
    if suspended != Some(false) {
        return None;
    }
    schedule_due(rendered, template, component, now)
}

/// Whether the rendered `ScalableTarget` carries scheduled actions.
pub fn is_scheduled(template: &Value) -> bool {
    property(template, "ScalableTarget", "ScheduledActions")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
}

/// The scheduled minimum due at `now`, suspended or not (what `scale
/// --revert` returns to).
pub fn schedule_due(
    rendered: &Rendered,
    template: &Value,
    component: Component,
    now: i64,
) -> Option<Allowed> {
    if !is_scheduled(template) {
        return None;
    }
    let schedule = &rendered.sizing.schedule;
    let pool = match component {
        Component::Service => &schedule.service,
        Component::Intent => &schedule.sagemaker,
        _ => return None,
    };
    let due = schedule.due(pool, now)?;
    Some(Allowed::Scheduled {
        floor: pool.floor,
        min: due.min,
        previous: due.previous,
        hour: due.hour,
        timezone: schedule.timezone.clone(),
    })
}

/// The intent endpoint's variant (its first production variant).
pub fn variant_name(template: &Value) -> String {
    property(template, "EndpointConfig", "ProductionVariants")
        .and_then(|v| v.get(0)?.get("VariantName")?.as_str())
        .unwrap_or("AllTraffic")
        .to_owned()
}

/// Physical names a component's checks need, from the stack's outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Service {
        cluster: String,
        service: String,
        task_definition: Option<String>,
    },
    Cache {
        group: String,
    },
    Dax {
        cluster: String,
    },
    Intent {
        endpoint: String,
        variant: String,
    },
    Search,
}

impl Target {
    /// From the deployed stack's outputs; `Err` names the missing output.
    pub fn of(
        component: Component,
        stack: &Stack,
        rendered: &RenderedStack,
    ) -> Result<Target, String> {
        let out = |key: stacks::model::template::OutputKey| {
            stack
                .output(key.name)
                .map(str::to_owned)
                .ok_or_else(|| format!("{} has no output {}", stack.name, key.name))
        };
        Ok(match component {
            Component::Service => Target::Service {
                cluster: out(service::CLUSTER_NAME)?,
                service: out(service::SERVICE_NAME)?,
                // Deployments made before the output existed have none.
                task_definition: out(service::TASK_DEFINITION).ok(),
            },
            Component::Cache => Target::Cache {
                group: out(cache::GROUP_ID)?,
            },
            Component::Dax => Target::Dax {
                cluster: out(memory::DAX_NAME)?,
            },
            Component::Intent => Target::Intent {
                endpoint: out(intent::ENDPOINT_NAME)?,
                variant: variant_name(&rendered.template.to_value()),
            },
            Component::Search => Target::Search,
        })
    }

    /// The Application Auto Scaling target, for the two that have one.
    pub fn scalable_id(&self) -> Option<ScalableId> {
        match self {
            Target::Service {
                cluster, service, ..
            } => Some(ScalableId::ecs_service(cluster, service)),
            Target::Intent { endpoint, variant } => {
                Some(ScalableId::sagemaker_variant(endpoint, variant))
            }
            _ => None,
        }
    }
}

/// Records a failed read: unchecked items, and `failed` unless the
/// endpoint merely lacks the API.
struct Reads {
    check: LiveCheck,
}

impl Reads {
    fn error(&mut self, e: &AwsError) -> String {
        if e.class != ErrorClass::NotImplemented && self.check.failed.is_none() {
            self.check.failed = Some(e.to_string());
        }
        if e.class == ErrorClass::NotImplemented {
            format!("the endpoint does not implement {}", e.operation)
        } else {
            format!("{} failed: {}", e.operation, e.reason())
        }
    }
}

const ABSENT: &str = "(absent)";

/// Checks one component of a deployed stack.
pub async fn check(
    readers: LiveReaders<'_>,
    rendered: &Rendered,
    component: Component,
    stack: &Stack,
) -> LiveCheck {
    let Some(s) = rendered.stacks.iter().find(|s| s.id == component.stack()) else {
        return LiveCheck::default();
    };
    let template = s.template.to_value();
    let mut reads = Reads {
        check: LiveCheck::default(),
    };
    let target = match Target::of(component, stack, s) {
        Ok(t) => t,
        Err(why) => {
            reads.check.items.push(CapacityItem::unchecked(
                component,
                "(outputs)",
                "",
                Allowed::exactly("the stack's outputs"),
                why,
            ));
            return reads.check;
        }
    };
    let items = match &target {
        Target::Service {
            cluster,
            service,
            task_definition,
        } => {
            let mut items = bounds_items(
                readers,
                &mut reads,
                component,
                (rendered, &template),
                &target,
            )
            .await;
            let allowed = match rendered_bounds(&template, "ScalableTarget") {
                Some(b) => Allowed::Between {
                    min: b.min,
                    max: b.max,
                },
                None => Allowed::exactly(number(&template, "Service", "DesiredCount").unwrap_or(1)),
            };
            match readers.capacity.ecs_service(cluster, service).await {
                Ok(live) => {
                    let note = live.as_ref().and_then(|l| {
                        (l.running != l.desired || l.deployments > 1).then(|| {
                            format!(
                                "running {}, pending {}, {} deployment(s)",
                                l.running, l.pending, l.deployments
                            )
                        })
                    });
                    items.push(
                        CapacityItem::compare(
                            component,
                            "Service",
                            "/DesiredCount",
                            allowed,
                            Some(
                                live.as_ref()
                                    .map_or_else(|| ABSENT.to_owned(), |l| l.desired.to_string()),
                            ),
                        )
                        .with_note(note),
                    );
                    if let (Some(l), Some(td)) = (live, task_definition) {
                        items.push(CapacityItem::compare(
                            component,
                            "Service",
                            "/TaskDefinition",
                            Allowed::exactly(td),
                            Some(l.task_definition),
                        ));
                    }
                }
                Err(e) => {
                    let why = reads.error(&e);
                    items.push(CapacityItem::unchecked(
                        component,
                        "Service",
                        "/DesiredCount",
                        allowed,
                        why,
                    ));
                }
            }
            items
        }
        Target::Intent { endpoint, variant } => {
            let mut items = bounds_items(
                readers,
                &mut reads,
                component,
                (rendered, &template),
                &target,
            )
            .await;
            let allowed = match rendered_bounds(&template, "ScalableTarget") {
                Some(b) => Allowed::Between {
                    min: b.min,
                    max: b.max,
                },
                None => Allowed::exactly(
                    property(&template, "EndpointConfig", "ProductionVariants")
                        .and_then(|v| v.get(0)?.get("InitialInstanceCount")?.as_u64())
                        .unwrap_or(1),
                ),
            };
            match readers.capacity.endpoint(endpoint).await {
                Ok(live) => {
                    let v = live.as_ref().and_then(|e| e.variant(variant));
                    let note = live.as_ref().and_then(|e| {
                        let current = v.map_or(0, |v| v.current_instances);
                        let desired = v.map_or(0, |v| v.desired_instances);
                        (e.status != "InService" || current != desired).then(|| {
                            format!("endpoint {}, {current} instance(s) in service", e.status)
                        })
                    });
                    items.push(
                        CapacityItem::compare(
                            component,
                            "Endpoint",
                            "/DesiredInstanceCount",
                            allowed,
                            Some(v.map_or_else(
                                || ABSENT.to_owned(),
                                |v| v.desired_instances.to_string(),
                            )),
                        )
                        .with_note(note),
                    );
                }
                Err(e) => {
                    let why = reads.error(&e);
                    items.push(CapacityItem::unchecked(
                        component,
                        "Endpoint",
                        "/DesiredInstanceCount",
                        allowed,
                        why,
                    ));
                }
            }
            items
        }
        Target::Cache { group } => {
            let node_type =
                Allowed::exactly(text(&template, "Redis", "CacheNodeType").unwrap_or_default());
            let replicas =
                Allowed::exactly(number(&template, "Redis", "ReplicasPerNodeGroup").unwrap_or(0));
            match readers.capacity.replication_group(group).await {
                Ok(live) => {
                    let note = live
                        .as_ref()
                        .filter(|g| g.status != "available")
                        .map(|g| format!("replication group {}", g.status));
                    vec![
                        CapacityItem::compare(
                            component,
                            "Redis",
                            "/CacheNodeType",
                            node_type,
                            Some(
                                live.as_ref()
                                    .map_or_else(|| ABSENT.to_owned(), |g| g.node_type.clone()),
                            ),
                        )
                        .with_note(note.clone()),
                        CapacityItem::compare(
                            component,
                            "Redis",
                            "/ReplicasPerNodeGroup",
                            replicas,
                            Some(
                                live.as_ref().map_or_else(
                                    || ABSENT.to_owned(),
                                    |g| replicas_text(&g.replicas),
                                ),
                            ),
                        )
                        .with_note(note),
                    ]
                }
                Err(e) => {
                    let why = reads.error(&e);
                    vec![
                        CapacityItem::unchecked(
                            component,
                            "Redis",
                            "/CacheNodeType",
                            node_type,
                            why.clone(),
                        ),
                        CapacityItem::unchecked(
                            component,
                            "Redis",
                            "/ReplicasPerNodeGroup",
                            replicas,
                            why,
                        ),
                    ]
                }
            }
        }
        Target::Dax { cluster } => {
            let node_type =
                Allowed::exactly(text(&template, "DaxCluster", "NodeType").unwrap_or_default());
            let nodes =
                Allowed::exactly(number(&template, "DaxCluster", "ReplicationFactor").unwrap_or(1));
            match readers.capacity.dax_cluster(cluster).await {
                Ok(live) => {
                    let note = live.as_ref().filter(|c| c.status != "available").map(|c| {
                        format!("cluster {}, {} node(s) active", c.status, c.active_nodes)
                    });
                    vec![
                        CapacityItem::compare(
                            component,
                            "DaxCluster",
                            "/NodeType",
                            node_type,
                            Some(
                                live.as_ref()
                                    .map_or_else(|| ABSENT.to_owned(), |c| c.node_type.clone()),
                            ),
                        ),
                        CapacityItem::compare(
                            component,
                            "DaxCluster",
                            "/ReplicationFactor",
                            nodes,
                            Some(
                                live.as_ref().map_or_else(
                                    || ABSENT.to_owned(),
                                    |c| c.total_nodes.to_string(),
                                ),
                            ),
                        )
                        .with_note(note),
                    ]
                }
                Err(e) => {
                    let why = reads.error(&e);
                    vec![
                        CapacityItem::unchecked(
                            component,
                            "DaxCluster",
                            "/NodeType",
                            node_type,
                            why.clone(),
                        ),
                        CapacityItem::unchecked(
                            component,
                            "DaxCluster",
                            "/ReplicationFactor",
                            nodes,
                            why,
                        ),
                    ]
                }
            }
        }
        Target::Search => {
            let wanted = search_capacity::wanted(&rendered.sizing);
            let show = |v: Option<u32>| v.map_or_else(|| "unset".to_owned(), |v| v.to_string());
            let fields = [
                (
                    "/capacityLimits/maxSearchCapacityInOCU",
                    wanted.max_search_ocu,
                ),
                (
                    "/capacityLimits/maxIndexingCapacityInOCU",
                    wanted.max_indexing_ocu,
                ),
            ];
            let Some(search) = readers.search else {
                return LiveCheck::default();
            };
            match search.capacity_limits().await {
                Ok(live) => {
                    let actual = [live.max_search_ocu, live.max_indexing_ocu];
                    fields
                        .iter()
                        .zip(actual)
                        .map(|((p, w), a)| {
                            CapacityItem::compare(
                                component,
                                ACCOUNT_SETTINGS,
                                p,
                                Allowed::exactly(show(*w)),
                                Some(show(a)),
                            )
                        })
                        .collect()
                }
                Err(e) => {
                    let why = match &e {
                        crate::aws::CapacityError::Aws(a) => reads.error(a),
                        other => other.to_string(),
                    };
                    fields
                        .iter()
                        .map(|(p, w)| {
                            CapacityItem::unchecked(
                                component,
                                ACCOUNT_SETTINGS,
                                p,
                                Allowed::exactly(show(*w)),
                                why.clone(),
                            )
                        })
                        .collect()
                }
            }
        }
    };
    reads.check.items.extend(items);
    reads.check
}

/// The logical id under which the account-wide OpenSearch Serverless
/// limits are reported (they belong to no template resource).
pub const ACCOUNT_SETTINGS: &str = "AccountSettings";

/// `2`, or `2,1` when node groups differ.
pub fn replicas_text(replicas: &[u32]) -> String {
    let mut distinct = replicas.to_vec();
    distinct.dedup();
    match distinct.as_slice() {
        [] => "0".into(),
        [one] => one.to_string(),
        _ => replicas
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(","),
    }
}

async fn bounds_items(
    readers: LiveReaders<'_>,
    reads: &mut Reads,
    component: Component,
    (rendered_all, template): (&Rendered, &Value),
    target: &Target,
) -> Vec<CapacityItem> {
    let scheduled = scheduled_min(rendered_all, template, component, readers.now);
    let (Some(rendered), Some(id)) = (
        rendered_bounds(template, "ScalableTarget"),
        target.scalable_id(),
    ) else {
        return Vec::new();
    };
    let want = |p: &str| match (p, &scheduled) {
        ("/MinCapacity", Some(s)) => s.clone(),
        ("/MinCapacity", None) => Allowed::exactly(rendered.min),
        _ => Allowed::exactly(rendered.max),
    };
    let pairs = ["/MinCapacity", "/MaxCapacity"];
    match readers.capacity.scalable_target(&id).await {
        Ok(live) => pairs
            .iter()
            .map(|p| {
                let actual = live.map(|b| if *p == "/MinCapacity" { b.min } else { b.max });
                CapacityItem::compare(
                    component,
                    "ScalableTarget",
                    p,
                    want(p),
                    Some(actual.map_or_else(|| "(not registered)".to_owned(), |a| a.to_string())),
                )
            })
            .collect(),
        Err(e) => {
            let why = reads.error(&e);
            pairs
                .iter()
                .map(|p| {
                    CapacityItem::unchecked(component, "ScalableTarget", p, want(p), why.clone())
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_ranges_admit_what_the_autoscaler_may_choose() {
        let r = Allowed::Between { min: 2, max: 6 };
        assert!(r.admits("2") && r.admits("6"));
        assert!(!r.admits("1") && !r.admits("7") && !r.admits("(absent)"));
        assert_eq!(r.to_string(), "2..6");
        assert!(Allowed::exactly("cache.m7g.large").admits("cache.m7g.large"));
        assert!(!Allowed::exactly(3).admits("2"));
    }

    #[test]
    fn replica_counts_read_as_one_number_when_node_groups_agree() {
        assert_eq!(replicas_text(&[2, 2]), "2");
        assert_eq!(replicas_text(&[2, 1]), "2,1");
        assert_eq!(replicas_text(&[]), "0");
    }
}
