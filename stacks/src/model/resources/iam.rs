//! IAM roles and policy documents.

use serde::Serialize;
use serde_with::skip_serializing_none;

use super::{resource_type, Tag};
use crate::model::{Expr, Handle};

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Role {
    pub role_name: Option<Expr>,
    pub description: String,
    pub assume_role_policy_document: PolicyDocument,
    pub managed_policy_arns: Option<Vec<Expr>>,
    pub policies: Option<Vec<InlinePolicy>>,
    pub tags: Vec<Tag>,
}
resource_type!(Role, "AWS::IAM::Role");

impl Handle<Role> {
    pub fn arn(&self) -> Expr {
        self.attr("Arn")
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InlinePolicy {
    pub policy_name: String,
    pub policy_document: PolicyDocument,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    pub version: &'static str,
    pub statement: Vec<Statement>,
}

impl PolicyDocument {
    pub fn new(statement: Vec<Statement>) -> Self {
        PolicyDocument {
            version: "2012-10-17",
            statement,
        }
    }

    /// A trust policy letting one AWS service assume the role.
    pub fn assumed_by(service: &str) -> Self {
        Self::new(vec![Statement {
            sid: None,
            effect: Effect::Allow,
            principal: Some(Principal::Service(service.to_owned())),
            action: vec!["sts:AssumeRole".into()],
            resource: None,
            condition: None,
        }])
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, Serialize)]
pub enum Principal {
    Service(String),
    /// `"*"`: everyone (for Deny statements).
    #[serde(rename = "AWS")]
    Anyone(&'static str),
    #[serde(rename = "AWS")]
    Aws(Expr),
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub principal: Option<Principal>,
    pub action: Vec<String>,
    pub resource: Option<Vec<Expr>>,
    /// `{"Bool": {"aws:SecureTransport": "false"}}` and the like.
    pub condition: Option<Expr>,
}

impl Statement {
    /// Allows `actions` on exactly `resources`.
    pub fn allow(sid: &str, actions: &[&str], resources: Vec<Expr>) -> Self {
        Statement {
            sid: Some(sid.to_owned()),
            effect: Effect::Allow,
            principal: None,
            action: actions.iter().map(|a| (*a).to_owned()).collect(),
            resource: Some(resources),
            condition: None,
        }
    }
}
