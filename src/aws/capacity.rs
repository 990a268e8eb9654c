//! The [`Capacity`] trait: the live capacity of every resource `mangactl`
//! sizes, read (and, for `mangactl scale`, changed) through each service's
//! own API, because CloudFormation's drift detection skips most of these
//! types and an autoscaler moves some of them on purpose.
//!
//! | component | resource | read | change |
//! |---|---|---|---|
//! | service | ECS service | `DescribeServices` | `UpdateService` (desiredCount) |
//! | service, intent | scalable target | `DescribeScalableTargets` | `RegisterScalableTarget` |
//! | cache | ElastiCache replication group | `DescribeReplicationGroups` | `IncreaseReplicaCount`, `DecreaseReplicaCount`, `ModifyReplicationGroup` |
//! | dax | DAX cluster | `DescribeClusters` | `IncreaseReplicationFactor`, `DecreaseReplicationFactor` |
//! | intent | SageMaker endpoint | `DescribeEndpoint` | `UpdateEndpointWeightsAndCapacities` |
//!
//! OpenSearch Serverless capacity is account-wide and has its own trait
//! (`opensearch.rs`). A resource that does not exist is `Ok(None)`, never
//! an error. [`SdkCapacity`] implements the trait with the AWS SDK;
//! `src/fakes/capacity.rs` (feature `fakes`) is the test double for what
//! moto lacks (ElastiCache replica counts), fed the API reference's
//! response documents.

use std::fmt;

use async_trait::async_trait;
use serde::Serialize;

use super::error::{AwsError, ErrorClass};

pub type CapacityResult<T> = Result<T, AwsError>;

/// An ECS service as `DescribeServices` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EcsService {
    pub status: String,
    pub desired: u32,
    pub running: u32,
    pub pending: u32,
    /// The task definition ARN the service runs (`family:revision`).
    pub task_definition: String,
    /// Deployments in flight (more than one: a rollout is under way).
    pub deployments: u32,
}

/// What Application Auto Scaling scales, by the API's three keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScalableId {
    /// `ecs`, `sagemaker`.
    pub namespace: String,
    /// `service/<cluster>/<service>`, `endpoint/<name>/variant/<variant>`.
    pub resource_id: String,
    /// `ecs:service:DesiredCount`, `sagemaker:variant:DesiredInstanceCount`.
    pub dimension: String,
}

impl ScalableId {
    pub fn ecs_service(cluster: &str, service: &str) -> Self {
        ScalableId {
            namespace: "ecs".into(),
            resource_id: format!("service/{cluster}/{service}"),
            dimension: "ecs:service:DesiredCount".into(),
        }
    }

    pub fn sagemaker_variant(endpoint: &str, variant: &str) -> Self {
        ScalableId {
            namespace: "sagemaker".into(),
            resource_id: format!("endpoint/{endpoint}/variant/{variant}"),
            dimension: "sagemaker:variant:DesiredInstanceCount".into(),
        }
    }
}

/// A registered scalable target's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bounds {
    pub min: u32,
    pub max: u32,
    /// `SuspendedState.ScheduledScalingSuspended`: as read, or to set;
    /// `None` leaves it alone (a target without scheduled actions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_suspended: Option<bool>,
}

/// An ElastiCache replication group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicationGroup {
    /// `available`, `modifying`, `creating`…
    pub status: String,
    /// The group's node type (`CacheNodeType`).
    pub node_type: String,
    /// Replicas in each node group: its members less the primary.
    pub replicas: Vec<u32>,
    /// `enabled`, `disabled`, `enabling`, `disabling`.
    pub automatic_failover: String,
}

/// A DAX cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DaxCluster {
    pub status: String,
    pub node_type: String,
    /// `TotalNodes`: the replication factor.
    pub total_nodes: u32,
    pub active_nodes: u32,
}

/// A SageMaker endpoint and its variants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// `InService`, `Updating`, `Creating`, `Failed`…
    pub status: String,
    pub variants: Vec<Variant>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Variant {
    pub name: String,
    pub current_instances: u32,
    pub desired_instances: u32,
}

impl Endpoint {
    pub fn variant(&self, name: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.name == name)
    }
}

/// Live capacity, read and changed through each service's API.
#[async_trait]
pub trait Capacity: Send + Sync + fmt::Debug {
    async fn ecs_service(&self, cluster: &str, service: &str)
        -> CapacityResult<Option<EcsService>>;
    async fn scalable_target(&self, id: &ScalableId) -> CapacityResult<Option<Bounds>>;
    async fn replication_group(&self, id: &str) -> CapacityResult<Option<ReplicationGroup>>;
    async fn dax_cluster(&self, name: &str) -> CapacityResult<Option<DaxCluster>>;
    async fn endpoint(&self, name: &str) -> CapacityResult<Option<Endpoint>>;

    /// `UpdateService` with a new desired count.
    async fn set_desired_count(&self, cluster: &str, service: &str, n: u32) -> CapacityResult<()>;
    /// `RegisterScalableTarget` of an existing target with new bounds.
    async fn set_bounds(&self, id: &ScalableId, bounds: Bounds) -> CapacityResult<()>;
    /// `IncreaseReplicaCount` or `DecreaseReplicaCount` (online, applied
    /// immediately), from `from` replicas per node group to `to`.
    async fn set_replicas(&self, group: &str, from: u32, to: u32) -> CapacityResult<()>;
    /// `ModifyReplicationGroup` with a new `CacheNodeType`, applied
    /// immediately (online vertical scaling).
    async fn set_cache_node_type(&self, group: &str, node_type: &str) -> CapacityResult<()>;
    /// `IncreaseReplicationFactor` or `DecreaseReplicationFactor`.
    async fn set_dax_nodes(&self, cluster: &str, from: u32, to: u32) -> CapacityResult<()>;
    /// `UpdateEndpointWeightsAndCapacities` with a variant's desired
    /// instance count.
    async fn set_instances(&self, endpoint: &str, variant: &str, n: u32) -> CapacityResult<()>;
}

/// Counts in the APIs are `i32`; a negative one would be a service bug
/// and reads as 0.
fn count(v: Option<i32>) -> u32 {
    v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0)
}

/// A count mangactl sends: its values come from validated flags and
/// templates, far below `i32::MAX`.
fn api_count(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// `Ok(None)` for an error that says the resource is not there.
fn missing<T>(e: AwsError) -> CapacityResult<Option<T>> {
    if e.class == ErrorClass::NotFound {
        Ok(None)
    } else {
        Err(e)
    }
}

/// [`Capacity`] through the AWS SDK, in the environment's region.
#[derive(Debug, Clone)]
pub struct SdkCapacity {
    ecs: aws_sdk_ecs::Client,
    aas: aws_sdk_applicationautoscaling::Client,
    elasticache: aws_sdk_elasticache::Client,
    dax: aws_sdk_dax::Client,
    sagemaker: aws_sdk_sagemaker::Client,
}

impl SdkCapacity {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        SdkCapacity {
            ecs: aws_sdk_ecs::Client::new(config),
            aas: aws_sdk_applicationautoscaling::Client::new(config),
            elasticache: aws_sdk_elasticache::Client::new(config),
            dax: aws_sdk_dax::Client::new(config),
            sagemaker: aws_sdk_sagemaker::Client::new(config),
        }
    }
}

fn aas_namespace(id: &ScalableId) -> aws_sdk_applicationautoscaling::types::ServiceNamespace {
    aws_sdk_applicationautoscaling::types::ServiceNamespace::from(id.namespace.as_str())
}

fn aas_dimension(id: &ScalableId) -> aws_sdk_applicationautoscaling::types::ScalableDimension {
    aws_sdk_applicationautoscaling::types::ScalableDimension::from(id.dimension.as_str())
}

#[async_trait]
impl Capacity for SdkCapacity {
    async fn ecs_service(
        &self,
        cluster: &str,
        service: &str,
    ) -> CapacityResult<Option<EcsService>> {
        const OP: &str = "DescribeServices";
        let resource = format!("{cluster}/{service}");
        let out = match self
            .ecs
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) => return missing(AwsError::from_sdk("ECS", OP, Some(&resource), e)),
        };
        // A missing service is a `failures` entry (reason MISSING), not an
        // error (ECS API Reference, DescribeServices).
        let Some(s) = out
            .services()
            .iter()
            .find(|s| s.status() != Some("INACTIVE"))
        else {
            return Ok(None);
        };
        Ok(Some(EcsService {
            status: s.status().unwrap_or_default().to_owned(),
            desired: count(Some(s.desired_count())),
            running: count(Some(s.running_count())),
            pending: count(Some(s.pending_count())),
            task_definition: s.task_definition().unwrap_or_default().to_owned(),
            deployments: u32::try_from(s.deployments().len()).unwrap_or(u32::MAX),
        }))
    }

    async fn scalable_target(&self, id: &ScalableId) -> CapacityResult<Option<Bounds>> {
        const OP: &str = "DescribeScalableTargets";
        let out = self
            .aas
            .describe_scalable_targets()
            .service_namespace(aas_namespace(id))
            .resource_ids(&id.resource_id)
            .scalable_dimension(aas_dimension(id))
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk("Application Auto Scaling", OP, Some(&id.resource_id), e)
            })?;
        Ok(out
            .scalable_targets()
            .iter()
            .find(|t| t.resource_id() == id.resource_id)
            .map(|t| Bounds {
                min: count(Some(t.min_capacity())),
                max: count(Some(t.max_capacity())),
                scheduled_suspended: Some(
                    t.suspended_state()
                        .and_then(|s| s.scheduled_scaling_suspended())
                        .unwrap_or(false),
                ),
            }))
    }

    async fn replication_group(&self, id: &str) -> CapacityResult<Option<ReplicationGroup>> {
        const OP: &str = "DescribeReplicationGroups";
        let out = match self
            .elasticache
            .describe_replication_groups()
            .replication_group_id(id)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) => return missing(AwsError::from_sdk("ElastiCache", OP, Some(id), e)),
        };
        let Some(g) = out.replication_groups().first() else {
            return Ok(None);
        };
        Ok(Some(ReplicationGroup {
            status: g.status().unwrap_or_default().to_owned(),
            node_type: g.cache_node_type().unwrap_or_default().to_owned(),
            replicas: g
                .node_groups()
                .iter()
                .map(|n| {
                    u32::try_from(n.node_group_members().len().saturating_sub(1))
                        .unwrap_or(u32::MAX)
                })
                .collect(),
            automatic_failover: g
                .automatic_failover()
                .map(|a| a.as_str().to_owned())
                .unwrap_or_default(),
        }))
    }

    async fn dax_cluster(&self, name: &str) -> CapacityResult<Option<DaxCluster>> {
        const OP: &str = "DescribeClusters";
        let out = match self
            .dax
            .describe_clusters()
            .cluster_names(name)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) => return missing(AwsError::from_sdk("DAX", OP, Some(name), e)),
        };
        Ok(out.clusters().first().map(|c| DaxCluster {
            status: c.status().unwrap_or_default().to_owned(),
            node_type: c.node_type().unwrap_or_default().to_owned(),
            total_nodes: count(c.total_nodes()),
            active_nodes: count(c.active_nodes()),
        }))
    }

    async fn endpoint(&self, name: &str) -> CapacityResult<Option<Endpoint>> {
        const OP: &str = "DescribeEndpoint";
        let out = match self
            .sagemaker
            .describe_endpoint()
            .endpoint_name(name)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) => return missing(AwsError::from_sdk("SageMaker", OP, Some(name), e)),
        };
        Ok(Some(Endpoint {
            status: out
                .endpoint_status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            variants: out
                .production_variants()
                .iter()
                .map(|v| Variant {
                    name: v.variant_name().unwrap_or_default().to_owned(),
                    current_instances: count(v.current_instance_count()),
                    desired_instances: count(v.desired_instance_count()),
                })
                .collect(),
        }))
    }

    async fn set_desired_count(&self, cluster: &str, service: &str, n: u32) -> CapacityResult<()> {
        self.ecs
            .update_service()
            .cluster(cluster)
            .service(service)
            .desired_count(api_count(n))
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk(
                    "ECS",
                    "UpdateService",
                    Some(&format!("{cluster}/{service}")),
                    e,
                )
            })?;
        Ok(())
    }

    async fn set_bounds(&self, id: &ScalableId, bounds: Bounds) -> CapacityResult<()> {
        // RegisterScalableTarget "registers or updates a scalable target
        // ... To update a scalable target, specify the parameters that you
        // want to change. Include the parameters that identify the scalable
        // target: resource ID, scalable dimension, and namespace"
        // (Application Auto Scaling API Reference).
        self.aas
            .register_scalable_target()
            .service_namespace(aas_namespace(id))
            .resource_id(&id.resource_id)
            .scalable_dimension(aas_dimension(id))
            .min_capacity(api_count(bounds.min))
            .max_capacity(api_count(bounds.max))
            .set_suspended_state(bounds.scheduled_suspended.map(|suspended| {
                aws_sdk_applicationautoscaling::types::SuspendedState::builder()
                    .scheduled_scaling_suspended(suspended)
                    .build()
            }))
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk(
                    "Application Auto Scaling",
                    "RegisterScalableTarget",
                    Some(&id.resource_id),
                    e,
                )
            })?;
        Ok(())
    }

    async fn set_replicas(&self, group: &str, from: u32, to: u32) -> CapacityResult<()> {
        // Both run "with no cluster down time", and "ApplyImmediately=False
        // is not currently supported" (ElastiCache API Reference,
        // IncreaseReplicaCount); NewReplicaCount is per node group.
        if to > from {
            self.elasticache
                .increase_replica_count()
                .replication_group_id(group)
                .new_replica_count(api_count(to))
                .apply_immediately(true)
                .send()
                .await
                .map_err(|e| {
                    AwsError::from_sdk("ElastiCache", "IncreaseReplicaCount", Some(group), e)
                })?;
        } else if to < from {
            self.elasticache
                .decrease_replica_count()
                .replication_group_id(group)
                .new_replica_count(api_count(to))
                .apply_immediately(true)
                .send()
                .await
                .map_err(|e| {
                    AwsError::from_sdk("ElastiCache", "DecreaseReplicaCount", Some(group), e)
                })?;
        }
        Ok(())
    }

    async fn set_cache_node_type(&self, group: &str, node_type: &str) -> CapacityResult<()> {
        self.elasticache
            .modify_replication_group()
            .replication_group_id(group)
            .cache_node_type(node_type)
            .apply_immediately(true)
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk("ElastiCache", "ModifyReplicationGroup", Some(group), e)
            })?;
        Ok(())
    }

    async fn set_dax_nodes(&self, cluster: &str, from: u32, to: u32) -> CapacityResult<()> {
        if to > from {
            self.dax
                .increase_replication_factor()
                .cluster_name(cluster)
                .new_replication_factor(api_count(to))
                .send()
                .await
                .map_err(|e| {
                    AwsError::from_sdk("DAX", "IncreaseReplicationFactor", Some(cluster), e)
                })?;
        } else if to < from {
            self.dax
                .decrease_replication_factor()
                .cluster_name(cluster)
                .new_replication_factor(api_count(to))
                .send()
                .await
                .map_err(|e| {
                    AwsError::from_sdk("DAX", "DecreaseReplicationFactor", Some(cluster), e)
                })?;
        }
        Ok(())
    }

    async fn set_instances(&self, endpoint: &str, variant: &str, n: u32) -> CapacityResult<()> {
        let desired = aws_sdk_sagemaker::types::DesiredWeightAndCapacity::builder()
            .variant_name(variant)
            .desired_instance_count(api_count(n))
            .build();
        self.sagemaker
            .update_endpoint_weights_and_capacities()
            .endpoint_name(endpoint)
            .desired_weights_and_capacities(desired)
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk(
                    "SageMaker",
                    "UpdateEndpointWeightsAndCapacities",
                    Some(endpoint),
                    e,
                )
            })?;
        Ok(())
    }
}
