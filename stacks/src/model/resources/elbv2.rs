//! Application Load Balancer: load balancer, target group, listener.

use serde::Serialize;
use serde_with::skip_serializing_none;

use super::{resource_type, KeyValue, Tag};
use crate::model::{Expr, Handle};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoadBalancer {
    pub scheme: String,
    #[serde(rename = "Type")]
    pub kind: String,
    pub subnets: Expr,
    pub security_groups: Vec<Expr>,
    pub load_balancer_attributes: Vec<KeyValue>,
    pub tags: Vec<Tag>,
}
resource_type!(LoadBalancer, "AWS::ElasticLoadBalancingV2::LoadBalancer");

impl Handle<LoadBalancer> {
    pub fn arn(&self) -> Expr {
        self.reference()
    }
    pub fn dns_name(&self) -> Expr {
        self.attr("DNSName")
    }
    /// `app/name/id`, the CloudWatch `LoadBalancer` dimension.
    pub fn full_name(&self) -> Expr {
        self.attr("LoadBalancerFullName")
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Matcher {
    pub http_code: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetGroup {
    pub port: u16,
    pub protocol: String,
    pub target_type: String,
    pub vpc_id: Expr,
    pub health_check_path: String,
    pub health_check_protocol: String,
    pub health_check_interval_seconds: u32,
    pub health_check_timeout_seconds: u32,
    pub healthy_threshold_count: u32,
    pub unhealthy_threshold_count: u32,
    pub matcher: Matcher,
    pub target_group_attributes: Vec<KeyValue>,
    pub tags: Vec<Tag>,
}
resource_type!(TargetGroup, "AWS::ElasticLoadBalancingV2::TargetGroup");

impl Handle<TargetGroup> {
    pub fn arn(&self) -> Expr {
        self.reference()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Certificate {
    pub certificate_arn: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ForwardAction {
    #[serde(rename = "Type")]
    pub kind: String,
    pub target_group_arn: Expr,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Listener {
    pub load_balancer_arn: Expr,
    pub port: u16,
    pub protocol: String,
    pub certificates: Option<Vec<Certificate>>,
    pub ssl_policy: Option<String>,
    pub default_actions: Vec<ForwardAction>,
}
resource_type!(Listener, "AWS::ElasticLoadBalancingV2::Listener");
