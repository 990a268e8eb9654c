//! DynamoDB Accelerator: cluster, subnet group, parameter group.

use std::collections::BTreeMap;

use serde::Serialize;

use super::resource_type;
use crate::model::{Expr, Handle};

#[derive(Debug, Clone, Serialize)]
pub struct DaxSse {
    #[serde(rename = "SSEEnabled")]
    pub enabled: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Cluster {
    pub description: String,
    pub node_type: String,
    pub replication_factor: u32,
    #[serde(rename = "IAMRoleARN")]
    pub iam_role_arn: Expr,
    pub subnet_group_name: Expr,
    pub parameter_group_name: Expr,
    pub security_group_ids: Vec<Expr>,
    #[serde(rename = "SSESpecification")]
    pub sse_specification: DaxSse,
    pub cluster_endpoint_encryption_type: String,
    /// DAX takes tags as a plain JSON object, unlike most types.
    pub tags: BTreeMap<String, Expr>,
}
resource_type!(Cluster, "AWS::DAX::Cluster");

impl Handle<Cluster> {
    pub fn name(&self) -> Expr {
        self.reference()
    }
    pub fn arn(&self) -> Expr {
        self.attr("Arn")
    }
    /// `daxs://...:9111`, what DAX clients are configured with.
    pub fn discovery_url(&self) -> Expr {
        self.attr("ClusterDiscoveryEndpointURL")
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubnetGroup {
    pub description: String,
    pub subnet_ids: Expr,
}
resource_type!(SubnetGroup, "AWS::DAX::SubnetGroup");

impl Handle<SubnetGroup> {
    pub fn name(&self) -> Expr {
        self.reference()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParameterGroup {
    pub description: String,
    pub parameter_name_values: BTreeMap<String, String>,
}
resource_type!(ParameterGroup, "AWS::DAX::ParameterGroup");

impl Handle<ParameterGroup> {
    pub fn name(&self) -> Expr {
        self.reference()
    }
}
