//! The [`SearchCapacity`] trait: OpenSearch Serverless's account-level
//! capacity limits (`GetAccountSettings`, `UpdateAccountSettings`), which
//! `apply` sets from the sizing plan after the search stack deploys. They
//! are not template resources, so CloudFormation cannot set them.
//!
//! The API has MAXIMUM limits only (`capacityLimits { maxSearchCapacityInOCU,
//! maxIndexingCapacityInOCU }`, each at least 2). There is no account or
//! collection setting for a minimum: OpenSearch Serverless keeps its own
//! floor of running OCUs, so the sizing plan's `*_ocu_min` values are
//! informational (template metadata) and nothing here sets them.
//!
//! [`SdkSearchCapacity`] implements the trait with
//! `aws-sdk-opensearchserverless`; `src/fakes/opensearch.rs` (feature `fakes`) is
//! the test double (moto has no OpenSearch Serverless).

use std::fmt;

use async_trait::async_trait;
use aws_sdk_opensearchserverless::config::http::HttpResponse;
use aws_sdk_opensearchserverless::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_opensearchserverless::types;
use aws_sdk_opensearchserverless::Client;

use super::error::AwsError;

/// A failed OpenSearch Serverless call, or limits the API cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapacityError {
    /// The call failed (`error.rs`: operation, code, message, HTTP status,
    /// request id, class).
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The limits cannot be sent as asked: the API takes integers of at
    /// least 2 ([`MIN_MAX_OCU`]).
    #[error("{SERVICE} {operation}: {field} = {value} is out of range (2 to 2147483647 OCUs)")]
    OutOfRange {
        operation: &'static str,
        field: &'static str,
        value: u32,
    },
}

/// The service's name in messages.
pub const SERVICE: &str = "OpenSearch Serverless";

impl CapacityError {
    /// The API operation that failed.
    pub fn operation(&self) -> &'static str {
        match self {
            CapacityError::Aws(e) => e.operation,
            CapacityError::OutOfRange { operation, .. } => operation,
        }
    }
}

pub type CapacityResult<T> = Result<T, CapacityError>;

/// `CapacityLimits` of the API: the account's maximum OCUs. `None` is a
/// field the account settings do not carry (never set; AWS applies its
/// default), and in an update a field left as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CapacityLimits {
    pub max_search_ocu: Option<u32>,
    pub max_indexing_ocu: Option<u32>,
}

/// The API's lower bound for both maxima (`Valid Range: Minimum value of 2`).
pub const MIN_MAX_OCU: u32 = 2;

impl CapacityLimits {
    /// Checks both set fields against the API's lower bound, so a bad
    /// value is refused before anything is changed.
    pub fn validate(&self, operation: &'static str) -> CapacityResult<()> {
        for (field, value) in [
            ("maxSearchCapacityInOCU", self.max_search_ocu),
            ("maxIndexingCapacityInOCU", self.max_indexing_ocu),
        ] {
            if let Some(value) = value.filter(|v| *v < MIN_MAX_OCU) {
                return Err(CapacityError::OutOfRange {
                    operation,
                    field,
                    value,
                });
            }
        }
        Ok(())
    }
}

/// The OpenSearch Serverless account settings `apply` reads and writes.
#[async_trait]
pub trait SearchCapacity: Send + Sync + fmt::Debug {
    /// `GetAccountSettings`: the current limits.
    async fn capacity_limits(&self) -> CapacityResult<CapacityLimits>;
    /// `UpdateAccountSettings` with `limits` (`None` fields are not sent);
    /// returns the limits the service reports afterwards.
    async fn set_capacity_limits(&self, limits: &CapacityLimits) -> CapacityResult<CapacityLimits>;
}

/// [`SearchCapacity`] through the AWS SDK.
#[derive(Debug, Clone)]
pub struct SdkSearchCapacity {
    client: Client,
}

impl SdkSearchCapacity {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        SdkSearchCapacity {
            client: Client::new(config),
        }
    }
}

fn sdk_error<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> CapacityError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    // Account settings: no resource to name.
    CapacityError::Aws(AwsError::from_sdk(SERVICE, operation, None, err))
}

/// The API's integers are `i32`; a negative one would be a service bug and
/// reads as "not set" rather than wrapping around.
fn ocu(v: Option<i32>) -> Option<u32> {
    v.and_then(|v| u32::try_from(v).ok())
}

fn to_api(
    operation: &'static str,
    field: &'static str,
    v: Option<u32>,
) -> CapacityResult<Option<i32>> {
    v.map(|v| {
        i32::try_from(v).map_err(|_| CapacityError::OutOfRange {
            operation,
            field,
            value: v,
        })
    })
    .transpose()
}

fn from_detail(detail: Option<&types::AccountSettingsDetail>) -> CapacityLimits {
    let limits = detail.and_then(|d| d.capacity_limits());
    CapacityLimits {
        max_search_ocu: ocu(limits.and_then(|l| l.max_search_capacity_in_ocu())),
        max_indexing_ocu: ocu(limits.and_then(|l| l.max_indexing_capacity_in_ocu())),
    }
}

#[async_trait]
impl SearchCapacity for SdkSearchCapacity {
    async fn capacity_limits(&self) -> CapacityResult<CapacityLimits> {
        let out = self
            .client
            .get_account_settings()
            .send()
            .await
            .map_err(|e| sdk_error("GetAccountSettings", e))?;
        Ok(from_detail(out.account_settings_detail()))
    }

    async fn set_capacity_limits(&self, limits: &CapacityLimits) -> CapacityResult<CapacityLimits> {
        const OP: &str = "UpdateAccountSettings";
        limits.validate(OP)?;
        let api = types::CapacityLimits::builder()
            .set_max_search_capacity_in_ocu(to_api(
                OP,
                "maxSearchCapacityInOCU",
                limits.max_search_ocu,
            )?)
            .set_max_indexing_capacity_in_ocu(to_api(
                OP,
                "maxIndexingCapacityInOCU",
                limits.max_indexing_ocu,
            )?)
            .build();
        let out = self
            .client
            .update_account_settings()
            .capacity_limits(api)
            .send()
            .await
            .map_err(|e| sdk_error(OP, e))?;
        Ok(from_detail(out.account_settings_detail()))
    }
}
