//! KMS: customer-managed keys.

use serde::Serialize;

use super::iam::PolicyDocument;
use super::{resource_type, Tag};
use crate::model::{Expr, Handle};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Key {
    pub description: String,
    pub enable_key_rotation: bool,
    pub key_policy: PolicyDocument,
    pub tags: Vec<Tag>,
}
resource_type!(Key, "AWS::KMS::Key");

impl Handle<Key> {
    /// `Ref` of a key is its key ID.
    pub fn id(&self) -> Expr {
        self.reference()
    }
    pub fn arn(&self) -> Expr {
        self.attr("Arn")
    }
}
