//! Scale records: what an on-call engineer's `mangactl scale` leaves behind,
//! so that drift reports the change as acknowledged (who, when, why, until
//! when) instead of as drift, and nothing undoes it silently.
//!
//! **Format** ([`ScaleRecord`], version [`RECORD_VERSION`]): one JSON
//! document per scaled resource property. **Where**: AWS Systems Manager
//! Parameter Store, in the environment's region, one standard String
//! parameter per component at `/mangaassist/<env>/scale/<component>`
//! ([`parameter_name`]). Parameter Store because a record must outlive the
//! process that made it, be readable by the nightly CI job with read-only
//! credentials (`ssm:GetParametersByPath`), be written in one call at 3 a.m.
//! (`ssm:PutParameter`), and keep its history (every PutParameter makes a
//! new version with its date and IAM principal). `mangactl scale` (the next
//! issue) only has to write it; `drift` reads it ([`read`]).

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

/// The parameter holding `component`'s record.
pub fn parameter_name(environment: &str, component: &str) -> String {
    format!("{}{component}", parameter_path(environment))
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
