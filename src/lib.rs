//! The `mangactl` package as a library: the CLI's commands (`cli`), so the
//! integration tests can drive commands in-process against scripted fakes
//! as well as run the binary. `src/main.rs` only calls [`cli::main`].
//!
//! - [`aws`]: the `CloudFormation` and `SearchCapacity` traits, their SDK
//!   implementations and the one AWS error type.
//! - `fakes` (feature `fakes`, on in tests): scripted fakes of those traits.
//! - [`outcome`]: exit codes, decided once.
//! - [`deploy`]: plan/apply/destroy logic over that trait (`src/cli/{plan,apply,destroy}.rs` wrap it).

pub mod aws;
pub mod cli;
pub mod deploy;
#[cfg(feature = "fakes")]
pub mod fakes;
pub mod outcome;
