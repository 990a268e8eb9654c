//! Application Load Balancer: load balancer, target group, listener and
//! listener rule, with the forward, fixed-response and redirect actions.

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

/// A listener or rule action (`Type` decides which config it carries).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "Type", rename_all = "kebab-case")]
pub enum Action {
    #[serde(rename_all = "PascalCase")]
    Forward { target_group_arn: Expr },
    #[serde(rename_all = "PascalCase")]
    FixedResponse {
        fixed_response_config: FixedResponseConfig,
    },
    #[serde(rename_all = "PascalCase")]
    Redirect { redirect_config: RedirectConfig },
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FixedResponseConfig {
    pub status_code: String,
    pub content_type: String,
    pub message_body: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RedirectConfig {
    pub protocol: String,
    pub port: String,
    pub status_code: String,
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
    pub default_actions: Vec<Action>,
}
resource_type!(Listener, "AWS::ElasticLoadBalancingV2::Listener");

impl Handle<Listener> {
    pub fn arn(&self) -> Expr {
        self.reference()
    }
}

/// A listener rule: its actions run when every condition matches.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListenerRule {
    pub listener_arn: Expr,
    pub priority: u32,
    pub conditions: Vec<RuleCondition>,
    pub actions: Vec<Action>,
}
resource_type!(ListenerRule, "AWS::ElasticLoadBalancingV2::ListenerRule");

/// An `http-header` condition: the header must carry one of `values`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuleCondition {
    pub field: String,
    pub http_header_config: HttpHeaderConfig,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HttpHeaderConfig {
    pub http_header_name: String,
    pub values: Vec<Expr>,
}
