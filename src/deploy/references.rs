//! Cross-stack references at deploy time: a consumer's parameters are
//! filled from its producers' current outputs (DescribeStacks), and a
//! producer's output that this run changes is found before anything runs,
//! so `plan` can say which consumers follow it and `apply` updates them
//! after it.
//!
//! Why parameters and not exports or `Fn::GetStackOutput`: an exported
//! value cannot change while imported ("after another stack imports an
//! output value, you can't delete the stack that is exporting the output
//! value or modify the exported output value", CloudFormation Template
//! Reference, `Fn::ImportValue`), and imports cannot cross regions. A
//! `Fn::GetStackOutput` weak reference can cross regions, but "if the
//! referenced stack or output is later deleted or modified, the consuming
//! stack is not automatically updated or notified" (same reference,
//! `Fn::GetStackOutput`), no API returns the value it resolved to, and
//! whether a change set of an unchanged consumer re-resolves it is not
//! documented. A parameter's value is shown by DescribeStacks and diffed by
//! change sets, so a stale consumer is visible to `plan` (and to drift), and
//! mangactl, which knows the graph, updates consumers itself.
//!
//! The manifest (`stacks/src/render.rs`, `StackManifest::references`) says
//! which parameter carries which stack's which output; the templates
//! declare those parameters without defaults. The producer may live in
//! another region (the edge stack in us-east-1 reads the service stack's
//! load balancer): the `CloudFormation` it is read through routes each
//! stack to its region (`src/aws/regional.rs`). Lookups
//! (`StackManifest::lookups`) join the same parameter values.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;
use stacks::render::Rendered;
use stacks::stacks::StackId;

use crate::aws::cloudformation::Stack;
use crate::aws::{CfnError, CloudFormation};

/// A consumer's references resolved against its producers' current outputs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// Parameter → value, for every reference whose output exists.
    pub values: BTreeMap<String, String>,
    /// References whose producer (or output) does not exist yet.
    pub missing: Vec<Unresolved>,
    /// Lookups the deploying command has not filled (`Rendered::lookups`).
    pub not_looked_up: Vec<String>,
}

/// A reference that cannot be filled now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unresolved {
    pub parameter: String,
    pub stack: StackId,
    pub output: String,
}

/// A consumer parameter that follows a producer output this run changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Follow {
    pub parameter: String,
    pub stack: StackId,
    pub output: String,
    /// Why the output changes: `changed` (its definition changes) or
    /// `may change` (a resource it reads is added or replaced).
    pub how: &'static str,
    /// The consumer's resources that use the parameter.
    pub used_by: Vec<String>,
}

/// Reads each producer of `id` once and fills `id`'s parameters.
pub async fn resolve(
    cfn: &dyn CloudFormation,
    rendered: &Rendered,
    id: StackId,
) -> Result<Resolved, CfnError> {
    let Some(m) = rendered.manifest.stacks.get(&id) else {
        return Ok(Resolved::default());
    };
    let mut producers: BTreeMap<StackId, Option<Stack>> = BTreeMap::new();
    let mut out = Resolved::default();
    let looked_up = rendered.lookups.get(&id);
    for param in m.lookups.keys() {
        match looked_up.and_then(|l| l.get(param)) {
            Some(v) => {
                out.values.insert(param.clone(), v.clone());
            }
            None => out.not_looked_up.push(param.clone()),
        }
    }
    for (param, r) in &m.references {
        if let std::collections::btree_map::Entry::Vacant(slot) = producers.entry(r.stack) {
            let stack = match stack_name(rendered, r.stack) {
                Some(n) => cfn
                    .describe_stack(n)
                    .await?
                    .filter(|s| !s.status.is_review()),
                None => None,
            };
            slot.insert(stack);
        }
        match producers
            .get(&r.stack)
            .and_then(Option::as_ref)
            .and_then(|s| s.output(&r.output))
        {
            Some(v) => {
                out.values.insert(param.clone(), v.to_owned());
            }
            None => out.missing.push(Unresolved {
                parameter: param.clone(),
                stack: r.stack,
                output: r.output.clone(),
            }),
        }
    }
    Ok(out)
}

fn stack_name(rendered: &Rendered, id: StackId) -> Option<&str> {
    rendered
        .stacks
        .iter()
        .find(|s| s.id == id)
        .map(|s| s.stack_name.as_str())
}

/// The outputs of `id` that this run changes, with how: compared with the
/// template the stack was last deployed with (GetTemplate). `touched` are
/// the logical IDs the stack's change set adds or replaces; an output that
/// reads one of them may change even if its definition does not.
pub async fn changed_outputs(
    cfn: &dyn CloudFormation,
    rendered: &Rendered,
    id: StackId,
    touched: &BTreeSet<String>,
) -> Result<BTreeMap<String, &'static str>, CfnError> {
    let Some(rs) = rendered.stacks.iter().find(|s| s.id == id) else {
        return Ok(BTreeMap::new());
    };
    let new = rs.template.to_value();
    let old: Option<Value> = cfn
        .template(&rs.stack_name)
        .await?
        .and_then(|t| serde_json::from_str(&t).ok());
    let mut out = BTreeMap::new();
    let Some(new_outputs) = new.get("Outputs").and_then(Value::as_object) else {
        return Ok(out);
    };
    for (key, o) in new_outputs {
        let before = old
            .as_ref()
            .and_then(|t| t.get("Outputs"))
            .and_then(|os| os.get(key))
            .and_then(|o| o.get("Value"));
        let after = o.get("Value");
        if before != after {
            out.insert(key.clone(), "changed");
        } else if after.is_some_and(|v| reads_any(v, touched)) {
            out.insert(key.clone(), "may change");
        }
    }
    Ok(out)
}

/// Whether `v` refers (`Ref`, `Fn::GetAtt`) to any of `ids`.
fn reads_any(v: &Value, ids: &BTreeSet<String>) -> bool {
    match v {
        Value::Object(o) => o.iter().any(|(k, x)| {
            let direct = match (k.as_str(), x) {
                ("Ref", Value::String(id)) => ids.contains(id),
                ("Fn::GetAtt", Value::Array(a)) => a
                    .first()
                    .and_then(Value::as_str)
                    .is_some_and(|id| ids.contains(id)),
                _ => false,
            };
            direct || reads_any(x, ids)
        }),
        Value::Array(a) => a.iter().any(|x| reads_any(x, ids)),
        _ => false,
    }
}

/// The resources of `id`'s rendered template that use `parameter`.
pub fn users_of(rendered: &Rendered, id: StackId, parameter: &str) -> Vec<String> {
    let Some(rs) = rendered.stacks.iter().find(|s| s.id == id) else {
        return Vec::new();
    };
    let v = rs.template.to_value();
    let wanted = BTreeSet::from([parameter.to_owned()]);
    v.get("Resources")
        .and_then(Value::as_object)
        .map(|rs| {
            rs.iter()
                .filter(|(_, r)| reads_any(r, &wanted) || sub_reads(r, parameter))
                .map(|(id, _)| id.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// `Fn::Sub` strings naming `${parameter}`.
fn sub_reads(v: &Value, parameter: &str) -> bool {
    let needle = format!("${{{parameter}}}");
    match v {
        Value::Object(o) => o.iter().any(|(k, x)| {
            (k == "Fn::Sub"
                && match x {
                    Value::String(s) => s.contains(&needle),
                    Value::Array(a) => a
                        .first()
                        .and_then(Value::as_str)
                        .is_some_and(|s| s.contains(&needle)),
                    _ => false,
                })
                || sub_reads(x, parameter)
        }),
        Value::Array(a) => a.iter().any(|x| sub_reads(x, parameter)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_are_found_through_ref_getatt_and_sub() {
        let ids = BTreeSet::from(["SubnetC".to_owned()]);
        assert!(reads_any(
            &json!({"Fn::Join": [",", [{"Ref": "SubnetA"}, {"Ref": "SubnetC"}]]}),
            &ids
        ));
        assert!(reads_any(&json!({"Fn::GetAtt": ["SubnetC", "Arn"]}), &ids));
        assert!(!reads_any(&json!({"Ref": "SubnetA"}), &ids));
        assert!(sub_reads(
            &json!({"Fn::Sub": "${NetworkVpcId}-x"}),
            "NetworkVpcId"
        ));
        assert!(!sub_reads(
            &json!({"Fn::Sub": ["${A}", {"A": {"Ref": "NetworkVpcId"}}]}),
            "B"
        ));
    }
}
