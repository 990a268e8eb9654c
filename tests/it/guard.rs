//! cfn-guard with the AWS Control Tower proactive controls over every
//! template of every environment, through `scripts/guard-check`: no finding
//! that `baseline-exceptions.yaml` does not justify, no rule that fails to
//! parse or that cfn-guard cannot evaluate, no stale exception. cfn-guard
//! and the rules are pinned and installed by `scripts/install-guard` (run by
//! scripts/install-test-tools); without them this test fails rather than
//! passing unchecked.

use std::process::Command;

use crate::support::repo;

#[test]
fn cfn_guard_control_tower_findings_are_all_justified() {
    let script = repo().join("scripts/guard-check");
    let o = Command::new(&script)
        .arg(env!("CARGO_BIN_EXE_mangactl"))
        .current_dir(repo())
        .env_remove("MANGACTL_ENVIRONMENTS")
        .env_remove("RUST_LOG")
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    match o.status.code() {
        Some(0) => {}
        Some(2) => panic!(
            "scripts/guard-check could not run: cfn-guard or the Control Tower rules \
             missing or not the pinned versions (run scripts/install-test-tools), \
             or rendering failed:\n{report}"
        ),
        code => panic!(
            "scripts/guard-check exit {code:?}: findings not justified in \
             baseline-exceptions.yaml, rules that did not parse or evaluate, or stale \
             exceptions:\n{report}"
        ),
    }
}
