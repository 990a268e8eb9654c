//! [`CloudFormation`] across the regions one environment's stacks live in:
//! every stack in the environment's region except the edge stack, which is
//! in us-east-1 (`stacks::stacks::EDGE_REGION`). Each call goes to the
//! region of the stack it names (by name from the manifest, or by the
//! region inside a stack ARN), so the deploy logic (`src/deploy/`) stays
//! region-blind. Stack names are unique within an environment, so a name
//! alone picks the region.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::cloudformation::{
    CfnResult, ChangeSet, ChangeSetRequest, CloudFormation, DriftDetection, ResourceDrift, Stack,
    StackEvent,
};

/// One [`CloudFormation`] per region, routed by stack.
pub struct RegionalCloudFormation {
    by_region: BTreeMap<String, Arc<dyn CloudFormation>>,
    stack_regions: BTreeMap<String, String>,
    default_region: String,
}

impl fmt::Debug for RegionalCloudFormation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegionalCloudFormation")
            .field("regions", &self.by_region.keys().collect::<Vec<_>>())
            .field("stack_regions", &self.stack_regions)
            .finish()
    }
}

impl RegionalCloudFormation {
    /// `clients` by region; `stack_regions` says where each stack lives;
    /// anything else goes to `default_region` (which must have a client).
    pub fn new(
        clients: BTreeMap<String, Arc<dyn CloudFormation>>,
        stack_regions: BTreeMap<String, String>,
        default_region: impl Into<String>,
    ) -> Self {
        RegionalCloudFormation {
            by_region: clients,
            stack_regions,
            default_region: default_region.into(),
        }
    }

    /// The region `stack` (a name or an ARN) is in.
    pub fn region_of<'a>(&'a self, stack: &'a str) -> &'a str {
        if let Some(rest) = stack.strip_prefix("arn:") {
            // arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<id>
            if let Some(region) = rest.split(':').nth(2).filter(|r| !r.is_empty()) {
                return region;
            }
        }
        self.stack_regions
            .get(stack)
            .map_or(self.default_region.as_str(), String::as_str)
    }

    fn route(&self, stack: &str) -> &dyn CloudFormation {
        let region = self.region_of(stack);
        match self
            .by_region
            .get(region)
            .or_else(|| self.by_region.get(&self.default_region))
            .or_else(|| self.by_region.values().next())
        {
            Some(c) => c.as_ref(),
            None => &NO_CLIENT,
        }
    }
}

/// Answers every call with "no client" (only when built without any).
#[derive(Debug)]
struct NoClient;

static NO_CLIENT: NoClient = NoClient;

fn no_client(operation: &'static str, stack: &str) -> super::AwsError {
    super::AwsError::unanswered(
        "CloudFormation",
        operation,
        Some(stack),
        "no CloudFormation client for this stack's region",
        super::ErrorClass::Other,
    )
}

#[async_trait]
impl CloudFormation for NoClient {
    async fn describe_stack(&self, name: &str) -> CfnResult<Option<Stack>> {
        Err(no_client("DescribeStacks", name))
    }
    async fn stack_events(&self, name: &str) -> CfnResult<Vec<StackEvent>> {
        Err(no_client("DescribeStackEvents", name))
    }
    async fn template(&self, name: &str) -> CfnResult<Option<String>> {
        Err(no_client("GetTemplate", name))
    }
    async fn create_change_set(&self, r: &ChangeSetRequest) -> CfnResult<String> {
        Err(no_client("CreateChangeSet", &r.stack_name))
    }
    async fn describe_change_set(&self, stack: &str, _: &str) -> CfnResult<ChangeSet> {
        Err(no_client("DescribeChangeSet", stack))
    }
    async fn delete_change_set(&self, stack: &str, _: &str) -> CfnResult<()> {
        Err(no_client("DeleteChangeSet", stack))
    }
    async fn execute_change_set(&self, stack: &str, _: &str, _: &str) -> CfnResult<()> {
        Err(no_client("ExecuteChangeSet", stack))
    }
    async fn delete_stack(&self, stack: &str, _: &str) -> CfnResult<()> {
        Err(no_client("DeleteStack", stack))
    }
    async fn continue_update_rollback(&self, stack: &str, _: &str) -> CfnResult<()> {
        Err(no_client("ContinueUpdateRollback", stack))
    }
    async fn cancel_update_stack(&self, stack: &str, _: &str) -> CfnResult<()> {
        Err(no_client("CancelUpdateStack", stack))
    }
    async fn set_termination_protection(&self, stack: &str, _: bool) -> CfnResult<()> {
        Err(no_client("UpdateTerminationProtection", stack))
    }
    async fn stack_names(&self) -> CfnResult<Vec<String>> {
        Err(no_client("ListStacks", "*"))
    }
    async fn detect_stack_drift(&self, stack: &str) -> CfnResult<String> {
        Err(no_client("DetectStackDrift", stack))
    }
    async fn drift_detection(&self, stack: &str, _: &str) -> CfnResult<DriftDetection> {
        Err(no_client("DescribeStackDriftDetectionStatus", stack))
    }
    async fn resource_drifts(&self, stack: &str) -> CfnResult<Vec<ResourceDrift>> {
        Err(no_client("DescribeStackResourceDrifts", stack))
    }
}

#[async_trait]
impl CloudFormation for RegionalCloudFormation {
    async fn describe_stack(&self, name: &str) -> CfnResult<Option<Stack>> {
        self.route(name).describe_stack(name).await
    }
    async fn stack_events(&self, name: &str) -> CfnResult<Vec<StackEvent>> {
        self.route(name).stack_events(name).await
    }
    async fn template(&self, name: &str) -> CfnResult<Option<String>> {
        self.route(name).template(name).await
    }
    async fn create_change_set(&self, r: &ChangeSetRequest) -> CfnResult<String> {
        self.route(&r.stack_name).create_change_set(r).await
    }
    async fn describe_change_set(&self, stack: &str, change_set: &str) -> CfnResult<ChangeSet> {
        self.route(stack)
            .describe_change_set(stack, change_set)
            .await
    }
    async fn delete_change_set(&self, stack: &str, change_set: &str) -> CfnResult<()> {
        self.route(stack).delete_change_set(stack, change_set).await
    }
    async fn execute_change_set(
        &self,
        stack: &str,
        change_set: &str,
        token: &str,
    ) -> CfnResult<()> {
        self.route(stack)
            .execute_change_set(stack, change_set, token)
            .await
    }
    async fn delete_stack(&self, stack: &str, token: &str) -> CfnResult<()> {
        self.route(stack).delete_stack(stack, token).await
    }
    async fn continue_update_rollback(&self, stack: &str, token: &str) -> CfnResult<()> {
        self.route(stack)
            .continue_update_rollback(stack, token)
            .await
    }
    async fn cancel_update_stack(&self, stack: &str, token: &str) -> CfnResult<()> {
        self.route(stack).cancel_update_stack(stack, token).await
    }
    async fn set_termination_protection(&self, stack: &str, enabled: bool) -> CfnResult<()> {
        self.route(stack)
            .set_termination_protection(stack, enabled)
            .await
    }
    /// Every region's stacks.
    async fn stack_names(&self) -> CfnResult<Vec<String>> {
        let mut names = Vec::new();
        for c in self.by_region.values() {
            names.extend(c.stack_names().await?);
        }
        names.sort();
        names.dedup();
        Ok(names)
    }
    async fn detect_stack_drift(&self, stack: &str) -> CfnResult<String> {
        self.route(stack).detect_stack_drift(stack).await
    }
    async fn drift_detection(&self, stack: &str, id: &str) -> CfnResult<DriftDetection> {
        self.route(stack).drift_detection(stack, id).await
    }
    async fn resource_drifts(&self, stack: &str) -> CfnResult<Vec<ResourceDrift>> {
        self.route(stack).resource_drifts(stack).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_route_by_name_or_by_the_region_in_their_arn() {
        let r = RegionalCloudFormation::new(
            BTreeMap::new(),
            BTreeMap::from([("mangaassist-tokyo-edge".to_owned(), "us-east-1".to_owned())]),
            "ap-northeast-1",
        );
        assert_eq!(r.region_of("mangaassist-tokyo-edge"), "us-east-1");
        assert_eq!(r.region_of("mangaassist-tokyo-network"), "ap-northeast-1");
        assert_eq!(
            r.region_of(
                "arn:aws:cloudformation:us-east-1:123456789012:stack/mangaassist-tokyo-edge/x"
            ),
            "us-east-1"
        );
    }
}
