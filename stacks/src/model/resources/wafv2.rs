//! WAFv2 web ACLs (CLOUDFRONT scope, so the stack deploys in us-east-1).

use std::collections::BTreeMap;

use serde::Serialize;

use super::{resource_type, Tag};
use crate::model::{Expr, Handle};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WebAcl {
    pub name: String,
    pub description: String,
    pub scope: String,
    pub default_action: Action,
    pub visibility_config: VisibilityConfig,
    pub rules: Vec<Rule>,
    pub tags: Vec<Tag>,
}
resource_type!(WebAcl, "AWS::WAFv2::WebACL");

impl Handle<WebAcl> {
    pub fn arn(&self) -> Expr {
        self.attr("Arn")
    }
}

/// `{"Allow": {}}` or `{"Block": {}}`.
#[derive(Debug, Clone, Serialize)]
pub enum Action {
    Allow(BTreeMap<String, String>),
    Block(BTreeMap<String, String>),
}

/// The override action of a managed rule group: `{"None": {}}` keeps the
/// group's own actions.
#[derive(Debug, Clone, Serialize)]
pub enum OverrideAction {
    None(BTreeMap<String, String>),
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VisibilityConfig {
    pub sampled_requests_enabled: bool,
    pub cloud_watch_metrics_enabled: bool,
    pub metric_name: String,
}

impl VisibilityConfig {
    pub fn named(metric: &str) -> Self {
        VisibilityConfig {
            sampled_requests_enabled: true,
            cloud_watch_metrics_enabled: true,
            metric_name: metric.to_owned(),
        }
    }
}

/// A rule: either a rate limit that blocks, or a managed group.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Rule {
    Rate {
        #[serde(rename = "Name")]
        name: String,
        #[serde(rename = "Priority")]
        priority: u32,
        #[serde(rename = "Statement")]
        statement: Statement,
        #[serde(rename = "Action")]
        action: Action,
        #[serde(rename = "VisibilityConfig")]
        visibility_config: VisibilityConfig,
    },
    Managed {
        #[serde(rename = "Name")]
        name: String,
        #[serde(rename = "Priority")]
        priority: u32,
        #[serde(rename = "Statement")]
        statement: Statement,
        #[serde(rename = "OverrideAction")]
        override_action: OverrideAction,
        #[serde(rename = "VisibilityConfig")]
        visibility_config: VisibilityConfig,
    },
}

#[derive(Debug, Clone, Serialize)]
pub enum Statement {
    RateBasedStatement(RateBased),
    ManagedRuleGroupStatement(ManagedRuleGroup),
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RateBased {
    /// Requests per evaluation window per aggregate key.
    pub limit: u32,
    pub evaluation_window_sec: u32,
    pub aggregate_key_type: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ManagedRuleGroup {
    pub vendor_name: String,
    pub name: String,
}
