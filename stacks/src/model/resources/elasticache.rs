//! ElastiCache (Redis OSS engine): replication group, subnet group, and the
//! users and user group of role-based access control.

use serde::Serialize;
use serde_with::skip_serializing_none;

use super::{resource_type, Tag};
use crate::model::{Expr, Handle};

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReplicationGroup {
    pub replication_group_id: String,
    pub replication_group_description: String,
    pub engine: String,
    pub engine_version: String,
    pub cache_node_type: String,
    pub cache_parameter_group_name: String,
    pub num_node_groups: u32,
    pub replicas_per_node_group: u32,
    pub automatic_failover_enabled: bool,
    #[serde(rename = "MultiAZEnabled")]
    pub multi_az_enabled: bool,
    pub transit_encryption_enabled: bool,
    pub at_rest_encryption_enabled: bool,
    pub cache_subnet_group_name: Expr,
    pub security_group_ids: Vec<Expr>,
    pub port: u16,
    pub snapshot_retention_limit: u32,
    /// RBAC: the user groups whose users may connect.
    pub user_group_ids: Vec<Expr>,
    pub tags: Vec<Tag>,
}
resource_type!(ReplicationGroup, "AWS::ElastiCache::ReplicationGroup");

impl Handle<ReplicationGroup> {
    pub fn id(&self) -> Expr {
        self.reference()
    }
    /// The primary endpoint (cluster mode disabled).
    pub fn primary_address(&self) -> Expr {
        self.attr("PrimaryEndPoint.Address")
    }
    /// The configuration endpoint (cluster mode enabled).
    pub fn configuration_address(&self) -> Expr {
        self.attr("ConfigurationEndPoint.Address")
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubnetGroup {
    pub description: String,
    pub subnet_ids: Expr,
    pub tags: Vec<Tag>,
}
resource_type!(SubnetGroup, "AWS::ElastiCache::SubnetGroup");

impl Handle<SubnetGroup> {
    pub fn name(&self) -> Expr {
        self.reference()
    }
}

/// An RBAC user: IAM-authenticated, or (the `default` user) switched off.
#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct User {
    pub user_id: String,
    pub user_name: String,
    pub engine: String,
    pub access_string: String,
    pub authentication_mode: Option<AuthenticationMode>,
    pub no_password_required: Option<bool>,
    pub tags: Vec<Tag>,
}
resource_type!(User, "AWS::ElastiCache::User");

impl Handle<User> {
    pub fn id(&self) -> Expr {
        self.reference()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AuthenticationMode {
    #[serde(rename = "Type")]
    pub kind: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserGroup {
    pub user_group_id: String,
    pub engine: String,
    pub user_ids: Vec<Expr>,
    pub tags: Vec<Tag>,
}
resource_type!(UserGroup, "AWS::ElastiCache::UserGroup");

impl Handle<UserGroup> {
    pub fn id(&self) -> Expr {
        self.reference()
    }
}
