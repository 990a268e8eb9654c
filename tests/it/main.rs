//! The one integration-test binary for the `mangactl` package (one binary
//! links once; many would each link the whole dependency tree).
//!
//! - `snapshots`: every stack of every environment, byte for byte.
//! - `cli`: the `mangactl` binary as a user runs it: output, files, errors,
//!   exit codes.
//! - `lint`: cfn-lint over every rendered template.

mod cli;
mod lint;
mod snapshots;
mod support;
