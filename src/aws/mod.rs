//! AWS access for the deploy commands: the [`CloudFormation`] trait the
//! deploy logic (`src/deploy/`) talks to and its AWS SDK implementation
//! ([`cloudformation::SdkCloudFormation`]); likewise [`SearchCapacity`]
//! (`opensearch.rs`): the OpenSearch Serverless account capacity limits
//! `apply` sets; [`Capacity`] (`capacity.rs`): the live capacity of
//! every sized resource, which drift, status and scale read and scale
//! changes; [`prerequisites::Prerequisites`]: what preflight asks (images,
//! the model artifact, certificates, model access, quotas, the caller);
//! [`TaskRunner`] (`tasks.rs`): one-off ECS tasks and their CloudWatch
//! logs (`mangactl index`).
//! Their scripted fakes live in `src/fakes/` (feature
//! `fakes`, tests only). Every failed call is an [`AwsError`] (`error.rs`).
//! [`regional::RegionalCloudFormation`] routes each stack's calls to its
//! region; [`lookups`] reads per-region values templates take as parameters.
//!
//! [`config`] builds the SDK configuration from `--profile`, `--region` and
//! `--endpoint-url`; the CLI layer (`src/cli/{plan,apply,destroy}.rs`) calls
//! it, the integration tests reuse its HTTP client for their own clients.

pub mod capacity;
pub mod cloudformation;
pub mod config;
pub mod error;
pub mod lookups;
pub mod opensearch;
pub mod prerequisites;
pub mod regional;
pub mod scale_records;
pub mod tasks;

pub use capacity::Capacity;
pub use cloudformation::{CfnError, CloudFormation};
pub use error::{AwsError, ErrorClass};
pub use opensearch::{CapacityError, SearchCapacity};
pub use tasks::TaskRunner;
