//! Scripted fakes of the AWS APIs the CLI calls, for tests: states and
//! answers an emulator cannot produce (per-resource events, failures with
//! rollback, stuck stacks, someone else's update, OpenSearch Serverless,
//! which moto lacks). Compiled only with the `fakes` feature, which the
//! root package's tests turn on (`[dev-dependencies]` in Cargo.toml), so
//! the shipped binary never contains them.
//!
//! - [`cloudformation`]: [`cloudformation::FakeCloudFormation`] behind
//!   [`crate::aws::CloudFormation`];
//! - [`capacity`]: [`capacity::FakeCapacity`] behind
//!   [`crate::aws::Capacity`] (live capacity: ECS, Application Auto
//!   Scaling, ElastiCache, DAX, SageMaker);
//! - [`opensearch`]: [`opensearch::FakeSearchCapacity`] behind
//!   [`crate::aws::SearchCapacity`];
//! - [`tasks`]: [`tasks::FakeTasks`] behind [`crate::aws::TaskRunner`]
//!   (one-off ECS tasks that fail, stop with exit codes, write logs).
//!
//! Each answers with the response shapes of the AWS API reference and
//! builds its errors through [`crate::aws::error::AwsError`], as the SDK
//! implementations do.

pub mod capacity;
pub mod cloudformation;
pub mod opensearch;
pub mod tasks;
