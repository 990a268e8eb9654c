//! The [`Prerequisites`] trait: what `mangactl preflight` asks AWS about
//! the things an apply assumes exist outside its stacks (the logic that
//! judges the answers is `src/deploy/preflight.rs`).
//!
//! | question | API |
//! |---|---|
//! | who is calling | STS `GetCallerIdentity` |
//! | is the container image pushed | ECR `DescribeImages` |
//! | is the model artifact uploaded | S3 `HeadObject` |
//! | is the certificate issued, for which names | ACM `DescribeCertificate` |
//! | may this account invoke the model | Bedrock `GetFoundationModelAvailability` |
//! | what are the account's quotas | Service Quotas `ListServiceQuotas` |
//!
//! Something that does not exist is `Ok(None)` (or `Ok(false)`), never an
//! error: the caller names it as missing. [`SdkPrerequisites`] answers with
//! the AWS SDK; tests answer what moto lacks (Bedrock model availability)
//! with a double behind the same trait (`tests/it/preflight.rs`).

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::config::Config;
use super::error::{AwsError, ErrorClass};

pub type PrereqResult<T> = Result<T, AwsError>;

/// A certificate as `DescribeCertificate` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// `ISSUED`, `PENDING_VALIDATION`, `EXPIRED`, ...
    pub status: String,
    /// The domain name and every subject alternative name.
    pub names: Vec<String>,
}

/// `GetFoundationModelAvailability`'s answer, field by field (API
/// reference: `agreementAvailability.status` AVAILABLE | PENDING |
/// NOT_AVAILABLE | ERROR; `authorizationStatus` AUTHORIZED |
/// NOT_AUTHORIZED; `entitlementAvailability` and `regionAvailability`
/// AVAILABLE | NOT_AVAILABLE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelAvailability {
    pub agreement: String,
    pub agreement_message: Option<String>,
    pub authorization: String,
    pub entitlement: String,
    pub region: String,
}

/// One service quota: its name, code and applied (or default) value.
#[derive(Debug, Clone, PartialEq)]
pub struct Quota {
    pub name: String,
    pub code: String,
    pub value: f64,
}

#[async_trait]
pub trait Prerequisites: Send + Sync {
    /// The caller's account id.
    async fn caller_account(&self) -> PrereqResult<String>;
    /// Whether `repository:reference` (a tag, or a `sha256:` digest) is in
    /// the registry of `account` in `region`.
    async fn image_exists(
        &self,
        region: &str,
        account: &str,
        repository: &str,
        reference: &str,
    ) -> PrereqResult<bool>;
    /// Whether `s3://bucket/key` exists.
    async fn object_exists(&self, bucket: &str, key: &str) -> PrereqResult<bool>;
    /// The certificate `arn` (in `region`), if it exists.
    async fn certificate(&self, region: &str, arn: &str) -> PrereqResult<Option<Certificate>>;
    /// Whether this account may invoke `model_id` in the home region.
    async fn model_availability(&self, model_id: &str) -> PrereqResult<ModelAvailability>;
    /// Every quota of `service_code` in the home region.
    async fn quotas(&self, service_code: &str) -> PrereqResult<Vec<Quota>>;
}

/// [`Prerequisites`] through the AWS SDK. `home` is the environment's
/// region; images and certificates are asked in their own regions.
#[derive(Debug, Clone)]
pub struct SdkPrerequisites {
    home: Config,
    by_region: BTreeMap<String, Config>,
}

impl SdkPrerequisites {
    pub fn new(home: &Config, by_region: &BTreeMap<String, Config>) -> SdkPrerequisites {
        SdkPrerequisites {
            home: home.clone(),
            by_region: by_region.clone(),
        }
    }

    /// The configuration for `region`: the one the command built, else the
    /// home configuration with its region replaced.
    fn config(&self, region: &str) -> Config {
        if let Some(c) = self.by_region.get(region) {
            return c.clone();
        }
        if self.home.region().is_some_and(|r| r.as_ref() == region) {
            return self.home.clone();
        }
        self.home
            .to_builder()
            .region(aws_config::Region::new(region.to_owned()))
            .build()
    }
}

/// `Ok(None)` for "not found", the error otherwise.
fn absent<T>(e: AwsError) -> PrereqResult<Option<T>> {
    if e.class == ErrorClass::NotFound {
        Ok(None)
    } else {
        Err(e)
    }
}

#[async_trait]
impl Prerequisites for SdkPrerequisites {
    async fn caller_account(&self) -> PrereqResult<String> {
        let out = aws_sdk_sts::Client::new(&self.home)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("STS", "GetCallerIdentity", None, e))?;
        Ok(out.account().unwrap_or_default().to_owned())
    }

    async fn image_exists(
        &self,
        region: &str,
        account: &str,
        repository: &str,
        reference: &str,
    ) -> PrereqResult<bool> {
        let id = if reference.starts_with("sha256:") {
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_digest(reference)
                .build()
        } else {
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag(reference)
                .build()
        };
        let subject = format!("{repository}:{reference}");
        let r = aws_sdk_ecr::Client::new(&self.config(region))
            .describe_images()
            .registry_id(account)
            .repository_name(repository)
            .image_ids(id)
            .send()
            .await;
        match r {
            Ok(out) => Ok(!out.image_details().is_empty()),
            Err(e) => absent::<()>(AwsError::from_sdk(
                "ECR",
                "DescribeImages",
                Some(&subject),
                e,
            ))
            .map(|_| false),
        }
    }

    async fn object_exists(&self, bucket: &str, key: &str) -> PrereqResult<bool> {
        let subject = format!("s3://{bucket}/{key}");
        let r = aws_sdk_s3::Client::new(&self.home)
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) => absent::<()>(AwsError::from_sdk("S3", "HeadObject", Some(&subject), e))
                .map(|_| false),
        }
    }

    async fn certificate(&self, region: &str, arn: &str) -> PrereqResult<Option<Certificate>> {
        let r = aws_sdk_acm::Client::new(&self.config(region))
            .describe_certificate()
            .certificate_arn(arn)
            .send()
            .await;
        let out = match r {
            Ok(out) => out,
            Err(e) => {
                return absent(AwsError::from_sdk(
                    "ACM",
                    "DescribeCertificate",
                    Some(arn),
                    e,
                ))
            }
        };
        let Some(c) = out.certificate() else {
            return Ok(None);
        };
        let mut names: Vec<String> = c.domain_name().into_iter().map(str::to_owned).collect();
        for san in c.subject_alternative_names() {
            if !names.contains(san) {
                names.push(san.clone());
            }
        }
        Ok(Some(Certificate {
            status: c
                .status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            names,
        }))
    }

    async fn model_availability(&self, model_id: &str) -> PrereqResult<ModelAvailability> {
        let out = aws_sdk_bedrock::Client::new(&self.home)
            .get_foundation_model_availability()
            .model_id(model_id)
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk(
                    "Bedrock",
                    "GetFoundationModelAvailability",
                    Some(model_id),
                    e,
                )
            })?;
        let agreement = out.agreement_availability();
        Ok(ModelAvailability {
            agreement: agreement
                .map(|a| a.status().as_str().to_owned())
                .unwrap_or_default(),
            agreement_message: agreement.and_then(|a| a.error_message()).map(str::to_owned),
            authorization: out.authorization_status().as_str().to_owned(),
            entitlement: out.entitlement_availability().as_str().to_owned(),
            region: out.region_availability().as_str().to_owned(),
        })
    }

    async fn quotas(&self, service_code: &str) -> PrereqResult<Vec<Quota>> {
        // ListServiceQuotas returns applied values, and leaves out quotas
        // whose applied value is not available (Service Quotas API
        // reference); the defaults fill those in.
        let client = aws_sdk_servicequotas::Client::new(&self.home);

        let mut by_code: BTreeMap<String, Quota> = BTreeMap::new();
        let mut next: Option<String> = None;
        loop {
            let out = client
                .list_aws_default_service_quotas()
                .service_code(service_code)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| {
                    AwsError::from_sdk(
                        "Service Quotas",
                        "ListAWSDefaultServiceQuotas",
                        Some(service_code),
                        e,
                    )
                })?;
            for q in out.quotas() {
                let quota = quota(q);
                by_code.insert(quota.code.clone(), quota);
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_owned()),
                _ => break,
            }
        }
        loop {
            let out = client
                .list_service_quotas()
                .service_code(service_code)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| {
                    AwsError::from_sdk("Service Quotas", "ListServiceQuotas", Some(service_code), e)
                })?;
            for q in out.quotas() {
                let quota = quota(q);
                by_code.insert(quota.code.clone(), quota);
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_owned()),
                _ => break,
            }
        }
        Ok(by_code.into_values().collect())
    }
}

fn quota(q: &aws_sdk_servicequotas::types::ServiceQuota) -> Quota {
    Quota {
        name: q.quota_name().unwrap_or_default().to_owned(),
        code: q.quota_code().unwrap_or_default().to_owned(),
        value: q.value().unwrap_or_default(),
    }
}
