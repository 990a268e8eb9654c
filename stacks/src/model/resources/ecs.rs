//! ECS on Fargate: cluster, task definition, service.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{resource_type, NameValue, Tag};
use crate::model::{Expr, Handle};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Cluster {
    pub cluster_settings: Vec<NameValue>,
    pub tags: Vec<Tag>,
}
resource_type!(Cluster, "AWS::ECS::Cluster");

impl Handle<Cluster> {
    pub fn name(&self) -> Expr {
        self.reference()
    }
    pub fn arn(&self) -> Expr {
        self.attr("Arn")
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuntimePlatform {
    pub cpu_architecture: String,
    pub operating_system_family: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortMapping {
    pub container_port: u16,
    pub protocol: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogConfiguration {
    pub log_driver: String,
    pub options: BTreeMap<String, Expr>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthCheck {
    pub command: Vec<String>,
    pub interval: u32,
    pub timeout: u32,
    pub retries: u32,
    pub start_period: u32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ulimit {
    pub name: String,
    pub soft_limit: u32,
    pub hard_limit: u32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerDefinition {
    pub name: String,
    pub image: Expr,
    /// `uid:gid` the process runs as (the image's non-root user).
    pub user: String,
    /// Hard limit in MiB: the container is killed above it.
    pub memory: u32,
    pub essential: bool,
    pub port_mappings: Vec<PortMapping>,
    pub environment: Vec<NameValue>,
    pub log_configuration: LogConfiguration,
    pub health_check: HealthCheck,
    /// Seconds ECS waits after SIGTERM before SIGKILL (Fargate max 120).
    pub stop_timeout: u32,
    pub readonly_root_filesystem: bool,
    pub ulimits: Vec<Ulimit>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskDefinition {
    pub family: String,
    pub cpu: String,
    pub memory: String,
    pub network_mode: String,
    pub requires_compatibilities: Vec<String>,
    pub execution_role_arn: Expr,
    pub task_role_arn: Expr,
    pub runtime_platform: RuntimePlatform,
    pub container_definitions: Vec<ContainerDefinition>,
    pub tags: Vec<Tag>,
}
resource_type!(TaskDefinition, "AWS::ECS::TaskDefinition");

impl Handle<TaskDefinition> {
    pub fn arn(&self) -> Expr {
        self.reference()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CircuitBreaker {
    pub enable: bool,
    pub rollback: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeploymentConfiguration {
    pub deployment_circuit_breaker: CircuitBreaker,
    pub maximum_percent: u32,
    pub minimum_healthy_percent: u32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AwsVpcConfiguration {
    pub assign_public_ip: String,
    pub subnets: Expr,
    pub security_groups: Vec<Expr>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NetworkConfiguration {
    #[serde(rename = "AwsvpcConfiguration")]
    pub awsvpc_configuration: AwsVpcConfiguration,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceLoadBalancer {
    pub container_name: String,
    pub container_port: u16,
    pub target_group_arn: Expr,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Service {
    pub cluster: Expr,
    pub task_definition: Expr,
    // No DesiredCount: with one, every update of the service resets the
    // task count the autoscaler (or `mangactl scale`) chose. Without it,
    // CloudFormation creates the service with a desired count of 1 and an
    // update keeps the count it had (the behaviour the AWS CDK adopted,
    // aws/aws-cdk#13130); `apply` sets the sized count after the first
    // create (`src/deploy/apply.rs`).
    pub launch_type: String,
    pub deployment_configuration: DeploymentConfiguration,
    pub network_configuration: NetworkConfiguration,
    pub load_balancers: Vec<ServiceLoadBalancer>,
    pub health_check_grace_period_seconds: u32,
    #[serde(rename = "EnableECSManagedTags")]
    pub enable_ecs_managed_tags: bool,
    pub propagate_tags: String,
    pub tags: Vec<Tag>,
}
resource_type!(Service, "AWS::ECS::Service");

impl Handle<Service> {
    pub fn name(&self) -> Expr {
        self.attr("Name")
    }
}
