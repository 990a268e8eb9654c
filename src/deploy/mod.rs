//! Deploying rendered stacks through CloudFormation change sets: the logic
//! behind `mangactl plan`, `apply` and `destroy` (whose CLI wrappers are
//! `src/cli/{plan,apply,destroy}.rs`).
//!
//! - [`plan`]: one change set per stack, described, printed and (for
//!   `plan`) deleted again; stuck and busy stacks are recognised here.
//! - [`apply`]: confirmation, then execution along the deploy graph with
//!   independent stacks in parallel, recovery of stuck stacks, Ctrl-C, outputs.
//! - [`changeset`]: one change set created, waited for and classified
//!   (ready / no changes / rejected), for `plan` and `apply` alike.
//! - [`capacity`]: the OpenSearch Serverless capacity limits (account
//!   settings, not template resources) that `apply` sets after the search stack.
//! - [`destroy`]: deletion in reverse dependency order.
//! - [`drift`]: deployed templates, parameters and resources against the
//!   rendering (`mangactl drift`).
//! - [`references`]: cross-stack references as parameters filled from the
//!   producers' outputs; which consumers follow a changed output.
//! - [`report`]: apply's closing summary, useful outputs and `outputs.json`.
//! - [`progress`]: live progress (indicatif on a terminal, plain lines in CI).
//! - [`confirm`]: the questions apply and destroy ask, and who answers them.
//! - [`index`]: `mangactl index`, the one-off ECS task that fills the
//!   OpenSearch index from inside the VPC (through [`crate::aws::TaskRunner`]).
//! - `wait`: polling one stack operation to its end, printing its events.
//!
//! Everything talks to AWS through [`crate::aws::CloudFormation`] (and
//! [`crate::aws::SearchCapacity`] for the OCU limits), so the
//! integration tests run it in-process against the scripted fake
//! (`tests/it/deploy_fake.rs`) and, through the binary, against moto
//! (`tests/it/deploy_moto.rs`). The rendered templates, manifest and graph
//! come from the `stacks` crate (`stacks::render::Rendered`).

pub mod apply;
pub mod capacity;
pub mod changeset;
pub mod confirm;
pub mod destroy;
pub mod drift;
pub mod drift_access;
pub mod holds;
pub mod index;
pub mod live;
pub mod plan;
pub mod preflight;
pub mod progress;
pub mod references;
pub mod report;
pub mod scale;
pub mod status;
mod wait;

use std::time::{Duration, SystemTime};

use stacks::render::Rendered;
use stacks::stacks::StackId;

use crate::aws::{CapacityError, CfnError};

/// Polling intervals: start fast (moto and small updates finish in well
/// under a second), back off to `max` for long CloudFront or DAX creates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub factor: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
            factor: 1.6,
        }
    }
}

impl Backoff {
    fn next(&self, current: Duration) -> Duration {
        current.mul_f64(self.factor).min(self.max)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Cfn(#[from] CfnError),
    #[error(transparent)]
    Capacity(#[from] CapacityError),
    #[error("{action} refused: {reason}")]
    Refused {
        action: &'static str,
        reason: String,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// CloudFormation repeats a failure on every resource it stops because of
/// it; those echoes hide the root cause and are not reported.
pub fn is_cancellation_echo(reason: &str) -> bool {
    reason.contains("Resource creation cancelled") || reason.contains("Resource update cancelled")
}

/// Resource types whose replacement or deletion loses stored data.
pub const DATA_STORE_TYPES: &[&str] = &[
    "AWS::DynamoDB::Table",
    "AWS::DynamoDB::GlobalTable",
    "AWS::ElastiCache::ReplicationGroup",
    "AWS::ElastiCache::CacheCluster",
    "AWS::OpenSearchServerless::Collection",
    "AWS::OpenSearchService::Domain",
    "AWS::RDS::DBInstance",
    "AWS::RDS::DBCluster",
    "AWS::S3::Bucket",
    "AWS::EFS::FileSystem",
];

/// Whether `logical_id` in stack `id` stores data: either the template
/// retains it on deletion (it was marked as data), or it is of a data-store
/// type in a stack that holds data ([`StackId::holds_data`]) — the type alone
/// decides elsewhere too, so a bucket added to another stack still counts.
pub fn is_data_store(
    rendered: &Rendered,
    id: StackId,
    logical_id: &str,
    resource_type: &str,
) -> bool {
    let retained = rendered
        .manifest
        .stacks
        .get(&id)
        .is_some_and(|m| m.retained.contains_key(logical_id));
    retained || DATA_STORE_TYPES.contains(&resource_type)
}

/// A token for CloudFormation's ClientRequestToken: it appears on every
/// event the operation causes, which is how someone else's `plan`/`apply`
/// can say who is updating a stack.
pub fn client_token(action: &str) -> String {
    let user: String = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into())
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(32)
        .collect();
    let user = if user.is_empty() {
        "unknown".to_owned()
    } else {
        user
    };
    format!("mangactl-{user}-{action}-{}", unix_millis())
}

/// A fresh change set name (`[a-zA-Z][-a-zA-Z0-9]*`, unique per run).
pub fn change_set_name(purpose: &str) -> String {
    format!("mangactl-{purpose}-{}", unix_millis())
}

fn unix_millis() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// Human duration: `42s`, `3m05s`, `2h01m`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// Stacks of `rendered` that `only` selects, in deploy order.
pub fn selected(rendered: &Rendered, only: Option<StackId>) -> Vec<StackId> {
    rendered
        .graph
        .order
        .iter()
        .copied()
        .filter(|id| only.is_none_or(|o| o == *id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap() {
        let b = Backoff::default();
        let mut d = b.initial;
        let mut seen = vec![d];
        for _ in 0..20 {
            d = b.next(d);
            seen.push(d);
        }
        assert!(seen.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(*seen.last().expect("some"), b.max);
        assert!(
            seen[1] < Duration::from_millis(200),
            "the second poll is still fast: {:?}",
            seen[1]
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_secs(42)), "42s");
        assert_eq!(human_duration(Duration::from_secs(185)), "3m05s");
        assert_eq!(human_duration(Duration::from_secs(7260)), "2h01m");
    }

    #[test]
    fn tokens_and_names_are_valid_for_cloudformation() {
        for s in [client_token("apply"), change_set_name("plan")] {
            assert!(s.starts_with("mangactl-"));
            assert!(s.len() <= 128);
            assert!(
                s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "{s}"
            );
        }
        assert!(is_cancellation_echo("Resource creation cancelled"));
        assert!(!is_cancellation_echo("Table already exists"));
    }
}
