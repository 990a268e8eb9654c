//! The eight MangaAssist stacks, one module each; each is a function from
//! [`Inputs`] (the validated environment plus its sizing plan) to a
//! [`Template`].
//!
//! Stacks refer to each other only through the [`OutputKey`] constants the
//! producing module declares; [`crate::graph`] derives the deploy order from
//! those. The one exception is the task role's ARN, which the search stack
//! needs and the service stack creates while also importing the
//! collection's ARN: [`task_role_arn`] spells it from the role's fixed name
//! so neither stack imports the other.

pub mod cache;
pub mod edge;
pub mod intent;
pub mod memory;
pub mod network;
pub mod observability;
pub mod search;
pub mod service;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use sizing::SizingPlan;

use crate::env::Environment;
use crate::model::resources::Tag;
use crate::model::{Expr, Template};

/// Where the edge stack lives whatever the environment's region:
/// CloudFront takes its viewer certificate only from ACM in US East (N.
/// Virginia) ("To use an ACM certificate with CloudFront, make sure you
/// request (or import) the certificate in the US East (N. Virginia) Region
/// (us-east-1)", CloudFront Developer Guide, "Requirements for using
/// SSL/TLS certificates with CloudFront"), and a web ACL for CloudFront
/// must be created with scope CLOUDFRONT in us-east-1 (AWS WAF Developer
/// Guide). Its references to the service stack cross regions as parameters
/// (`src/deploy/references.rs`).
pub const EDGE_REGION: &str = "us-east-1";

/// The stacks, in the order `--stack` help lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StackId {
    Network,
    Memory,
    Cache,
    Search,
    Intent,
    Service,
    Edge,
    Observability,
}

impl StackId {
    pub const ALL: [StackId; 8] = [
        StackId::Network,
        StackId::Memory,
        StackId::Cache,
        StackId::Search,
        StackId::Intent,
        StackId::Service,
        StackId::Edge,
        StackId::Observability,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StackId::Network => "network",
            StackId::Memory => "memory",
            StackId::Cache => "cache",
            StackId::Search => "search",
            StackId::Intent => "intent",
            StackId::Service => "service",
            StackId::Edge => "edge",
            StackId::Observability => "observability",
        }
    }

    pub fn parse(s: &str) -> Option<StackId> {
        StackId::ALL.into_iter().find(|id| id.name() == s)
    }

    /// Whether the stack holds data that outlives a deploy.
    pub fn holds_data(self) -> bool {
        matches!(self, StackId::Memory | StackId::Cache | StackId::Search)
    }
}

impl fmt::Display for StackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What every stack function reads: the validated environment and the
/// capacity plan sized from it (`stacks/sizing`), which also carries the
/// timeouts and autoscaling targets derived from the budgets.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub env: &'a Environment,
    /// The sizing plan (`stacks/sizing`): every capacity a stack sets.
    pub sizing: &'a SizingPlan,
}

impl<'a> Inputs<'a> {
    pub fn new(env: &'a Environment, sizing: &'a SizingPlan) -> Self {
        Inputs { env, sizing }
    }

    /// `mangaassist-<env>`: stack, export and resource name prefix.
    pub fn prefix(&self) -> String {
        self.env.prefix()
    }

    /// The CloudFormation stack name of `id` in this environment.
    pub fn stack_name(&self, id: StackId) -> String {
        format!("{}-{}", self.prefix(), id.name())
    }

    /// The region stack `id` is deployed in: the edge stack in
    /// [`EDGE_REGION`], every other stack in the environment's region.
    pub fn region(&self, id: StackId) -> &str {
        match id {
            StackId::Edge => EDGE_REGION,
            _ => &self.env.region,
        }
    }

    /// A new template for `id`, with its description and metadata.
    pub fn template(&self, id: StackId, what: &str) -> Template {
        let mut t = Template::new(
            format!("MangaAssist {} ({}): {what}", self.env.name, id.name()),
            self.prefix(),
        );
        t.metadata(
            "MangaAssist",
            serde_json::json!({ "Environment": self.env.name, "Stack": id.name(), "GeneratedBy": "mangactl" }),
        );
        t
    }

    /// Resource tags: the environment's, plus `Environment`, `ManagedBy`
    /// and `Stack`. Stack-level tags come from the manifest at deploy time;
    /// these make the resources self-describing in the console too.
    pub fn tags(&self, id: StackId) -> Vec<Tag> {
        self.tag_map(id)
            .into_iter()
            .map(|(key, value)| Tag {
                key,
                value: Expr::Str(value),
            })
            .collect()
    }

    pub fn tag_map(&self, id: StackId) -> BTreeMap<String, String> {
        let mut m = self.env.tags.clone();
        m.insert("Environment".into(), self.env.name.clone());
        m.insert("ManagedBy".into(), "mangactl".into());
        m.insert("Stack".into(), id.name().into());
        m
    }

    /// Data stores keep their data on stack deletion when the environment
    /// asks for it.
    pub fn retain_data(&self) -> bool {
        self.env.protection.retain_data
    }
}

/// The task role's name, fixed so the search stack can grant it access
/// without importing from the service stack (which imports from search).
pub fn task_role_name(env: &Environment) -> String {
    format!("{}-task", env.prefix())
}

pub fn task_role_arn(env: &Environment) -> Expr {
    Expr::sub_with(
        "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${Name}",
        [("Name", Expr::Str(task_role_name(env)))],
    )
}

/// A log bucket in this stack's Region: SSE-S3 (the one encryption ALB
/// access logs accept: Elastic Load Balancing User Guide, "Enable access
/// logs for your Application Load Balancer"), public access blocked,
/// versioned, expiring what it holds, TLS-only, writable by `writers`.
/// `acls`: object ownership "BucketOwnerPreferred" instead of ACLs off, for
/// CloudFront's standard logging, which writes through ACLs (CloudFront
/// Developer Guide, "Configure standard logging (legacy)").
pub(crate) fn log_bucket(
    i: &Inputs<'_>,
    t: &mut Template,
    id: StackId,
    logical: &str,
    acls: bool,
    writers: Vec<crate::model::resources::iam::Statement>,
) -> (
    crate::model::Handle<crate::model::resources::s3::Bucket>,
    crate::model::Handle<crate::model::resources::s3::BucketPolicy>,
) {
    use crate::model::resources::iam::{Effect, PolicyDocument, Principal, Statement};
    use crate::model::resources::s3::*;
    use crate::model::{Policy, ResourceOpts};
    let days = if i.env.is_production() { 365 } else { 30 };
    let policy = if i.retain_data() {
        Policy::Retain
    } else {
        Policy::Delete
    };
    let bucket = t.add_with(
        logical,
        Bucket {
            bucket_encryption: BucketEncryption::s3_managed(),
            public_access_block_configuration: PublicAccessBlock::all(),
            versioning_configuration: Versioning {
                status: "Enabled".into(),
            },
            ownership_controls: OwnershipControls {
                rules: vec![OwnershipRule {
                    object_ownership: if acls {
                        "BucketOwnerPreferred"
                    } else {
                        "BucketOwnerEnforced"
                    }
                    .into(),
                }],
            },
            lifecycle_configuration: Some(serde_json::json!({
                "Rules": [{
                    "Id": "expire-logs",
                    "Status": "Enabled",
                    "ExpirationInDays": days,
                    "NoncurrentVersionExpiration": { "NoncurrentDays": 7 }
                }]
            })),
            tags: i.tags(id),
        },
        ResourceOpts::new().deletion(policy),
    );
    let mut statements = vec![Statement {
        sid: Some("TlsOnly".into()),
        effect: Effect::Deny,
        principal: Some(Principal::Anyone("*")),
        action: vec!["s3:*".into()],
        resource: Some(vec![
            bucket.arn(),
            Expr::sub_with("${Arn}/*", [("Arn", bucket.arn())]),
        ]),
        condition: Some(Expr::map([(
            "Bool",
            Expr::map([("aws:SecureTransport", Expr::str("false"))]),
        )])),
    }];
    statements.extend(writers);
    let bucket_policy = t.add(
        &format!("{logical}Policy"),
        BucketPolicy {
            bucket: bucket.name(),
            policy_document: PolicyDocument::new(statements),
        },
    );
    (bucket, bucket_policy)
}

/// Builds one stack's template.
pub fn build(id: StackId, inputs: &Inputs<'_>) -> Template {
    match id {
        StackId::Network => network::template(inputs),
        StackId::Memory => memory::template(inputs),
        StackId::Cache => cache::template(inputs),
        StackId::Search => search::template(inputs),
        StackId::Intent => intent::template(inputs),
        StackId::Service => service::template(inputs),
        StackId::Edge => edge::template(inputs),
        StackId::Observability => observability::template(inputs),
    }
}

/// `arn:<partition>:<service>:<region>:<account>:<rest>` for this stack.
pub(crate) fn arn(service: &str, rest: &str) -> Expr {
    Expr::sub(format!(
        "arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:{rest}"
    ))
}

#[cfg(test)]
mod tests;

/// The first two statements of every customer-managed key policy here: the
/// account administers the key through IAM (KMS Developer Guide, "Default
/// key policy"), and nobody creates grants on it except for an AWS service
/// acting on an AWS resource (the Control Tower control CT.KMS.PR.3: deny
/// `kms:CreateGrant` unless `kms:GrantIsForAWSResource` or
/// `aws:PrincipalIsAWSService`, with `BoolIfExists`).
pub(crate) fn kms_base_statements() -> Vec<crate::model::resources::iam::Statement> {
    use crate::model::resources::iam::{Effect, Principal, Statement};
    vec![
        Statement {
            sid: Some("AccountAdministers".into()),
            effect: Effect::Allow,
            principal: Some(Principal::Aws(Expr::sub(
                "arn:${AWS::Partition}:iam::${AWS::AccountId}:root",
            ))),
            action: vec!["kms:*".into()],
            resource: Some(vec!["*".into()]),
            condition: None,
        },
        Statement {
            sid: Some("GrantsOnlyForAwsServices".into()),
            effect: Effect::Deny,
            principal: Some(Principal::Anyone("*")),
            action: vec!["kms:CreateGrant".into()],
            resource: Some(vec!["*".into()]),
            condition: Some(Expr::map([(
                "BoolIfExists",
                Expr::map([
                    ("kms:GrantIsForAWSResource", Expr::str("false")),
                    ("aws:PrincipalIsAWSService", Expr::str("false")),
                ]),
            )])),
        },
    ]
}
