//! CloudWatch Logs.

use serde::Serialize;

use super::{resource_type, Tag};
use crate::model::{Expr, Handle};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogGroup {
    pub log_group_name: String,
    pub retention_in_days: u32,
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
