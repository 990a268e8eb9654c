//! The one integration-test binary for the `mangactl` package (one binary
//! links once; many would each link the whole dependency tree).
//!
//! - `snapshots`: every stack of every environment, byte for byte.
//! - `cli`: the `mangactl` binary as a user runs it: output, files, errors,
//!   exit codes.
//! - `lint`: cfn-lint over every rendered template.
//! - `guard`: cfn-guard with the AWS Control Tower proactive controls over
//!   every rendered template; findings only as `baseline-exceptions.yaml`
//!   justifies them (`scripts/guard-check`).
//! - `deploy_fake`: plan/apply/destroy in-process against the scripted fake.
//! - `deploy_capacity`: apply setting the OpenSearch Serverless capacity
//!   limits, against the fakes (moto has no OpenSearch Serverless).
//! - `deploy_moto`: plan/apply/destroy as the binary against moto (`moto`).
//! - `preflight`: `mangactl preflight` and the check `plan`/`apply` run
//!   first, against moto (STS, ECR, S3, ACM) and a double for Bedrock.
//! - `drift`: `mangactl drift`, its layers, exit codes and outputs.
//! - `holds`: scale records held in the rendering, and the live drift
//!   `plan` says an apply overwrites, keeps or reverts.
//! - `scale`: `mangactl scale` and `status` against moto, and through the
//!   traits for ElastiCache and OpenSearch Serverless.
//! - `index`: `mangactl index` (the one-off ECS task that fills the
//!   OpenSearch index) against the task fake and, through the binary, moto.
//! - `references`: cross-stack references (parameters), the export rules,
//!   the `az_count` scenario and the migration from exports, against the fake.

mod cli;
mod deploy_capacity;
mod deploy_fake;
mod deploy_moto;
mod drift;
mod guard;
mod holds;
mod index;
mod lint;
mod moto;
mod preflight;
mod references;
mod scale;
mod snapshots;
mod support;
