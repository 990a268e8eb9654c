//! Typed CloudFormation resources, one module per AWS service.
//!
//! Each struct serializes to the resource's `Properties`; optional
//! properties are `Option`s and are left out when `None`. Attribute
//! accessors (`GetAtt`, and what `Ref` yields) are methods on
//! `Handle<Type>` beside each struct, so stacks never spell attribute names.
//! Property names follow the CloudFormation resource reference; `cfn-lint`
//! over every rendered template (tests/it/lint.rs) checks them.

pub mod aoss;
pub mod autoscaling;
pub mod cloudfront;
pub mod cloudwatch;
pub mod dax;
pub mod dynamodb;
pub mod ec2;
pub mod ecs;
pub mod elasticache;
pub mod elbv2;
pub mod iam;
pub mod kms;
pub mod logs;
pub mod s3;
pub mod sagemaker;
pub mod secretsmanager;
pub mod sns;
pub mod wafv2;

use serde::Serialize;

use super::Expr;

/// Implements [`super::ResourceType`] for a property struct.
macro_rules! resource_type {
    ($ty:ident, $name:literal) => {
        impl $crate::model::ResourceType for $ty {
            const TYPE: &'static str = $name;
        }
    };
}
pub(crate) use resource_type;

/// A `Key`/`Value` tag, the shape most resource types take.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    pub value: Expr,
}

/// A `Name`/`Value` pair (container environment, dimensions, settings).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NameValue {
    pub name: String,
    pub value: Expr,
}

impl NameValue {
    pub fn new(name: impl Into<String>, value: impl Into<Expr>) -> Self {
        NameValue {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A `Key`/`Value` attribute pair (load balancer and target group attributes).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyValue {
    pub key: String,
    pub value: Expr,
}

impl KeyValue {
    pub fn new(key: impl Into<String>, value: impl ToString) -> Self {
        KeyValue {
            key: key.into(),
            value: Expr::Str(value.to_string()),
        }
    }

    /// A value another resource gives (a bucket's name).
    pub fn expr(key: impl Into<String>, value: Expr) -> Self {
        KeyValue {
            key: key.into(),
            value,
        }
    }
}
