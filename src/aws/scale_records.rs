//! Scale records: what an on-call engineer's `mangactl scale` leaves behind,
//! so that drift reports the change as acknowledged (who, when, why, until
//! when) instead of as drift, and nothing undoes it silently.
//!
//! **Format** ([`ScaleRecord`], version [`RECORD_VERSION`]): one JSON
//! document per scaled resource property. **Where**: AWS Systems Manager
//! Parameter Store, in the environment's region, one standard String
//! parameter per scaled property at
//! `/mangaassist/<env>/scale/<component>/<LogicalId>/<Property>`
//! ([`parameter_name`]; `service/Service/DesiredCount`). Parameter Store because a record must outlive the
//! process that made it, be readable by the nightly CI job with read-only
//! credentials (`ssm:GetParametersByPath`), be written in one call at 3 a.m.
//! (`ssm:PutParameter`), and keep its history (every PutParameter makes a
//! new version with its date and IAM principal). `mangactl scale` writes
//! and removes records ([`RecordStore`], [`SsmRecords`]); `drift`, `plan`,
//! `apply` and `status` read them ([`read`]).

use serde::{Deserialize, Serialize};
use stacks::stacks::StackId;

use super::error::AwsError;

/// The record format's version; a reader skips records of a newer one.
pub const RECORD_VERSION: u32 = 1;

/// One acknowledged capacity change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleRecord {
    pub version: u32,
    /// `service`, `cache`, `dax`, `intent`, `search`.
    pub component: String,
    pub stack: StackId,
    /// The resource in that stack.
    pub logical_id: String,
    /// The property as drift detection reports it (`/ReplicationFactor`).
    pub property: String,
    /// The value it was scaled to, as text.
    pub value: String,
    /// Who (the IAM principal or the user's name).
    pub by: String,
    /// When, RFC 3339 UTC.
    pub at: String,
    pub reason: String,
    /// `YYYY-MM-DD`: the last day the change stands; from the day after,
    /// drift reports it again.
    pub until: String,
}

impl ScaleRecord {
    /// Whether the record still stands on `today` (`YYYY-MM-DD`): through
    /// its `until` day, inclusive.
    pub fn is_active(&self, today: &str) -> bool {
        self.until.as_str() >= today
    }
}

/// The Parameter Store path of the environment's records.
pub fn parameter_path(environment: &str) -> String {
    format!("/mangaassist/{environment}/scale/")
}

/// The parameter holding the record of one scaled property
/// (`property` as drift names it, `/DesiredCount`).
pub fn parameter_name(
    environment: &str,
    component: &str,
    logical_id: &str,
    property: &str,
) -> String {
    format!(
        "{}{component}/{logical_id}{property}",
        parameter_path(environment)
    )
}

/// Every record of the environment (GetParametersByPath, every page).
/// Parameters that are not a record of a known version are skipped with a
/// warning rather than failing the check.
pub async fn read(
    config: &aws_config::SdkConfig,
    environment: &str,
) -> Result<Vec<ScaleRecord>, AwsError> {
    let client = aws_sdk_ssm::Client::new(config);
    let path = parameter_path(environment);
    let mut records = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = client
            .get_parameters_by_path()
            .path(&path)
            .recursive(true)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk("Systems Manager", "GetParametersByPath", Some(&path), e)
            })?;
        for p in out.parameters() {
            let name = p.name().unwrap_or_default();
            match p.value().map(serde_json::from_str::<ScaleRecord>) {
                Some(Ok(r)) if r.version <= RECORD_VERSION => records.push(r),
                Some(Ok(r)) => tracing::warn!(
                    "{name}: scale record version {} is newer than this mangactl reads",
                    r.version
                ),
                Some(Err(e)) => tracing::warn!("{name}: not a scale record: {e}"),
                None => {}
            }
        }
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => return Ok(records),
        }
    }
}

/// Where `mangactl scale` writes its records: [`SsmRecords`] in AWS, an
/// in-memory store in tests (`src/fakes/capacity.rs`).
#[async_trait::async_trait]
pub trait RecordStore: Send + Sync + std::fmt::Debug {
    /// Writes (or replaces) the record of its property.
    async fn put(&self, environment: &str, record: &ScaleRecord) -> Result<(), AwsError>;
    /// Removes the record of one property; a record that is not there is
    /// not an error.
    async fn remove(&self, environment: &str, record: &ScaleRecord) -> Result<(), AwsError>;
}

/// [`RecordStore`] in Parameter Store.
#[derive(Debug, Clone)]
pub struct SsmRecords {
    client: aws_sdk_ssm::Client,
}

impl SsmRecords {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        SsmRecords {
            client: aws_sdk_ssm::Client::new(config),
        }
    }
}

/// The parameter of `record`.
pub fn name_of(environment: &str, record: &ScaleRecord) -> String {
    parameter_name(
        environment,
        &record.component,
        &record.logical_id,
        &record.property,
    )
}

#[async_trait::async_trait]
impl RecordStore for SsmRecords {
    async fn put(&self, environment: &str, record: &ScaleRecord) -> Result<(), AwsError> {
        let name = name_of(environment, record);
        let value = serde_json::to_string(record).map_err(|e| {
            AwsError::unanswered(
                "Systems Manager",
                "PutParameter",
                Some(&name),
                e.to_string(),
                super::ErrorClass::Other,
            )
        })?;
        self.client
            .put_parameter()
            .name(&name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .description(format!("mangactl scale record: {}", record.reason))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("Systems Manager", "PutParameter", Some(&name), e))?;
        Ok(())
    }

    async fn remove(&self, environment: &str, record: &ScaleRecord) -> Result<(), AwsError> {
        let name = name_of(environment, record);
        match self.client.delete_parameter().name(&name).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = AwsError::from_sdk("Systems Manager", "DeleteParameter", Some(&name), e);
                // ParameterNotFound: already gone.
                if e.class == super::ErrorClass::NotFound || e.code() == Some("ParameterNotFound") {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}

/// Who is calling: the caller identity's ARN (STS GetCallerIdentity), the
/// "who" of a scale record.
pub async fn caller(config: &aws_config::SdkConfig) -> Result<String, AwsError> {
    let out = aws_sdk_sts::Client::new(config)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("STS", "GetCallerIdentity", None, e))?;
    Ok(out.arn().unwrap_or("unknown").to_owned())
}
