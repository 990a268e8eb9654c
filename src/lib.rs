//! The `mangactl` package as a library: the CLI's commands (`cli`), so the
//! integration tests can drive commands in-process against scripted fakes
//! as well as run the binary. `src/main.rs` only calls [`cli::main`].

pub mod cli;
