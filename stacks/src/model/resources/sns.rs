//! SNS: topics and their subscriptions.

use serde::Serialize;

use super::{resource_type, Tag};
use crate::model::{Expr, Handle};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Topic {
    pub topic_name: String,
    pub display_name: String,
    /// The KMS key that encrypts messages at rest.
    pub kms_master_key_id: Expr,
    pub tags: Vec<Tag>,
}
resource_type!(Topic, "AWS::SNS::Topic");

impl Handle<Topic> {
    /// `Ref` of a topic is its ARN.
    pub fn arn(&self) -> Expr {
        self.reference()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Subscription {
    pub topic_arn: Expr,
    pub protocol: String,
    pub endpoint: String,
}
resource_type!(Subscription, "AWS::SNS::Subscription");
