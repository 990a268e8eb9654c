//! OpenSearch Serverless: collection and its encryption, network and data
//! access policies (the policies are JSON documents passed as strings).

use serde::Serialize;

use super::{resource_type, Tag};
use crate::model::{Expr, Handle};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Collection {
    pub name: String,
    pub description: String,
    #[serde(rename = "Type")]
    pub kind: String,
    pub standby_replicas: String,
    pub tags: Vec<Tag>,
}
resource_type!(Collection, "AWS::OpenSearchServerless::Collection");

impl Handle<Collection> {
    pub fn id(&self) -> Expr {
        self.attr("Id")
    }
    pub fn arn(&self) -> Expr {
        self.attr("Arn")
    }
    pub fn endpoint(&self) -> Expr {
        self.attr("CollectionEndpoint")
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecurityPolicy {
    pub name: String,
    pub description: String,
    #[serde(rename = "Type")]
    pub kind: String,
    pub policy: Expr,
}
resource_type!(SecurityPolicy, "AWS::OpenSearchServerless::SecurityPolicy");

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccessPolicy {
    pub name: String,
    pub description: String,
    #[serde(rename = "Type")]
    pub kind: String,
    pub policy: Expr,
}
resource_type!(AccessPolicy, "AWS::OpenSearchServerless::AccessPolicy");

/// The interface VPC endpoint through which the runtime reaches collections.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VpcEndpoint {
    pub name: String,
    pub vpc_id: Expr,
    pub subnet_ids: Expr,
    pub security_group_ids: Vec<Expr>,
}
resource_type!(VpcEndpoint, "AWS::OpenSearchServerless::VpcEndpoint");

impl Handle<VpcEndpoint> {
    pub fn id(&self) -> Expr {
        self.reference()
    }
}
