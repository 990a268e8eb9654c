//! Environment files (`environments/*.yaml`): the one source of the region,
//! protections, latency and traffic targets, and capacities.
//!
//! Reading is two-phase: [`raw`] is the serde shape (unknown fields denied,
//! every value spanned), [`validate`] turns it into the types below and
//! reports every problem it finds at once, each with file, line, column and
//! field. The targets, LLM and capacity sections use the sizing crate's
//! types (`stacks/sizing`), so there is one definition of each; the stack
//! modules ([`crate::stacks`]) and the runtime read the same values.

pub mod raw;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
pub use sizing::{Billing, LatencyBudgets, Llm, Overrides, SizingInput, Targets, TierMix, Traffic};

/// A validated environment.
#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    pub name: String,
    /// The file it was read from, for messages.
    #[serde(skip)]
    pub source: PathBuf,
    pub region: String,
    pub account_id: Option<String>,
    pub az_count: u32,
    pub image: String,
    pub domain: Option<Domain>,
    /// Where the customers are (`edge`; default North America and Europe).
    pub edge: Edge,
    pub tags: BTreeMap<String, String>,
    pub protection: Protection,
    pub llm: Llm,
    pub auth: Auth,
    pub intent_model: IntentModel,
    pub targets: Targets,
    /// Explicit capacities; what is absent, sizing decides.
    pub capacity: Overrides,
    /// Resources whose override may miss its target in prod.
    pub acknowledged_overrides: Vec<String>,
    /// Known drift that `mangactl drift` reports as ignored (`drift.accept`).
    pub accepted_drift: Vec<AcceptedDrift>,
    /// The origin secret's pinned version and rotation state (`origin_secret`).
    pub origin_secret: OriginSecret,
    /// Where alarm notifications go (`alerts`).
    pub alerts: Alerts,
    /// Budget misses accepted knowingly (`accepted_shortfalls`).
    pub accepted_shortfalls: Vec<sizing::input::AcceptedShortfall>,
}

/// Alarm destinations: subscriptions of the environment's alarm topic
/// (`email`, `https`) and existing topics every alarm also notifies
/// (`sns_topic_arns`: a pager's or a chat integration's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Alerts {
    pub email: Vec<String>,
    pub https: Vec<String>,
    pub sns_topic_arns: Vec<String>,
}

impl Alerts {
    /// An alarm takes at most five actions per state (CloudWatch API
    /// Reference, PutMetricAlarm: "AlarmActions … Maximum number of 5
    /// items"); the environment's own topic is one of them.
    pub const MAX_EXTRA_TOPICS: usize = 4;

    pub fn is_empty(&self) -> bool {
        self.email.is_empty() && self.https.is_empty() && self.sns_topic_arns.is_empty()
    }
}

/// Which version of the origin secret (the `X-Origin-Verify` value
/// CloudFront sends and the ALB requires) the templates resolve.
///
/// CloudFormation re-reads a `{{resolve:secretsmanager:...}}` reference on
/// an update only when the reference itself changes ("During stack updates,
/// CloudFormation doesn't retrieve the value of the dynamic reference
/// unless a change is made to the dynamic reference itself", AWS re:Post
/// Knowledge Center, "cloudformation stack update secrets"), so a rotation
/// names the new version here and the next apply re-resolves it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OriginSecret {
    /// The secret version (its VersionId, the ClientRequestToken given to
    /// PutSecretValue); `None`: the AWSCURRENT version, as generated when
    /// the service stack created the secret.
    pub version_id: Option<String>,
    /// The ALB also admits the version's `previous` value (during a
    /// rotation, while CloudFront may still send it).
    pub accept_previous: bool,
}

/// One `drift.accept` entry: a resource (or one property path of it) whose
/// drift is known and accepted, with why, until an optional date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AcceptedDrift {
    pub stack: crate::stacks::StackId,
    pub logical_id: String,
    /// A property path as CloudFormation's drift detection reports it
    /// (`/BillingMode`); `None` accepts any drift of the resource.
    pub path: Option<String>,
    pub reason: String,
    /// `YYYY-MM-DD`: from the day after, the drift counts again.
    pub expires: Option<String>,
}

impl Environment {
    /// Prefix of every stack and export name: `mangaassist-<env>`.
    pub fn prefix(&self) -> String {
        format!("mangaassist-{}", self.name)
    }

    /// Production rules apply (multi-AZ minimums, prod errors for overrides).
    pub fn is_production(&self) -> bool {
        sizing::is_production(&self.name)
    }

    /// What the sizing model reads of this environment.
    pub fn sizing_input(&self) -> SizingInput {
        SizingInput {
            env_name: self.name.clone(),
            is_production: self.is_production(),
            az_count: self.az_count,
            region: self.region.clone(),
            failover_required: self.protection.failover,
            targets: self.targets.clone(),
            llm: self.llm.clone(),
            overrides: self.capacity.clone(),
            acknowledged_overrides: self.acknowledged_overrides.clone(),
            accepted_shortfalls: self.accepted_shortfalls.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Domain {
    pub name: String,
    /// The ALB's certificate, in ACM of the environment's region.
    pub certificate_arn: String,
    /// CloudFront's viewer certificate, in ACM of us-east-1 (the same as
    /// `certificate_arn` when the environment lives there).
    pub edge_certificate_arn: String,
}

/// Where the customers are: which CloudFront edge locations serve them.
#[derive(Debug, Clone, Serialize)]
pub struct Edge {
    /// The `edge.customers` areas, as written.
    pub customers: Vec<String>,
    /// The cheapest CloudFront price class whose edge locations cover them.
    pub price_class: &'static str,
}

/// Customer areas and the CloudFront price class that first includes their
/// edge locations. PriceClass_100: North America, Europe, Israel;
/// PriceClass_200 adds South Africa, Kenya, the Middle East, Japan,
/// Singapore, South Korea, Taiwan, Hong Kong, the Philippines, India and
/// more of Asia; PriceClass_All adds South America and Australia and New
/// Zealand (Amazon CloudFront pricing, "Price classes"; CloudFront
/// Developer Guide, "Choose the price class for a CloudFront distribution").
pub const CUSTOMER_AREAS: [(&str, &str); 9] = [
    ("north_america", "PriceClass_100"),
    ("europe", "PriceClass_100"),
    ("israel", "PriceClass_100"),
    ("middle_east", "PriceClass_200"),
    ("africa", "PriceClass_200"),
    ("japan", "PriceClass_200"),
    ("asia", "PriceClass_200"),
    ("south_america", "PriceClass_All"),
    ("oceania", "PriceClass_All"),
];

/// The commercial AWS Regions an environment may live in (AWS General
/// Reference, "AWS Regions"); GovCloud and China are separate partitions
/// that CloudFront's us-east-1 requirements do not cover.
pub const COMMERCIAL_REGIONS: [&str; 34] = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-south-1",
    "eu-south-2",
    "eu-north-1",
    "il-central-1",
    "me-south-1",
    "me-central-1",
    "mx-central-1",
    "sa-east-1",
    "ap-southeast-6",
];

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Protection {
    pub termination_protection: bool,
    /// Retain/Snapshot deletion policies on data stores.
    pub retain_data: bool,
    /// Survive losing a node or an AZ: Redis replicas, a task per AZ,
    /// standby search replicas (always on in prod).
    pub failover: bool,
}

/// How the runtime verifies the customer's JWT (RS256 against a JWKS).
#[derive(Debug, Clone, Serialize)]
pub struct Auth {
    pub jwks_url: String,
    /// The `iss` every token must carry (the runtime's MANGA_JWT_ISSUER).
    pub issuer: String,
    /// The `aud` every token must carry: this store's client (MANGA_JWT_AUDIENCE).
    pub audience: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct IntentModel {
    pub image: String,
    pub model_data_url: String,
}

/// One problem in an environment file, at a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: u64,
    pub column: u64,
    /// Dotted path of the field, e.g. `targets.latency_ms.first_token`.
    pub field: String,
    pub message: String,
    /// The source line, for a caret under the column.
    pub snippet: Option<String>,
}

/// Why an environment could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("cannot read environment file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("unknown environment `{name}` (looked for {}); available: {}", path.display(), list_or_none(available))]
    Unknown {
        name: String,
        path: PathBuf,
        available: Vec<String>,
    },
    #[error("{}", render_problems(path, problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn render_problems(path: &Path, problems: &[Problem]) -> String {
    let mut out = String::new();
    let count = problems.len();
    let noun = if count == 1 { "problem" } else { "problems" };
    out.push_str(&format!("{count} {noun} in {}:", path.display()));
    for p in problems {
        out.push_str(&format!(
            "\n{}:{}:{}: {}",
            path.display(),
            p.line,
            p.column,
            p
        ));
    }
    out
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.message)?;
        } else {
            write!(f, "field `{}`: {}", self.field, self.message)?;
        }
        if let Some(line) = &self.snippet {
            let pad = " ".repeat(self.column.saturating_sub(1) as usize);
            write!(f, "\n    | {line}\n    | {pad}^")?;
        }
        Ok(())
    }
}

/// The environment names found in `dir` (`*.yaml` file stems), sorted.
pub fn available(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            (p.extension().is_some_and(|x| x == "yaml"))
                .then(|| p.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect();
    names.sort();
    names
}

/// Resolves `--env`: a path if it names an existing file or has a YAML
/// extension, otherwise a name under `dir`.
pub fn resolve(spec: &str, dir: &Path) -> Result<PathBuf, EnvError> {
    let as_path = Path::new(spec);
    if as_path.is_file() || spec.ends_with(".yaml") || spec.ends_with(".yml") || spec.contains('/')
    {
        return Ok(as_path.to_path_buf());
    }
    let candidate = dir.join(format!("{spec}.yaml"));
    if candidate.is_file() {
        Ok(candidate)
    } else {
        Err(EnvError::Unknown {
            name: spec.to_owned(),
            path: candidate,
            available: available(dir),
        })
    }
}

/// Reads and validates one environment file.
pub fn load(path: &Path) -> Result<Environment, EnvError> {
    let text = std::fs::read_to_string(path).map_err(|source| EnvError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Parses environment YAML; `path` is used for messages and the name check.
pub fn parse(text: &str, path: &Path) -> Result<Environment, EnvError> {
    let invalid = |problems| EnvError::Invalid {
        path: path.to_path_buf(),
        problems,
    };
    let raw = parse_raw(text).map_err(|p| invalid(vec![p]))?;
    validate::validate(raw, text, path).map_err(invalid)
}

fn parse_raw(text: &str) -> Result<raw::RawEnvironment, Problem> {
    let mut field = String::new();
    let result = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize::<_, raw::RawEnvironment>(de).map_err(|e| {
            field = clean_path(&e.path().to_string());
            e.into_inner()
        })
    });
    result.map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        let message = serde_message(&e.to_string(), text, line, column);
        Problem {
            line,
            column,
            field,
            message,
            snippet: source_line(text, line),
        }
    })
}

/// Drops the `value` segments `Spanned` adds and the `?` of unknown keys.
fn clean_path(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('.')
        .filter(|s| *s != "value" && *s != "?" && !s.is_empty())
        .collect();
    parts.join(".")
}

/// serde-saphyr's first line without its own `error: line L column C:`
/// prefix, plus what was found there when the message does not say.
fn serde_message(full: &str, text: &str, line: u64, column: u64) -> String {
    let first = full.lines().next().unwrap_or(full);
    let msg = match first.find(": ") {
        Some(i) if first.starts_with("error: line ") => {
            let rest = &first[i + 2..];
            rest.split_once(": ").map_or(rest, |(_, m)| m)
        }
        _ => first,
    };
    let msg = msg.trim().to_owned();
    let vague = msg.starts_with("invalid ") || msg.starts_with("expected ");
    match token_at(text, line, column) {
        Some(tok) if vague => format!("{msg}, found `{tok}`"),
        _ => msg,
    }
}

fn source_line(text: &str, line: u64) -> Option<String> {
    let idx = usize::try_from(line).ok()?.checked_sub(1)?;
    text.lines().nth(idx).map(|l| l.trim_end().to_owned())
}

fn token_at(text: &str, line: u64, column: u64) -> Option<String> {
    let l = source_line(text, line)?;
    let start = usize::try_from(column).ok()?.checked_sub(1)?;
    let tok: String = l
        .chars()
        .skip(start)
        .take_while(|c| !c.is_whitespace() && *c != '#')
        .collect();
    (!tok.is_empty()).then_some(tok)
}

#[cfg(test)]
mod tests;
