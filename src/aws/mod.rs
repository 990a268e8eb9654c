//! AWS access for the deploy commands: the [`CloudFormation`] trait the
//! deploy logic (`src/deploy/`) talks to, its AWS SDK implementation
//! ([`cloudformation::SdkCloudFormation`]) and a scripted fake
//! ([`fake::FakeCloudFormation`]) for states an emulator cannot produce.
//! Likewise [`SearchCapacity`] (`opensearch.rs`): the OpenSearch Serverless
//! account capacity limits `apply` sets, with
//! [`fake_opensearch::FakeSearchCapacity`].
//!
//! [`config`] builds the SDK configuration from `--profile`, `--region` and
//! `--endpoint-url`; the CLI layer (`src/cli/{plan,apply,destroy}.rs`) calls
//! it, the integration tests reuse its HTTP client for their own clients.

pub mod cloudformation;
pub mod config;
pub mod error;
pub mod opensearch;

pub use cloudformation::{CfnError, CloudFormation};
pub use error::{AwsError, ErrorClass};
pub use opensearch::{CapacityError, SearchCapacity};
