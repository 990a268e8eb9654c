//! CloudWatch Logs.

use serde::Serialize;

use super::{resource_type, Tag};
use crate::model::{Expr, Handle};

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogGroup {
    pub log_group_name: String,
    pub retention_in_days: u32,
    /// The KMS key (ARN) that encrypts the group's events.
    pub kms_key_id: Option<Expr>,
    pub tags: Vec<Tag>,
}
resource_type!(LogGroup, "AWS::Logs::LogGroup");

impl Handle<LogGroup> {
    pub fn name(&self) -> Expr {
        self.reference()
    }
    pub fn arn(&self) -> Expr {
        self.attr("Arn")
    }
}
