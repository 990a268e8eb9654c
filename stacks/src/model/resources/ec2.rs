//! EC2 networking: VPC, subnets, routing, NAT, security groups, endpoints.

use serde::Serialize;
use serde_with::skip_serializing_none;

use super::{resource_type, Tag};
use crate::model::{Expr, Handle};

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Vpc {
    pub cidr_block: String,
    pub enable_dns_hostnames: bool,
    pub enable_dns_support: bool,
    pub tags: Vec<Tag>,
}
resource_type!(Vpc, "AWS::EC2::VPC");

impl Handle<Vpc> {
    pub fn id(&self) -> Expr {
        self.reference()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InternetGateway {
    pub tags: Vec<Tag>,
}
resource_type!(InternetGateway, "AWS::EC2::InternetGateway");

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VpcGatewayAttachment {
    pub vpc_id: Expr,
    pub internet_gateway_id: Expr,
}
resource_type!(VpcGatewayAttachment, "AWS::EC2::VPCGatewayAttachment");

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Subnet {
    pub vpc_id: Expr,
    pub cidr_block: String,
    pub availability_zone: Expr,
    pub map_public_ip_on_launch: bool,
    pub tags: Vec<Tag>,
}
resource_type!(Subnet, "AWS::EC2::Subnet");

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RouteTable {
    pub vpc_id: Expr,
    pub tags: Vec<Tag>,
}
resource_type!(RouteTable, "AWS::EC2::RouteTable");

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Route {
    pub route_table_id: Expr,
    pub destination_cidr_block: String,
    pub gateway_id: Option<Expr>,
    pub nat_gateway_id: Option<Expr>,
}
resource_type!(Route, "AWS::EC2::Route");

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubnetRouteTableAssociation {
    pub subnet_id: Expr,
    pub route_table_id: Expr,
}
resource_type!(
    SubnetRouteTableAssociation,
    "AWS::EC2::SubnetRouteTableAssociation"
);

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Eip {
    pub domain: String,
    pub tags: Vec<Tag>,
}
resource_type!(Eip, "AWS::EC2::EIP");

impl Handle<Eip> {
    pub fn allocation_id(&self) -> Expr {
        self.attr("AllocationId")
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NatGateway {
    pub allocation_id: Expr,
    pub subnet_id: Expr,
    pub tags: Vec<Tag>,
}
resource_type!(NatGateway, "AWS::EC2::NatGateway");

/// A security group; its rules are separate resources so groups can refer
/// to each other without a cycle.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecurityGroup {
    pub group_description: String,
    pub vpc_id: Expr,
    /// Inline ingress from CIDRs or prefix lists; group-to-group rules are
    /// separate [`SecurityGroupIngress`] resources.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_group_ingress: Vec<IngressRule>,
    /// Replaces the default allow-all egress rule.
    pub security_group_egress: Vec<EgressRule>,
    pub tags: Vec<Tag>,
}
resource_type!(SecurityGroup, "AWS::EC2::SecurityGroup");

impl Handle<SecurityGroup> {
    pub fn group_id(&self) -> Expr {
        self.attr("GroupId")
    }
}

/// An inline ingress rule.
#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IngressRule {
    pub ip_protocol: String,
    pub from_port: u16,
    pub to_port: u16,
    pub source_prefix_list_id: Option<Expr>,
    pub cidr_ip: Option<String>,
    pub description: String,
}

/// An inline egress rule.
#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EgressRule {
    pub ip_protocol: String,
    pub from_port: Option<u16>,
    pub to_port: Option<u16>,
    pub cidr_ip: Option<String>,
    pub description: String,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecurityGroupIngress {
    pub group_id: Expr,
    pub ip_protocol: String,
    pub from_port: u16,
    pub to_port: u16,
    pub source_security_group_id: Expr,
    pub description: String,
}
resource_type!(SecurityGroupIngress, "AWS::EC2::SecurityGroupIngress");

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecurityGroupEgress {
    pub group_id: Expr,
    pub ip_protocol: String,
    pub from_port: u16,
    pub to_port: u16,
    pub destination_security_group_id: Expr,
    pub description: String,
}
resource_type!(SecurityGroupEgress, "AWS::EC2::SecurityGroupEgress");

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VpcEndpoint {
    pub vpc_id: Expr,
    pub service_name: Expr,
    pub vpc_endpoint_type: String,
    pub route_table_ids: Vec<Expr>,
}
resource_type!(VpcEndpoint, "AWS::EC2::VPCEndpoint");
