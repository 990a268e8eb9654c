//! cfn-lint over every template of every environment, JSON and YAML: zero
//! errors and zero warnings. cfn-lint comes from the repo's `.venv`
//! (scripts/install-test-tools) or `$CFN_LINT`; without it this test
//! fails rather than passing unchecked.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{repo, run, stderr, TempDir, ENVIRONMENTS};

fn cfn_lint() -> PathBuf {
    if let Some(p) = std::env::var_os("CFN_LINT") {
        return PathBuf::from(p);
    }
    let venv = repo().join(".venv/bin/cfn-lint");
    assert!(
        venv.is_file(),
        "cfn-lint not found at {}; run scripts/install-test-tools (or set CFN_LINT)",
        venv.display()
    );
    venv
}

#[test]
fn cfn_lint_reports_nothing_on_any_template() {
    let lint = cfn_lint();
    let tmp = TempDir::new("lint");
    let mut files = Vec::new();
    for name in ENVIRONMENTS {
        for format in ["json", "yaml"] {
            let out = tmp.path().join(format!("{name}-{format}"));
            let o = run(&[
                "render",
                "--env",
                name,
                "--format",
                format,
                "--out",
                out.to_str().expect("utf8"),
            ]);
            assert!(o.status.success(), "{}", stderr(&o));
            for entry in std::fs::read_dir(&out).expect("out") {
                let p = entry.expect("entry").path();
                if p.file_name().is_some_and(|n| n != "manifest.json") {
                    files.push(p);
                }
            }
        }
    }
    assert_eq!(
        files.len(),
        8 * ENVIRONMENTS.len() * 2,
        "8 stacks x {} environments x 2 formats",
        ENVIRONMENTS.len()
    );
    let o = Command::new(&lint)
        .arg("--format")
        .arg("parseable")
        .args(&files)
        .output()
        .expect("run cfn-lint");
    let report = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && report.trim().is_empty(),
        "cfn-lint exit {:?}:\n{report}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
}
