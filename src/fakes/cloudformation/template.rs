//! Reading templates the way the fake needs them: resources, outputs and
//! exports, imports, and the resource diff CloudFormation would report for a
//! template change (replacements are scripted by tests, not computed).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::aws::cloudformation::{Action, ChangeDetail, Replacement, ResourceChange};

pub(super) fn resources(template: Option<&Value>) -> BTreeMap<String, Value> {
    template
        .and_then(|t| t.get("Resources"))
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

pub(super) fn resource_type(v: &Value) -> String {
    v.get("Type")
        .and_then(Value::as_str)
        .unwrap_or("AWS::CloudFormation::CustomResource")
        .to_owned()
}

pub(super) fn changed_properties(old: &Value, new: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let o = old
        .get("Properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let n = new
        .get("Properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let keys: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
    keys.into_iter()
        .filter(|k| o.get(*k) != n.get(*k))
        .cloned()
        .collect()
}

/// The diff CloudFormation would report for a template change, without
/// replacements (tests script those explicitly).
pub(super) fn diff(old: Option<&Value>, new: Option<&Value>) -> Vec<ResourceChange> {
    let before = resources(old);
    let after = resources(new);
    let mut out = Vec::new();
    for (id, v) in &after {
        match before.get(id) {
            None => out.push(ResourceChange {
                action: Action::Add,
                logical_id: id.clone(),
                physical_id: None,
                resource_type: resource_type(v),
                replacement: None,
                scope: vec![],
                details: vec![],
            }),
            Some(old) if old != v => {
                let props = changed_properties(old, v);
                out.push(ResourceChange {
                    action: Action::Modify,
                    logical_id: id.clone(),
                    physical_id: Some(format!("{id}-physical")),
                    resource_type: resource_type(v),
                    replacement: Some(Replacement::False),
                    scope: vec!["Properties".into()],
                    details: props
                        .into_iter()
                        .map(|p| ChangeDetail {
                            attribute: Some("Properties".into()),
                            name: Some(p),
                            requires_recreation: Some("Never".into()),
                            evaluation: Some("Static".into()),
                            change_source: Some("DirectModification".into()),
                            causing_entity: None,
                            ..ChangeDetail::default()
                        })
                        .collect(),
                });
            }
            Some(_) => {}
        }
    }
    for (id, v) in &before {
        if !after.contains_key(id) {
            out.push(ResourceChange {
                action: Action::Remove,
                logical_id: id.clone(),
                physical_id: Some(format!("{id}-physical")),
                resource_type: resource_type(v),
                replacement: None,
                scope: vec![],
                details: vec![],
            });
        }
    }
    out
}

/// (output key, export name) of a template.
pub(super) fn outputs_of(template: Option<&Value>) -> Vec<(String, Option<String>)> {
    template
        .and_then(|t| t.get("Outputs"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.pointer("/Export/Name")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn targets_of(template: Option<&Value>, verb: &str) -> Vec<(String, String, String)> {
    resources(template)
        .into_iter()
        .map(|(id, v)| (id, resource_type(&v), verb.to_owned()))
        .collect()
}

pub(super) fn collect_imports(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "Fn::ImportValue" {
                    if let Some(s) = x.as_str() {
                        out.push(s.to_owned());
                        continue;
                    }
                }
                collect_imports(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_imports(x, out)),
        _ => {}
    }
}

/// `template` with every `Ref` to one of its parameters replaced by the
/// value in `params` (a `CommaDelimitedList` becomes a list), so two
/// deployments compare by what CloudFormation would resolve.
pub(super) fn bind(template: &Value, params: &BTreeMap<String, String>) -> Value {
    bind_with(template, params, &BTreeMap::new())
}

/// [`bind`], and every `Fn::ImportValue` of a name in `exports` replaced by
/// the exported value (with `Fn::Split` of a literal evaluated), so a
/// reference moved from an import to a parameter of the same value
/// compares equal.
pub(super) fn bind_with(
    template: &Value,
    params: &BTreeMap<String, String>,
    exports: &BTreeMap<String, String>,
) -> Value {
    let declared: BTreeMap<String, bool> = template
        .get("Parameters")
        .and_then(Value::as_object)
        .map(|ps| {
            ps.iter()
                .map(|(k, p)| (k.clone(), p["Type"] == "CommaDelimitedList"))
                .collect()
        })
        .unwrap_or_default();
    fn walk(
        v: &Value,
        declared: &BTreeMap<String, bool>,
        params: &BTreeMap<String, String>,
        exports: &BTreeMap<String, String>,
    ) -> Value {
        let again = |x: &Value| walk(x, declared, params, exports);
        match v {
            Value::Object(o) if o.len() == 1 => {
                let (k, x) = o
                    .iter()
                    .next()
                    .map(|(k, x)| (k.as_str(), x))
                    .unwrap_or(("", v));
                match (k, x) {
                    ("Ref", Value::String(id)) => match (declared.get(id), params.get(id)) {
                        (Some(true), Some(value)) => Value::Array(
                            value
                                .split(',')
                                .map(|s| Value::String(s.to_owned()))
                                .collect(),
                        ),
                        (Some(false), Some(value)) => Value::String(value.clone()),
                        _ => v.clone(),
                    },
                    ("Fn::ImportValue", Value::String(name)) if exports.contains_key(name) => {
                        Value::String(exports[name].clone())
                    }
                    ("Fn::Split", Value::Array(args)) => {
                        let args: Vec<Value> = args.iter().map(again).collect();
                        match args.as_slice() {
                            [Value::String(sep), Value::String(text)] => Value::Array(
                                text.split(sep.as_str())
                                    .map(|s| Value::String(s.to_owned()))
                                    .collect(),
                            ),
                            _ => serde_json::json!({ "Fn::Split": args }),
                        }
                    }
                    _ => Value::Object(o.iter().map(|(k, x)| (k.clone(), again(x))).collect()),
                }
            }
            Value::Object(o) => {
                Value::Object(o.iter().map(|(k, x)| (k.clone(), again(x))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(again).collect()),
            other => other.clone(),
        }
    }
    walk(template, &declared, params, exports)
}

/// Parameters the template declares without a default.
pub(super) fn required_parameters(template: &Value) -> Vec<String> {
    template
        .get("Parameters")
        .and_then(Value::as_object)
        .map(|ps| {
            ps.iter()
                .filter(|(_, p)| p.get("Default").is_none())
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// The value the fake reports for output `key` of `stack`: derived from the
/// output's definition with the parameters bound, so it changes exactly
/// when what CloudFormation would resolve changes (FNV-1a, stable).
pub(super) fn output_value(stack: &str, key: &str, bound: Option<&Value>) -> String {
    let def = bound
        .and_then(|t| t.get("Outputs"))
        .and_then(|o| o.get(key))
        .and_then(|o| o.get("Value"))
        .map(Value::to_string)
        .unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in def.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("fake-{stack}-{key}-{:08x}", h & 0xffff_ffff)
}

/// Export name → the output's bound definition, of a bound template.
pub(super) fn exports_of(bound: Option<&Value>) -> BTreeMap<String, Value> {
    bound
        .and_then(|t| t.get("Outputs"))
        .and_then(Value::as_object)
        .map(|os| {
            os.values()
                .filter_map(|o| {
                    let name = o.pointer("/Export/Name")?.as_str()?.to_owned();
                    Some((name, o.get("Value").cloned().unwrap_or(Value::Null)))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Parameter → default, of the parameters that have one.
pub(super) fn defaults_of(template: Option<&Value>) -> BTreeMap<String, String> {
    template
        .and_then(|t| t.get("Parameters"))
        .and_then(Value::as_object)
        .map(|ps| {
            ps.iter()
                .filter_map(|(k, p)| Some((k.clone(), p.get("Default")?.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}
