//! S3: log buckets and their policies.

use serde::Serialize;
use serde_json::Value;
use serde_with::skip_serializing_none;

use super::iam::PolicyDocument;
use super::{resource_type, Tag};
use crate::model::{Expr, Handle};

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Bucket {
    pub bucket_encryption: BucketEncryption,
    pub public_access_block_configuration: PublicAccessBlock,
    pub versioning_configuration: Versioning,
    pub ownership_controls: OwnershipControls,
    pub lifecycle_configuration: Option<Value>,
    pub tags: Vec<Tag>,
}
resource_type!(Bucket, "AWS::S3::Bucket");

impl Handle<Bucket> {
    /// `Ref` of a bucket is its name.
    pub fn name(&self) -> Expr {
        self.reference()
    }
    pub fn arn(&self) -> Expr {
        self.attr("Arn")
    }
    /// `<bucket>.s3.amazonaws.com`, what CloudFront's logging takes.
    pub fn domain_name(&self) -> Expr {
        self.attr("DomainName")
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BucketEncryption {
    pub server_side_encryption_configuration: Vec<EncryptionRule>,
}

impl BucketEncryption {
    /// SSE-S3 (AES256).
    pub fn s3_managed() -> Self {
        BucketEncryption {
            server_side_encryption_configuration: vec![EncryptionRule {
                server_side_encryption_by_default: EncryptionDefault {
                    sse_algorithm: "AES256".into(),
                },
            }],
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncryptionRule {
    pub server_side_encryption_by_default: EncryptionDefault,
}

#[derive(Debug, Clone, Serialize)]
pub struct EncryptionDefault {
    #[serde(rename = "SSEAlgorithm")]
    pub sse_algorithm: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub block_public_policy: bool,
    pub ignore_public_acls: bool,
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    pub fn all() -> Self {
        PublicAccessBlock {
            block_public_acls: true,
            block_public_policy: true,
            ignore_public_acls: true,
            restrict_public_buckets: true,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Versioning {
    pub status: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct OwnershipControls {
    pub rules: Vec<OwnershipRule>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct OwnershipRule {
    pub object_ownership: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BucketPolicy {
    pub bucket: Expr,
    pub policy_document: PolicyDocument,
}
resource_type!(BucketPolicy, "AWS::S3::BucketPolicy");
