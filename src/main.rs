//! `mangactl`: renders, sizes and deploys MangaAssist's CloudFormation
//! stacks. The commands live in `src/cli/`, one file each; the templates,
//! environment model and deploy graph live in the `stacks/` crate.

use std::process::ExitCode;

fn main() -> ExitCode {
    mangactl::cli::main()
}
