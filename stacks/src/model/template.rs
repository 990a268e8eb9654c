//! The template builder: parameters, conditions, resources and outputs,
//! rendered deterministically to JSON or YAML.
//!
//! Resources go in through [`Template::add`], which returns a typed
//! [`Handle`]; other resources refer to it only through that handle. Stacks
//! talk to each other only through [`OutputKey`]s: the producer
//! [`publishes`](Template::publish) a plain output (no `Export`, so it can
//! change), the consumer [`consumes`](Template::consume) it as a stack
//! parameter that `mangactl` fills from the producer's outputs at deploy
//! time (`src/deploy/references.rs`). The deploy graph in [`crate::graph`]
//! is read back from what is published and consumed here.

use std::collections::{BTreeMap, BTreeSet};
use std::marker::PhantomData;

use serde::Serialize;
use serde_json::{Map, Value};

use super::expr::Expr;
use super::ModelError;

/// A CloudFormation resource type with typed properties.
pub trait ResourceType: Serialize {
    /// The `Type` string, e.g. `AWS::EC2::VPC`.
    const TYPE: &'static str;
}

/// A typed reference to a resource added to a template.
///
/// Typed attribute accessors (`Handle<LoadBalancer>::dns_name()` and the
/// like) live beside each resource type in [`super::resources`].
#[derive(Debug)]
pub struct Handle<T> {
    id: String,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        Handle {
            id: self.id.clone(),
            _type: PhantomData,
        }
    }
}

impl<T> Handle<T> {
    pub fn logical_id(&self) -> &str {
        &self.id
    }

    /// `{"Ref": id}`; what it yields depends on the type (ID, name or ARN).
    pub fn reference(&self) -> Expr {
        Expr::Ref(self.id.clone())
    }

    pub(crate) fn attr(&self, name: &str) -> Expr {
        Expr::GetAtt(self.id.clone(), name.to_owned())
    }
}

/// A template parameter, referenced through its handle.
#[derive(Debug, Clone)]
pub struct ParamHandle(String);

impl ParamHandle {
    pub fn reference(&self) -> Expr {
        Expr::Ref(self.0.clone())
    }
}

/// A named condition, usable in `Fn::If` and on resources.
#[derive(Debug, Clone)]
pub struct ConditionHandle(String);

impl ConditionHandle {
    /// `Fn::If` on this condition.
    pub fn pick(&self, then: Expr, otherwise: Expr) -> Expr {
        Expr::If(self.0.clone(), Box::new(then), Box::new(otherwise))
    }
}

/// A value one stack publishes for others: the producing stack and the
/// logical ID of its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct OutputKey {
    /// Short name of the producing stack (e.g. `network`).
    pub producer: &'static str,
    /// Output logical ID in the producing stack (alphanumeric).
    pub name: &'static str,
}

impl OutputKey {
    pub const fn new(producer: &'static str, name: &'static str) -> Self {
        OutputKey { producer, name }
    }

    /// The consumer's parameter carrying this value: the producer's name
    /// capitalised, then the output's (`network` + `VpcId` → `NetworkVpcId`).
    pub fn parameter(&self) -> String {
        let mut chars = self.producer.chars();
        let head: String = chars
            .next()
            .map(|c| c.to_ascii_uppercase())
            .into_iter()
            .collect();
        format!("{head}{}{}", chars.as_str(), self.name)
    }

    /// The export name the first releases used (`mangaassist-<env>-<stack>-<Name>`),
    /// which deployments made before references became parameters still
    /// carry; only the migration reads it.
    pub fn legacy_export_name(&self, prefix: &str) -> String {
        format!("{prefix}-{}-{}", self.producer, self.name)
    }
}

/// A value a template needs that only a read of its region can give,
/// filled by `mangactl` at deploy time as a parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Lookup {
    /// The ID of an AWS-managed prefix list, by name (EC2
    /// DescribeManagedPrefixLists); the IDs differ per region.
    ManagedPrefixList(String),
}

/// `DeletionPolicy` / `UpdateReplacePolicy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Policy {
    Delete,
    Retain,
    Snapshot,
}

/// Resource attributes beyond `Type` and `Properties`.
#[derive(Debug, Clone, Default)]
pub struct ResourceOpts {
    depends_on: BTreeSet<String>,
    deletion: Option<Policy>,
}

impl ResourceOpts {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn depends_on<T>(mut self, h: &Handle<T>) -> Self {
        self.depends_on.insert(h.id.clone());
        self
    }

    /// Sets both `DeletionPolicy` and `UpdateReplacePolicy`, which cfn-lint
    /// (rightly) wants to agree.
    pub fn deletion(mut self, p: Policy) -> Self {
        self.deletion = Some(p);
        self
    }
}

#[derive(Debug, Clone)]
struct Resource {
    kind: &'static str,
    properties: Value,
    opts: ResourceOpts,
}

/// A parameter declaration.
#[derive(Debug, Clone)]
pub struct Parameter {
    pub kind: &'static str,
    pub description: String,
    pub default: Option<String>,
    pub allowed_pattern: Option<String>,
}

#[derive(Debug, Clone)]
struct Output {
    value: Expr,
    description: String,
}

/// One CloudFormation template under construction.
#[derive(Debug, Clone)]
pub struct Template {
    description: String,
    prefix: String,
    metadata: BTreeMap<String, Value>,
    parameters: BTreeMap<String, Parameter>,
    conditions: BTreeMap<String, Expr>,
    resources: BTreeMap<String, Resource>,
    outputs: BTreeMap<String, Output>,
    /// Outputs other stacks consume (each is also in `outputs`).
    published: BTreeSet<OutputKey>,
    /// Values of other stacks this one consumes, by parameter name.
    consumed: BTreeMap<String, (OutputKey, bool)>,
    /// Parameters filled from a read of the region at deploy time.
    lookups: BTreeMap<String, Lookup>,
    errors: Vec<ModelError>,
}

impl Template {
    /// `prefix` is the environment's name prefix, e.g. `mangaassist-prod`.
    pub fn new(description: impl Into<String>, prefix: impl Into<String>) -> Self {
        Template {
            description: description.into(),
            prefix: prefix.into(),
            metadata: BTreeMap::new(),
            parameters: BTreeMap::new(),
            conditions: BTreeMap::new(),
            resources: BTreeMap::new(),
            outputs: BTreeMap::new(),
            published: BTreeSet::new(),
            consumed: BTreeMap::new(),
            lookups: BTreeMap::new(),
            errors: Vec::new(),
        }
    }

    fn claim(&mut self, id: &str) {
        let taken = self.resources.contains_key(id) || self.parameters.contains_key(id);
        if taken {
            self.errors
                .push(ModelError::DuplicateId { id: id.to_owned() });
        }
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            self.errors
                .push(ModelError::BadLogicalId { id: id.to_owned() });
        }
    }

    pub fn add<T: ResourceType>(&mut self, id: &str, props: T) -> Handle<T> {
        self.add_with(id, props, ResourceOpts::default())
    }

    pub fn add_with<T: ResourceType>(
        &mut self,
        id: &str,
        props: T,
        opts: ResourceOpts,
    ) -> Handle<T> {
        self.claim(id);
        let properties = match serde_json::to_value(&props) {
            Ok(v) => v,
            Err(e) => {
                self.errors.push(ModelError::Serialize {
                    id: id.to_owned(),
                    message: e.to_string(),
                });
                Value::Null
            }
        };
        self.resources.insert(
            id.to_owned(),
            Resource {
                kind: T::TYPE,
                properties,
                opts,
            },
        );
        Handle {
            id: id.to_owned(),
            _type: PhantomData,
        }
    }

    pub fn parameter(&mut self, id: &str, p: Parameter) -> ParamHandle {
        self.claim(id);
        self.parameters.insert(id.to_owned(), p);
        ParamHandle(id.to_owned())
    }

    pub fn condition(&mut self, id: &str, expr: Expr) -> ConditionHandle {
        self.conditions.insert(id.to_owned(), expr);
        ConditionHandle(id.to_owned())
    }

    pub fn metadata(&mut self, key: &str, value: Value) {
        self.metadata.insert(key.to_owned(), value);
    }

    /// Replaces the value of an existing property of resource `logical_id`
    /// (a scale hold: `src/deploy/holds.rs` in the CLI); returns the value
    /// it had, or `None` (and changes nothing) when there is no such
    /// property.
    pub fn replace_property(
        &mut self,
        logical_id: &str,
        name: &str,
        value: Value,
    ) -> Option<Value> {
        let slot = self
            .resources
            .get_mut(logical_id)?
            .properties
            .as_object_mut()?
            .get_mut(name)?;
        Some(std::mem::replace(slot, value))
    }

    pub fn output(&mut self, id: &str, value: Expr, description: &str) {
        self.outputs.insert(
            id.to_owned(),
            Output {
                value,
                description: description.to_owned(),
            },
        );
    }

    /// Publishes `value` as the output `key.name` for other stacks to
    /// consume. A plain output, never an `Export`: an exported value cannot
    /// change while another stack imports it ("after another stack imports
    /// an output value, you can't delete the stack that is exporting the
    /// output value or modify the exported output value", CloudFormation
    /// Template Reference, `Fn::ImportValue`), so subnets, security groups
    /// or names could never change once consumed.
    pub fn publish(&mut self, key: OutputKey, value: Expr, description: &str) {
        self.published.insert(key);
        self.output(key.name, value, description);
    }

    /// Another stack's output as a parameter of this one (type `String`),
    /// recorded for the graph; `mangactl` passes the producer's current
    /// value when it creates this stack's change set.
    pub fn consume(&mut self, key: OutputKey) -> Expr {
        self.consume_as(key, false)
    }

    /// A comma-joined list output (subnet IDs) as a `CommaDelimitedList`
    /// parameter, whose `Ref` is the list itself.
    pub fn consume_list(&mut self, key: OutputKey) -> Expr {
        self.consume_as(key, true)
    }

    fn consume_as(&mut self, key: OutputKey, list: bool) -> Expr {
        let id = key.parameter();
        if !self.consumed.contains_key(&id) {
            self.claim(&id);
            self.parameters.insert(
                id.clone(),
                Parameter {
                    kind: if list { "CommaDelimitedList" } else { "String" },
                    description: format!(
                        "Output {} of the {} stack (set by mangactl at deploy time)",
                        key.name, key.producer
                    ),
                    default: None,
                    allowed_pattern: None,
                },
            );
            self.consumed.insert(id.clone(), (key, list));
        }
        Expr::Ref(id)
    }

    /// A parameter `id` (type `String`, no default) that `mangactl` fills
    /// with `what` read from the stack's region at deploy time.
    pub fn lookup(&mut self, id: &str, what: Lookup, description: &str) -> Expr {
        self.parameter(
            id,
            Parameter {
                kind: "String",
                description: description.to_owned(),
                default: None,
                allowed_pattern: None,
            },
        );
        self.lookups.insert(id.to_owned(), what);
        Expr::Ref(id.to_owned())
    }

    /// The lookups this template's parameters need.
    pub fn lookups(&self) -> &BTreeMap<String, Lookup> {
        &self.lookups
    }

    /// What this template consumes: parameter name → (output key, is a list).
    pub fn consumed(&self) -> &BTreeMap<String, (OutputKey, bool)> {
        &self.consumed
    }

    /// What this template publishes for others.
    pub fn published(&self) -> &BTreeSet<OutputKey> {
        &self.published
    }

    /// The environment's name prefix (`mangaassist-<env>`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Logical IDs and types of every resource, sorted by ID.
    pub fn resource_types(&self) -> impl Iterator<Item = (&str, &'static str)> {
        self.resources.iter().map(|(id, r)| (id.as_str(), r.kind))
    }

    /// Parameter names and defaults.
    pub fn parameter_defaults(&self) -> BTreeMap<String, Option<String>> {
        self.parameters
            .iter()
            .map(|(k, p)| (k.clone(), p.default.clone()))
            .collect()
    }

    /// Resources kept on stack deletion (Retain or Snapshot).
    pub fn retained(&self) -> BTreeMap<String, (&'static str, Policy)> {
        self.resources
            .iter()
            .filter_map(|(id, r)| match r.opts.deletion {
                Some(p @ (Policy::Retain | Policy::Snapshot)) => Some((id.clone(), (r.kind, p))),
                _ => None,
            })
            .collect()
    }

    /// The template as a JSON value with every object's keys sorted.
    pub fn to_value(&self) -> Value {
        let mut root = Map::new();
        root.insert("AWSTemplateFormatVersion".into(), "2010-09-09".into());
        root.insert("Description".into(), self.description.clone().into());
        if !self.metadata.is_empty() {
            root.insert("Metadata".into(), to_json(&self.metadata));
        }
        if !self.parameters.is_empty() {
            let params = self.parameters.iter().map(|(id, p)| {
                let mut m = Map::new();
                m.insert("Type".into(), p.kind.into());
                m.insert("Description".into(), p.description.clone().into());
                if let Some(d) = &p.default {
                    m.insert("Default".into(), d.clone().into());
                }
                if let Some(pat) = &p.allowed_pattern {
                    m.insert("AllowedPattern".into(), pat.clone().into());
                }
                (id.clone(), Value::Object(m))
            });
            root.insert("Parameters".into(), Value::Object(params.collect()));
        }
        if !self.conditions.is_empty() {
            root.insert("Conditions".into(), to_json(&self.conditions));
        }
        let resources = self.resources.iter().map(|(id, r)| {
            let mut m = Map::new();
            m.insert("Type".into(), r.kind.into());
            if !r.properties.is_null() && r.properties.as_object().is_none_or(|o| !o.is_empty()) {
                m.insert("Properties".into(), r.properties.clone());
            }
            if !r.opts.depends_on.is_empty() {
                m.insert("DependsOn".into(), to_json(&r.opts.depends_on));
            }
            if let Some(p) = r.opts.deletion {
                m.insert("DeletionPolicy".into(), to_json(&p));
                m.insert("UpdateReplacePolicy".into(), to_json(&p));
            }
            (id.clone(), Value::Object(m))
        });
        root.insert("Resources".into(), Value::Object(resources.collect()));
        if !self.outputs.is_empty() {
            let outputs = self.outputs.iter().map(|(id, o)| {
                let mut m = Map::new();
                m.insert("Value".into(), to_json(&o.value));
                m.insert("Description".into(), o.description.clone().into());
                (id.clone(), Value::Object(m))
            });
            root.insert("Outputs".into(), Value::Object(outputs.collect()));
        }
        sort_keys(Value::Object(root))
    }

    /// Checks what typed handles cannot: duplicate or malformed IDs, and
    /// that every `Ref`, `GetAtt`, `Fn::Sub` variable, `Fn::If` condition and
    /// `DependsOn` names something declared in this template.
    pub fn check(&self) -> Result<(), Vec<ModelError>> {
        let mut errors = self.errors.clone();
        let known = |id: &str| {
            id.starts_with("AWS::")
                || self.resources.contains_key(id)
                || self.parameters.contains_key(id)
        };
        let visit = |owner: &str, v: &Value, errors: &mut Vec<ModelError>| {
            collect_refs(v, &mut |r| {
                let ok = match &r {
                    Reference::Ref(id) => known(id),
                    Reference::GetAtt(id) => self.resources.contains_key(*id),
                    Reference::Condition(id) => self.conditions.contains_key(*id),
                };
                if !ok {
                    errors.push(ModelError::DanglingReference {
                        from: owner.to_owned(),
                        to: r.target().to_owned(),
                    });
                }
            });
        };
        for (id, r) in &self.resources {
            visit(id, &r.properties, &mut errors);
            for dep in &r.opts.depends_on {
                if !self.resources.contains_key(dep) {
                    errors.push(ModelError::DanglingReference {
                        from: id.clone(),
                        to: dep.clone(),
                    });
                }
            }
        }
        for (id, o) in &self.outputs {
            visit(id, &to_json(&o.value), &mut errors);
        }
        for (id, c) in &self.conditions {
            visit(id, &to_json(c), &mut errors);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

fn to_json<T: Serialize + ?Sized>(v: &T) -> Value {
    // Serializing our own Expr/BTreeMap/enum types into a Value cannot fail:
    // they have string keys and no custom error paths.
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Rebuilds every object with sorted keys, so output order never depends on
/// whether some crate in the build enabled serde_json's `preserve_order`.
fn sort_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<String, Value> =
                m.into_iter().map(|(k, v)| (k, sort_keys(v))).collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

enum Reference<'a> {
    Ref(&'a str),
    GetAtt(&'a str),
    Condition(&'a str),
}

impl Reference<'_> {
    fn target(&self) -> &str {
        match self {
            Reference::Ref(s) | Reference::GetAtt(s) | Reference::Condition(s) => s,
        }
    }
}

/// Finds intrinsic references in rendered JSON, including `${Name}` and
/// `${Name.Attr}` inside `Fn::Sub` strings (minus the Sub's own variables).
fn collect_refs<'a>(v: &'a Value, f: &mut dyn FnMut(Reference<'a>)) {
    match v {
        Value::Object(m) if m.len() == 1 => {
            let (k, inner) = m
                .iter()
                .next()
                .map(|(k, v)| (k.as_str(), v))
                .unwrap_or(("", v));
            match (k, inner) {
                ("Ref", Value::String(id)) => f(Reference::Ref(id)),
                ("Fn::GetAtt", Value::Array(a)) => {
                    if let Some(Value::String(id)) = a.first() {
                        f(Reference::GetAtt(id));
                    }
                }
                ("Fn::Sub", Value::String(text)) => sub_vars(text, None, f),
                ("Fn::Sub", Value::Array(a)) => {
                    let vars = a.get(1).and_then(Value::as_object);
                    if let Some(Value::String(text)) = a.first() {
                        sub_vars(text, vars, f);
                    }
                    vars.into_iter()
                        .flat_map(Map::values)
                        .for_each(|x| collect_refs(x, f));
                }
                ("Fn::If", Value::Array(a)) => {
                    if let Some(Value::String(c)) = a.first() {
                        f(Reference::Condition(c));
                    }
                    a.iter().skip(1).for_each(|x| collect_refs(x, f));
                }
                _ => collect_refs(inner, f),
            }
        }
        Value::Object(m) => m.values().for_each(|x| collect_refs(x, f)),
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, f)),
        _ => {}
    }
}

fn sub_vars<'a>(
    text: &'a str,
    vars: Option<&Map<String, Value>>,
    f: &mut dyn FnMut(Reference<'a>),
) {
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let name = &after[..end];
        rest = &after[end + 1..];
        // `${!Literal}` is an escape, not a variable.
        if name.starts_with('!') || vars.is_some_and(|v| v.contains_key(name)) {
            continue;
        }
        match name.split_once('.') {
            Some((id, _)) => f(Reference::GetAtt(id)),
            None => f(Reference::Ref(name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Thing {
        name: Expr,
        #[serde(skip_serializing_if = "Option::is_none")]
        other: Option<Expr>,
    }
    impl ResourceType for Thing {
        const TYPE: &'static str = "Test::Thing";
    }

    #[test]
    fn output_is_sorted_and_shaped() {
        let mut t = Template::new("d", "mangaassist-dev");
        let p = t.parameter(
            "Image",
            Parameter {
                kind: "String",
                description: "img".into(),
                default: Some("x".into()),
                allowed_pattern: None,
            },
        );
        let b = t.add(
            "B",
            Thing {
                name: p.reference(),
                other: None,
            },
        );
        let a = t.add_with(
            "A",
            Thing {
                name: b.attr("Arn"),
                other: Some(Expr::sub("${B}-${AWS::Region}-${!Keep}")),
            },
            ResourceOpts::new().depends_on(&b).deletion(Policy::Retain),
        );
        t.publish(OutputKey::new("network", "AId"), a.reference(), "a");
        let v = t.to_value();
        let text = serde_json::to_string(&v).expect("json");
        assert!(
            text.starts_with(
                r#"{"AWSTemplateFormatVersion":"2010-09-09","Description":"d","Outputs""#
            ),
            "{text}"
        );
        assert_eq!(v["Resources"]["A"]["DependsOn"], serde_json::json!(["B"]));
        assert_eq!(v["Resources"]["A"]["UpdateReplacePolicy"], "Retain");
        // Published outputs are plain outputs: an Export would freeze the
        // value once another stack imports it.
        assert_eq!(
            v["Outputs"]["AId"]["Value"],
            serde_json::json!({ "Ref": "A" })
        );
        assert!(v["Outputs"]["AId"].get("Export").is_none(), "{text}");
        assert!(t.check().is_ok(), "{:?}", t.check());
        assert_eq!(t.retained().len(), 1);
    }

    #[test]
    fn check_finds_dangling_and_duplicate_ids() {
        let mut t = Template::new("d", "p");
        t.add(
            "A",
            Thing {
                name: Expr::Ref("Missing".into()),
                other: Some(Expr::sub("${Gone.Arn}")),
            },
        );
        t.add(
            "A",
            Thing {
                name: Expr::If(
                    "NoSuchCondition".into(),
                    Box::new("a".into()),
                    Box::new("b".into()),
                ),
                other: None,
            },
        );
        t.add(
            "bad-id",
            Thing {
                name: "x".into(),
                other: None,
            },
        );
        let errs = t.check().expect_err("must fail");
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(
            text.iter().any(|e| e.contains("duplicate logical ID `A`")),
            "{text:?}"
        );
        assert!(text.iter().any(|e| e.contains("`bad-id`")), "{text:?}");
        assert!(
            text.iter().any(|e| e.contains("`NoSuchCondition`")),
            "{text:?}"
        );
        // The second `A` replaced the first, so `Missing` and `Gone` are not reported.
        let mut t2 = Template::new("d", "p");
        t2.add(
            "A",
            Thing {
                name: Expr::Ref("Missing".into()),
                other: Some(Expr::sub("${Gone.Arn}")),
            },
        );
        let errs = t2.check().expect_err("must fail");
        assert_eq!(errs.len(), 2, "{errs:?}");
    }

    #[test]
    fn consumed_outputs_become_parameters_recorded_for_the_graph() {
        let mut t = Template::new("d", "mangaassist-prod");
        let e = t.consume(OutputKey::new("network", "VpcId"));
        assert_eq!(e, Expr::Ref("NetworkVpcId".into()));
        let again = t.consume(OutputKey::new("network", "VpcId"));
        assert_eq!(again, e, "one parameter per consumed output");
        let l = t.consume_list(OutputKey::new("network", "PrivateSubnetIds"));
        assert_eq!(l, Expr::Ref("NetworkPrivateSubnetIds".into()));
        let v = t.to_value();
        assert_eq!(v["Parameters"]["NetworkVpcId"]["Type"], "String");
        assert_eq!(
            v["Parameters"]["NetworkPrivateSubnetIds"]["Type"],
            "CommaDelimitedList"
        );
        assert!(v["Parameters"]["NetworkVpcId"].get("Default").is_none());
        assert_eq!(
            t.consumed()
                .values()
                .map(|(k, list)| (k.producer, k.name, *list))
                .collect::<Vec<_>>(),
            vec![
                ("network", "PrivateSubnetIds", true),
                ("network", "VpcId", false)
            ]
        );
        assert!(t.check().is_ok(), "{:?}", t.check());
        assert_eq!(
            OutputKey::new("network", "VpcId").legacy_export_name("mangaassist-prod"),
            "mangaassist-prod-network-VpcId"
        );
    }
}
