//! What `apply` reports when it is done: the closing summary (failed
//! resources with CloudFormation's reasons, skipped, refused and
//! interrupted stacks, the verdict), the useful outputs, and
//! `outputs.json`. `apply.rs` only orchestrates; the CLI prints and writes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use stacks::stacks::StackId;

use super::apply::{ApplyStatus, StackResult};
use super::wait::Failure;
use super::{human_duration, DeployError};

/// The closing summary of an apply that ran: failures per resource, the
/// stacks that did not run and why, and the verdict line.
pub fn summary_text(
    results: &BTreeMap<StackId, StackResult>,
    status: ApplyStatus,
    elapsed: Duration,
) -> String {
    let mut text = String::new();
    let failed: Vec<(StackId, &Vec<Failure>, &String)> = results
        .iter()
        .filter_map(|(id, r)| match r {
            StackResult::Failed { failures, status } => Some((*id, failures, status)),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(text, "\nFailed:");
        for (id, failures, status) in &failed {
            let _ = writeln!(text, "  {id} ({status}):");
            for f in *failures {
                let _ = writeln!(
                    text,
                    "    {} {} {}: {}",
                    f.logical_id, f.resource_type, f.status, f.reason
                );
            }
        }
    }
    for (id, r) in results {
        match r {
            StackResult::Skipped { because } => {
                let _ = writeln!(
                    text,
                    "Skipped {id}: it depends on {because}, which did not deploy."
                );
            }
            StackResult::Refused { reason } => {
                let _ = writeln!(text, "Refused {id}: {reason}");
            }
            StackResult::Interrupted { detail } => {
                let _ = writeln!(text, "Interrupted {id}: {detail}");
            }
            _ => {}
        }
    }
    let done = results
        .values()
        .filter(|r| matches!(r, StackResult::Done { .. }))
        .count();
    let unchanged = results
        .values()
        .filter(|r| matches!(r, StackResult::Unchanged))
        .count();
    let verdict = match status {
        ApplyStatus::Applied => "Apply complete",
        ApplyStatus::Interrupted => "Apply interrupted",
        _ => "Apply FAILED",
    };
    let _ = writeln!(
        text,
        "\n{verdict}: {done} stack{} deployed, {unchanged} unchanged, {} not deployed, in {}.",
        if done == 1 { "" } else { "s" },
        results.len() - done - unchanged,
        human_duration(elapsed)
    );
    text
}

/// Outputs worth printing after apply: (stack, output key, label).
pub const USEFUL_OUTPUTS: &[(StackId, &str, &str)] = &[
    (StackId::Edge, "ChatUrl", "Chat WebSocket URL"),
    (StackId::Edge, "DistributionDomainName", "CloudFront domain"),
    (StackId::Service, "AlbDnsName", "Load balancer DNS"),
    (StackId::Service, "ClusterName", "ECS cluster"),
    (StackId::Memory, "TableName", "Conversation table"),
];

/// The useful outputs as text lines.
pub fn outputs_text(outputs: &BTreeMap<StackId, BTreeMap<String, String>>) -> String {
    let mut text = String::new();
    for (id, key, label) in USEFUL_OUTPUTS {
        if let Some(v) = outputs.get(id).and_then(|o| o.get(*key)) {
            let _ = writeln!(text, "  {label:<20} {v}");
        }
    }
    if text.is_empty() {
        text
    } else {
        format!("\nOutputs:\n{text}")
    }
}

/// Writes `outputs.json` (every output of every stack) into `dir`.
pub fn write_outputs(
    dir: &Path,
    environment: &str,
    outputs: &BTreeMap<StackId, BTreeMap<String, String>>,
) -> Result<std::path::PathBuf, DeployError> {
    #[derive(Serialize)]
    struct File<'a> {
        environment: &'a str,
        stacks: &'a BTreeMap<StackId, BTreeMap<String, String>>,
    }
    let path = dir.join("outputs.json");
    let err = |source| DeployError::Write {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let body = serde_json::to_string_pretty(&File {
        environment,
        stacks: outputs,
    })
    .map_err(|e| err(std::io::Error::other(e)))?
        + "\n";
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, body).map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok(path)
}
