//! Shared helpers: running the built binary and locating repo files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const ENVIRONMENTS: [&str; 4] = ["dev", "staging", "prod", "tokyo"];

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `mangactl` binary, run from the repository root with a clean
/// environment for the variables it reads.
pub fn mangactl() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mangactl"));
    cmd.current_dir(repo())
        .env_remove("MANGACTL_ENVIRONMENTS")
        .env_remove("RUST_LOG");
    cmd
}

pub fn run(args: &[&str]) -> Output {
    mangactl().args(args).output().expect("run mangactl")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "mangactl-it-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
