//! Renders every stack of an environment to template bytes and builds the
//! manifest (deploy order, waves, published outputs, references, parameters,
//! tags, capabilities)
//! that `mangactl render` writes beside them and `plan`/`apply` read.
//!
//! Output is deterministic to the byte: every map is sorted (see
//! [`crate::model::template`]) and nothing depends on time or host.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::env::Environment;
use crate::graph::{self, Graph, GraphError};
use crate::model::{Lookup, ModelError, Policy, Template};
use crate::stacks::{self, Inputs, StackId};

/// CloudFormation's limit for a template body passed inline.
pub const INLINE_TEMPLATE_LIMIT: usize = 51_200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Yaml,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Yaml => "yaml",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("stack `{stack}` is malformed:\n  {}", .errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    Model {
        stack: StackId,
        errors: Vec<ModelError>,
    },
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(
        "stack `{stack}` renders to {bytes} bytes, over CloudFormation's inline limit of {limit}"
    )]
    TooLarge {
        stack: StackId,
        bytes: usize,
        limit: usize,
    },
    #[error("stack `{stack}` does not serialize as {format:?}: {message}")]
    Serialize {
        stack: StackId,
        format: Format,
        message: String,
    },
}

/// One rendered stack.
#[derive(Debug, Clone)]
pub struct RenderedStack {
    pub id: StackId,
    pub stack_name: String,
    pub file_name: String,
    pub body: String,
    pub template: Template,
}

#[derive(Debug, Clone)]
pub struct Rendered {
    /// The sizing plan the templates were built from.
    pub sizing: sizing::SizingPlan,
    /// Values of the stacks' lookups ([`StackManifest::lookups`]), read
    /// by the deploying command before it plans; empty after rendering.
    pub lookups: BTreeMap<StackId, BTreeMap<String, String>>,
    /// In deploy order.
    pub stacks: Vec<RenderedStack>,
    pub graph: Graph,
    pub manifest: Manifest,
}

#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub environment: String,
    pub region: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    pub format: Format,
    pub order: Vec<StackId>,
    pub waves: Vec<Vec<StackId>>,
    /// Stack-level tags, applied by `apply` to every stack.
    pub tags: BTreeMap<String, String>,
    pub stacks: BTreeMap<StackId, StackManifest>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StackManifest {
    pub stack_name: String,
    /// The region the stack is deployed in (the edge stack: us-east-1).
    pub region: String,
    pub template: String,
    pub bytes: usize,
    pub depends_on: BTreeSet<StackId>,
    /// Outputs other stacks consume (logical IDs).
    pub published: BTreeSet<String>,
    /// Parameters filled from other stacks' outputs at deploy time:
    /// parameter → the producer and its output.
    pub references: BTreeMap<String, Reference>,
    /// Parameters filled at deploy time from a read of the stack's region
    /// (parameter → what to look up).
    pub lookups: BTreeMap<String, Lookup>,
    /// Parameter → default value (references and lookups have none).
    pub parameters: BTreeMap<String, Option<String>>,
    pub capabilities: Vec<&'static str>,
    pub termination_protection: bool,
    /// Resources kept when the stack is deleted.
    pub retained: BTreeMap<String, RetainedResource>,
    pub resource_count: usize,
}

/// A consumed value: which stack's which output a parameter carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reference {
    pub stack: StackId,
    pub output: String,
    /// A comma-joined list output passed to a `CommaDelimitedList` parameter.
    pub list: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RetainedResource {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub policy: Policy,
}

/// Serializes one template. JSON is pretty-printed with a final newline.
pub fn to_text(id: StackId, t: &Template, format: Format) -> Result<String, RenderError> {
    let value = t.to_value();
    let err = |message: String| RenderError::Serialize {
        stack: id,
        format,
        message,
    };
    match format {
        Format::Json => serde_json::to_string_pretty(&value)
            .map(|s| s + "\n")
            .map_err(|e| err(e.to_string())),
        Format::Yaml => serde_saphyr::to_string(&value).map_err(|e| err(e.to_string())),
    }
}

impl Rendered {
    /// Replaces one property of a rendered resource and re-renders that
    /// stack's body; returns the value it had (`None`: no such stack,
    /// resource or property, and nothing changed).
    pub fn replace_property(
        &mut self,
        stack: StackId,
        logical_id: &str,
        name: &str,
        value: serde_json::Value,
    ) -> Result<Option<serde_json::Value>, RenderError> {
        let format = self.manifest.format;
        let Some(s) = self.stacks.iter_mut().find(|s| s.id == stack) else {
            return Ok(None);
        };
        let Some(previous) = s.template.replace_property(logical_id, name, value) else {
            return Ok(None);
        };
        s.body = to_text(stack, &s.template, format)?;
        if let Some(m) = self.manifest.stacks.get_mut(&stack) {
            m.bytes = s.body.len();
        }
        Ok(Some(previous))
    }
}

/// Renders all stacks of an environment from its sizing plan.
pub fn render(inputs: &Inputs<'_>, format: Format) -> Result<Rendered, RenderError> {
    let env: &Environment = inputs.env;
    let mut templates = BTreeMap::new();
    for id in StackId::ALL {
        let t = stacks::build(id, inputs);
        t.check()
            .map_err(|errors| RenderError::Model { stack: id, errors })?;
        templates.insert(id, t);
    }
    let graph = graph::derive(&templates)?;

    let mut rendered = Vec::new();
    let mut manifests = BTreeMap::new();
    for id in &graph.order {
        let Some(t) = templates.remove(id) else {
            continue;
        };
        let body = to_text(*id, &t, format)?;
        // The limit applies to the JSON body CloudFormation receives, and
        // YAML is never longer than JSON for these templates; check both.
        let json_len = if format == Format::Json {
            body.len()
        } else {
            to_text(*id, &t, Format::Json)?.len()
        };
        let bytes = body.len().max(json_len);
        if bytes > INLINE_TEMPLATE_LIMIT {
            return Err(RenderError::TooLarge {
                stack: *id,
                bytes,
                limit: INLINE_TEMPLATE_LIMIT,
            });
        }
        let file_name = format!("{}.{}", id.name(), format.extension());
        let stack_name = inputs.stack_name(*id);
        manifests.insert(
            *id,
            stack_manifest(inputs, &graph, *id, &t, &stack_name, &file_name, body.len()),
        );
        rendered.push(RenderedStack {
            id: *id,
            stack_name,
            file_name,
            body,
            template: t,
        });
    }

    let mut tags = env.tags.clone();
    tags.insert("Environment".into(), env.name.clone());
    tags.insert("ManagedBy".into(), "mangactl".into());
    let manifest = Manifest {
        environment: env.name.clone(),
        region: env.region.clone(),
        account_id: env.account_id.clone(),
        format,
        order: graph.order.clone(),
        waves: graph.waves.clone(),
        tags,
        stacks: manifests,
    };
    Ok(Rendered {
        sizing: inputs.sizing.clone(),
        lookups: BTreeMap::new(),
        stacks: rendered,
        graph,
        manifest,
    })
}

fn stack_manifest(
    inputs: &Inputs<'_>,
    graph: &Graph,
    id: StackId,
    t: &Template,
    stack_name: &str,
    file_name: &str,
    bytes: usize,
) -> StackManifest {
    let value = t.to_value();
    let resources = value.get("Resources").and_then(|r| r.as_object());
    let iam = resources.is_some_and(|r| {
        r.values().any(|v| {
            v["Type"]
                .as_str()
                .is_some_and(|k| k.starts_with("AWS::IAM::"))
        })
    });
    let named_iam = resources.is_some_and(|r| {
        r.values()
            .any(|v| v["Properties"].get("RoleName").is_some())
    });
    let capabilities = match (iam, named_iam) {
        (_, true) => vec!["CAPABILITY_NAMED_IAM"],
        (true, false) => vec!["CAPABILITY_IAM"],
        _ => vec![],
    };
    StackManifest {
        stack_name: stack_name.to_owned(),
        region: inputs.region(id).to_owned(),
        template: file_name.to_owned(),
        bytes,
        depends_on: graph.depends_on.get(&id).cloned().unwrap_or_default(),
        published: t.published().iter().map(|k| k.name.to_owned()).collect(),
        references: t
            .consumed()
            .iter()
            .filter_map(|(param, (key, list))| {
                Some((
                    param.clone(),
                    Reference {
                        stack: StackId::parse(key.producer)?,
                        output: key.name.to_owned(),
                        list: *list,
                    },
                ))
            })
            .collect(),
        lookups: t.lookups().clone(),
        parameters: t.parameter_defaults(),
        capabilities,
        termination_protection: inputs.env.protection.termination_protection,
        retained: t
            .retained()
            .into_iter()
            .map(|(k, (kind, policy))| (k, RetainedResource { kind, policy }))
            .collect(),
        resource_count: resources.map_or(0, |r| r.len()),
    }
}
