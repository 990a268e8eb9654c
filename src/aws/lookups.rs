//! Reads a template's lookups need at deploy time (`stacks::model::Lookup`,
//! `StackManifest::lookups`): values that differ per region and only the
//! region's own APIs know, such as the ID of CloudFront's origin-facing
//! managed prefix list. The deploying command fills `Rendered::lookups`
//! with them before it plans (`src/cli/shared.rs`).

use aws_sdk_ec2::types::Filter;
use stacks::model::Lookup;

use super::error::AwsError;

/// The value of `what` in the region of `config`; `None` when the region
/// has no such thing.
pub async fn look_up(
    config: &aws_config::SdkConfig,
    what: &Lookup,
) -> Result<Option<String>, AwsError> {
    match what {
        Lookup::ManagedPrefixList(name) => {
            let client = aws_sdk_ec2::Client::new(config);
            let out = client
                .describe_managed_prefix_lists()
                .filters(
                    Filter::builder()
                        .name("prefix-list-name")
                        .values(name)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| {
                    AwsError::from_sdk("EC2", "DescribeManagedPrefixLists", Some(name), e)
                })?;
            Ok(out
                .prefix_lists()
                .iter()
                .find(|p| p.prefix_list_name() == Some(name.as_str()))
                .and_then(|p| p.prefix_list_id())
                .map(str::to_owned))
        }
    }
}
