//! Secrets Manager: a secret with a generated value, optionally replicated
//! to other Regions.

use serde::Serialize;
use serde_with::skip_serializing_none;

use super::{resource_type, Tag};
use crate::model::{Expr, Handle};

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Secret {
    pub name: String,
    pub description: String,
    pub generate_secret_string: GenerateSecretString,
    /// Copies in other Regions, same name (and ARN but for the Region).
    pub replica_regions: Option<Vec<ReplicaRegion>>,
    pub tags: Vec<Tag>,
}
resource_type!(Secret, "AWS::SecretsManager::Secret");

impl Handle<Secret> {
    /// `Ref` of a secret is its ARN.
    pub fn arn(&self) -> Expr {
        self.reference()
    }
}

/// A JSON secret `SecretStringTemplate` plus one generated key.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateSecretString {
    pub secret_string_template: String,
    pub generate_string_key: String,
    pub password_length: u32,
    pub exclude_punctuation: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReplicaRegion {
    pub region: String,
}
