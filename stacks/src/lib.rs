//! MangaAssist's environment model, typed CloudFormation and stacks.
//!
//! - [`env`]: environment files, parsed in two phases into validated types.
//! - [`model`]: the typed template model (values, handles, resources).
//! - [`stacks`]: one module per stack, each a function from the validated
//!   environment to a [`model::Template`].
//! - [`graph`]: the deploy order, derived from exports and imports.
//! - [`render`]: all stacks of an environment rendered to bytes, plus the
//!   manifest the CLI writes beside them.
//!
//! The CLI in the root crate (`src/cli/`) is a thin layer over [`render`].

pub mod env;
pub mod graph;
pub mod model;
pub mod render;
pub mod stacks;
