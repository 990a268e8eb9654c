//! Shared helpers: running the built binary and locating repo files, and,
//! for the tests that run the binary against moto (`index.rs`, `scale.rs`),
//! [`AppliedDev`]: moto (`moto.rs`) with dev applied to it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::moto::Moto;

pub const ENVIRONMENTS: [&str; 4] = ["dev", "staging", "prod", "tokyo"];

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The repository's environments directory, as an argument.
pub fn environments() -> String {
    repo()
        .join("environments")
        .to_str()
        .expect("utf8")
        .to_owned()
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

/// Runs the binary against `moto` with no standard input, and shows what it
/// printed (in the test's output, for a failure).
pub fn run_on(moto: &Moto, args: &[&str]) -> Output {
    let o = moto
        .mangactl()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run");
    eprintln!(
        "$ mangactl {}\n{}{}",
        args.join(" "),
        stdout(&o),
        stderr(&o)
    );
    o
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// The output `key` of the stack `stack` in moto.
pub async fn stack_output(moto: &Moto, stack: &str, key: &str) -> String {
    crate::moto_client!(aws_sdk_cloudformation, moto)
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .expect("describe")
        .stacks()[0]
        .outputs()
        .iter()
        .find(|o| o.output_key() == Some(key))
        .and_then(|o| o.output_value())
        .unwrap_or_else(|| panic!("{stack} has no output {key}"))
        .to_owned()
}

/// moto started (with `moto_env` for it), and the repository's dev
/// environment applied to it through the binary (`apply --yes`, exit 0).
pub struct AppliedDev {
    pub moto: Moto,
    environments: String,
    out: String,
    _tmp: TempDir,
}

impl AppliedDev {
    /// `tag` names the temporary directory the apply writes into.
    pub fn start(tag: &str, moto_env: &[(&str, &str)]) -> Self {
        let moto = Moto::start_with(moto_env);
        let tmp = TempDir::new(tag);
        let dev = AppliedDev {
            moto,
            environments: environments(),
            out: tmp.path().join("out").to_str().expect("utf8").to_owned(),
            _tmp: tmp,
        };
        assert_eq!(run_on(&dev.moto, &dev.apply()).status.code(), Some(0));
        dev
    }

    /// The arguments that name the environment: `--env dev --environments DIR`.
    pub fn env(&self) -> [&str; 4] {
        ["--env", "dev", "--environments", &self.environments]
    }

    /// The apply it ran, to run again.
    pub fn apply(&self) -> Vec<&str> {
        [&["apply"], &self.env()[..], &["--yes", "--out", &self.out]].concat()
    }
}
