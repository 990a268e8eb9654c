//! The one integration-test binary for the `mangactl` package (one binary
//! links once; many would each link the whole dependency tree).
//!
//! - `snapshots`: every stack of every environment, byte for byte.
//! - `cli`: the `mangactl` binary as a user runs it: output, files, errors,
//!   exit codes.
//! - `lint`: cfn-lint over every rendered template.
//! - `deploy_fake`: plan/apply/destroy in-process against the scripted fake.
//! - `deploy_capacity`: apply setting the OpenSearch Serverless capacity
//!   limits, against the fakes (moto has no OpenSearch Serverless).
//! - `deploy_moto`: plan/apply/destroy as the binary against moto (`moto`).

mod cli;
mod deploy_capacity;
mod deploy_fake;
mod deploy_moto;
mod lint;
mod moto;
mod snapshots;
mod support;
