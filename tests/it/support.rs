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

/// Validates `document` (JSON text) against the JSON Schema at `schema`
/// (a path from the repository root) with the `jsonschema` package in the
/// repo's `.venv` (scripts/install-test-tools pins it), a complete
/// Draft 2020-12 validator; panics with every violation.
pub fn assert_matches_schema(document: &str, schema: &str) {
    use std::io::Write as _;
    let python = repo().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} not found; run scripts/install-test-tools",
        python.display()
    );
    let script = r#"
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(json.load(sys.stdin)), key=str)
for e in errors:
    print("/".join(str(p) for p in e.absolute_path) or "(root)", ":", e.message)
sys.exit(1 if errors else 0)
"#;
    let mut child = Command::new(python)
        .args(["-c", script])
        .arg(repo().join(schema))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(document.as_bytes())
        .expect("write document");
    let out = child.wait_with_output().expect("validator");
    assert!(
        out.status.success(),
        "{schema} rejects the document:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
