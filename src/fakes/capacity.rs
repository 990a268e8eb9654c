//! [`FakeCapacity`]: an in-memory double of the capacity APIs behind
//! [`crate::aws::Capacity`], for what moto cannot do or the tests must
//! script (a read that fails, a group that stays `modifying`). It keeps the
//! APIs' rules as their references state them:
//!
//! - ElastiCache `IncreaseReplicaCount` / `DecreaseReplicaCount`:
//!   `NewReplicaCount` is the count per node group at the end, it must move
//!   in the operation's direction, and "the minimum number of replicas in a
//!   shard or replication group is: (cluster mode disabled) If Multi-AZ is
//!   enabled: 1" (DecreaseReplicaCount; the stacks enable Multi-AZ and
//!   automatic failover together, so the fake checks failover); the group
//!   reports `modifying` until the next describe.
//! - `ModifyReplicationGroup` with `CacheNodeType`: likewise `modifying`.
//! - DAX `IncreaseReplicationFactor` / `DecreaseReplicationFactor`:
//!   `TotalNodes` becomes the new factor at once, `ActiveNodes` catches up
//!   on the next describe (the CLI reference's example shows
//!   `TotalNodes: 3, ActiveNodes: 1, Status: modifying`).
//! - `UpdateService`, `RegisterScalableTarget` (updates an existing target),
//!   `UpdateEndpointWeightsAndCapacities` (the variant's desired count).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use stacks::render::Rendered;
use stacks::stacks::StackId;

use crate::aws::capacity::{
    Bounds, Capacity, CapacityResult, DaxCluster, EcsService, Endpoint, ReplicationGroup,
    ScalableId, Variant,
};
use crate::aws::AwsError;
use crate::deploy::live::{self, Component};

/// Everything the fake holds; tests edit it directly for out-of-band changes.
#[derive(Debug, Default, Clone)]
pub struct LiveState {
    /// By `cluster/service`.
    pub services: BTreeMap<String, EcsService>,
    /// By resource ID.
    pub targets: BTreeMap<String, Bounds>,
    pub groups: BTreeMap<String, ReplicationGroup>,
    pub dax: BTreeMap<String, DaxCluster>,
    pub endpoints: BTreeMap<String, Endpoint>,
    /// Operations answered so far (`DescribeServices`, …).
    pub calls: Vec<String>,
    /// The next call of an operation fails with this error.
    pub failures: BTreeMap<&'static str, AwsError>,
}

#[derive(Debug, Default, Clone)]
pub struct FakeCapacity {
    state: Arc<Mutex<LiveState>>,
}

impl FakeCapacity {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every sized resource of `rendered` exactly as rendered, named by
    /// the outputs `output(stack, key)` returns (the fake CloudFormation's
    /// [`super::cloudformation::FakeCloudFormation::output`]).
    pub fn as_rendered(
        rendered: &Rendered,
        output: impl Fn(StackId, &str) -> Option<String>,
    ) -> Self {
        let fake = FakeCapacity::new();
        let template = |id: StackId| {
            rendered
                .stacks
                .iter()
                .find(|s| s.id == id)
                .map(|s| s.template.to_value())
        };
        fake.edit(|st| {
            for c in Component::ALL {
                let Some(t) = template(c.stack()) else {
                    continue;
                };
                let out = |key: &str| output(c.stack(), key).unwrap_or_default();
                let num = |id: &str, p: &str| {
                    live::property(&t, id, p)
                        .and_then(serde_json::Value::as_u64)
                        .and_then(|n| u32::try_from(n).ok())
                };
                let bounds = live::rendered_bounds(&t, "ScalableTarget");
                match c {
                    Component::Service => {
                        let (cluster, service) = (out("ClusterName"), out("ServiceName"));
                        let desired = num("Service", "DesiredCount")
                            .or(bounds.map(|b| b.min))
                            .unwrap_or(1);
                        st.services.insert(
                            format!("{cluster}/{service}"),
                            EcsService {
                                status: "ACTIVE".into(),
                                desired,
                                running: desired,
                                pending: 0,
                                task_definition: out("TaskDefinitionArn"),
                                deployments: 1,
                            },
                        );
                        if let Some(b) = bounds {
                            st.targets
                                .insert(ScalableId::ecs_service(&cluster, &service).resource_id, b);
                        }
                    }
                    Component::Intent => {
                        let endpoint = out("EndpointName");
                        let variant = live::variant_name(&t);
                        let n = live::property(&t, "EndpointConfig", "ProductionVariants")
                            .and_then(|v| v.get(0)?.get("InitialInstanceCount")?.as_u64())
                            .and_then(|n| u32::try_from(n).ok())
                            .unwrap_or(1);
                        st.endpoints.insert(
                            endpoint.clone(),
                            Endpoint {
                                status: "InService".into(),
                                variants: vec![Variant {
                                    name: variant.clone(),
                                    current_instances: n,
                                    desired_instances: n,
                                }],
                            },
                        );
                        if let Some(b) = bounds {
                            st.targets.insert(
                                ScalableId::sagemaker_variant(&endpoint, &variant).resource_id,
                                b,
                            );
                        }
                    }
                    Component::Cache => {
                        let groups = num("Redis", "NumNodeGroups").unwrap_or(1);
                        let replicas = num("Redis", "ReplicasPerNodeGroup").unwrap_or(0);
                        let failover = live::property(&t, "Redis", "AutomaticFailoverEnabled")
                            .and_then(serde_json::Value::as_bool)
                            .unwrap_or(false);
                        st.groups.insert(
                            out("ReplicationGroupId"),
                            ReplicationGroup {
                                status: "available".into(),
                                node_type: live::property(&t, "Redis", "CacheNodeType")
                                    .and_then(|v| v.as_str())
                                    .unwrap_or_default()
                                    .to_owned(),
                                replicas: vec![replicas; groups as usize],
                                automatic_failover: if failover { "enabled" } else { "disabled" }
                                    .into(),
                            },
                        );
                    }
                    Component::Dax => {
                        let n = num("DaxCluster", "ReplicationFactor").unwrap_or(1);
                        st.dax.insert(
                            out("DaxClusterName"),
                            DaxCluster {
                                status: "available".into(),
                                node_type: live::property(&t, "DaxCluster", "NodeType")
                                    .and_then(|v| v.as_str())
                                    .unwrap_or_default()
                                    .to_owned(),
                                total_nodes: n,
                                active_nodes: n,
                            },
                        );
                    }
                    Component::Search => {}
                }
            }
        });
        fake
    }

    fn lock(&self) -> MutexGuard<'_, LiveState> {
        // A test that panicked while holding the lock has failed already.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes the live state (an out-of-band change).
    pub fn edit<R>(&self, f: impl FnOnce(&mut LiveState) -> R) -> R {
        f(&mut self.lock())
    }

    pub fn state(&self) -> LiveState {
        self.lock().clone()
    }

    /// The next call of `operation` fails with `err`.
    pub fn fail_next(&self, operation: &'static str, err: AwsError) {
        self.lock().failures.insert(operation, err);
    }

    /// Records the call; the scripted failure if there is one.
    fn call(&self, operation: &'static str) -> CapacityResult<MutexGuard<'_, LiveState>> {
        let mut st = self.lock();
        st.calls.push(operation.to_owned());
        match st.failures.remove(operation) {
            Some(e) => Err(e),
            None => Ok(st),
        }
    }
}

fn invalid(
    service: &'static str,
    operation: &'static str,
    resource: &str,
    code: &str,
    message: String,
) -> AwsError {
    AwsError::service(service, operation, Some(resource), code, message)
}

#[async_trait]
impl Capacity for FakeCapacity {
    async fn ecs_service(
        &self,
        cluster: &str,
        service: &str,
    ) -> CapacityResult<Option<EcsService>> {
        let st = self.call("DescribeServices")?;
        Ok(st.services.get(&format!("{cluster}/{service}")).cloned())
    }

    async fn scalable_target(&self, id: &ScalableId) -> CapacityResult<Option<Bounds>> {
        let st = self.call("DescribeScalableTargets")?;
        Ok(st.targets.get(&id.resource_id).copied())
    }

    async fn replication_group(&self, id: &str) -> CapacityResult<Option<ReplicationGroup>> {
        let mut st = self.call("DescribeReplicationGroups")?;
        let now = st.groups.get(id).cloned();
        // A modification finishes by the next describe.
        if let Some(g) = st.groups.get_mut(id) {
            g.status = "available".into();
        }
        Ok(now)
    }

    async fn dax_cluster(&self, name: &str) -> CapacityResult<Option<DaxCluster>> {
        let mut st = self.call("DescribeClusters")?;
        let now = st.dax.get(name).cloned();
        if let Some(c) = st.dax.get_mut(name) {
            c.status = "available".into();
            c.active_nodes = c.total_nodes;
        }
        Ok(now)
    }

    async fn endpoint(&self, name: &str) -> CapacityResult<Option<Endpoint>> {
        let mut st = self.call("DescribeEndpoint")?;
        let now = st.endpoints.get(name).cloned();
        if let Some(e) = st.endpoints.get_mut(name) {
            e.status = "InService".into();
            for v in &mut e.variants {
                v.current_instances = v.desired_instances;
            }
        }
        Ok(now)
    }

    async fn set_desired_count(&self, cluster: &str, service: &str, n: u32) -> CapacityResult<()> {
        const OP: &str = "UpdateService";
        let mut st = self.call(OP)?;
        let key = format!("{cluster}/{service}");
        let s = st.services.get_mut(&key).ok_or_else(|| {
            invalid(
                "ECS",
                OP,
                &key,
                "ServiceNotFoundException",
                "Service not found.".into(),
            )
        })?;
        s.desired = n;
        s.running = n;
        Ok(())
    }

    async fn set_bounds(&self, id: &ScalableId, bounds: Bounds) -> CapacityResult<()> {
        const OP: &str = "RegisterScalableTarget";
        let mut st = self.call(OP)?;
        if bounds.min > bounds.max {
            return Err(invalid(
                "Application Auto Scaling",
                OP,
                &id.resource_id,
                "ValidationException",
                format!(
                    "Minimum capacity {} cannot be greater than maximum capacity {}",
                    bounds.min, bounds.max
                ),
            ));
        }
        // A request without SuspendedState leaves the suspension as it is.
        let kept = st
            .targets
            .get(&id.resource_id)
            .and_then(|b| b.scheduled_suspended);
        st.targets.insert(
            id.resource_id.clone(),
            Bounds {
                scheduled_suspended: bounds.scheduled_suspended.or(kept),
                ..bounds
            },
        );
        Ok(())
    }

    async fn set_replicas(&self, group: &str, from: u32, to: u32) -> CapacityResult<()> {
        let op = if to > from {
            "IncreaseReplicaCount"
        } else {
            "DecreaseReplicaCount"
        };
        let mut st = self.call(op)?;
        let g = st.groups.get_mut(group).ok_or_else(|| {
            invalid(
                "ElastiCache",
                op,
                group,
                "ReplicationGroupNotFoundFault",
                format!("Replication group {group} not found."),
            )
        })?;
        let current = g.replicas.iter().copied().max().unwrap_or(0);
        if (to > from && to <= current) || (to < from && to >= current) || to == from {
            return Err(invalid(
                "ElastiCache",
                op,
                group,
                "InvalidParameterValue",
                format!(
                    "NewReplicaCount {to} does not {} the current {current}",
                    if to > from { "exceed" } else { "go below" }
                ),
            ));
        }
        if to == 0 && g.automatic_failover == "enabled" {
            return Err(invalid(
                "ElastiCache",
                op,
                group,
                "InvalidParameterCombination",
                "Automatic failover requires at least one replica.".into(),
            ));
        }
        for r in &mut g.replicas {
            *r = to;
        }
        g.status = "modifying".into();
        Ok(())
    }

    async fn set_cache_node_type(&self, group: &str, node_type: &str) -> CapacityResult<()> {
        const OP: &str = "ModifyReplicationGroup";
        let mut st = self.call(OP)?;
        let g = st.groups.get_mut(group).ok_or_else(|| {
            invalid(
                "ElastiCache",
                OP,
                group,
                "ReplicationGroupNotFoundFault",
                format!("Replication group {group} not found."),
            )
        })?;
        g.node_type = node_type.to_owned();
        g.status = "modifying".into();
        Ok(())
    }

    async fn set_dax_nodes(&self, cluster: &str, from: u32, to: u32) -> CapacityResult<()> {
        let op = if to > from {
            "IncreaseReplicationFactor"
        } else {
            "DecreaseReplicationFactor"
        };
        let mut st = self.call(op)?;
        let c = st.dax.get_mut(cluster).ok_or_else(|| {
            invalid(
                "DAX",
                op,
                cluster,
                "ClusterNotFoundFault",
                format!("Cluster {cluster} not found."),
            )
        })?;
        c.total_nodes = to;
        c.active_nodes = c.active_nodes.min(to);
        c.status = "modifying".into();
        Ok(())
    }

    async fn set_instances(&self, endpoint: &str, variant: &str, n: u32) -> CapacityResult<()> {
        const OP: &str = "UpdateEndpointWeightsAndCapacities";
        let mut st = self.call(OP)?;
        let e = st.endpoints.get_mut(endpoint).ok_or_else(|| {
            invalid(
                "SageMaker",
                OP,
                endpoint,
                "ValidationException",
                format!("Could not find endpoint \"{endpoint}\"."),
            )
        })?;
        let v = e
            .variants
            .iter_mut()
            .find(|v| v.name == variant)
            .ok_or_else(|| {
                AwsError::service(
                    "SageMaker",
                    OP,
                    Some(endpoint),
                    "ValidationException",
                    format!("The variant name \"{variant}\" is not present."),
                )
            })?;
        v.desired_instances = n;
        e.status = "Updating".into();
        Ok(())
    }
}

/// An in-memory [`crate::aws::scale_records::RecordStore`]: parameter name → record.
#[derive(Debug, Default, Clone)]
pub struct FakeRecords {
    records: Arc<Mutex<BTreeMap<String, crate::aws::scale_records::ScaleRecord>>>,
}

impl FakeRecords {
    pub fn all(&self) -> BTreeMap<String, crate::aws::scale_records::ScaleRecord> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl crate::aws::scale_records::RecordStore for FakeRecords {
    async fn put(
        &self,
        environment: &str,
        record: &crate::aws::scale_records::ScaleRecord,
    ) -> Result<(), AwsError> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                crate::aws::scale_records::name_of(environment, record),
                record.clone(),
            );
        Ok(())
    }

    async fn remove(
        &self,
        environment: &str,
        record: &crate::aws::scale_records::ScaleRecord,
    ) -> Result<(), AwsError> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&crate::aws::scale_records::name_of(environment, record));
        Ok(())
    }
}
