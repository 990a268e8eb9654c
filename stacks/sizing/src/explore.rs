//! Explaining and exploring a plan: which inputs decide a resource and how
//! far each can move before the result changes ([`explain`]), and the plan
//! across a range of one traffic field ([`sweep`]). `mangactl size
//! --explain`, `--sweep` and `--plot` (src/cli/size/) print them.
//!
//! Inputs are found generically, so a figure added to `data/assumptions.yaml`
//! is explained without code here: every numeric field of an entry that
//! carries a `source` (a [`crate::assumptions::Figure`]'s `value`, a node
//! type's `normalized_rps`, a model's `first_token_median_ms`, a tier's
//! `output_tokens`), and every number under the environment's `targets`.
//! A perturbed copy is made through serde (JSON), changed at that path and
//! sized again.

use serde::Serialize;
use serde_json::Value;

use crate::assumptions::Assumptions;
use crate::cost::Prices;
use crate::input::SizingInput;
use crate::plan::SizingPlan;
use crate::size_with;

/// Smallest and largest factor [`explain`] tries on an input.
pub const FACTOR_RANGE: (f64, f64) = (0.25, 4.0);

/// Bisection steps per direction (the flip point to within about 1%).
const BISECTIONS: usize = 8;

/// Where an input lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// `data/assumptions.yaml`.
    Assumptions,
    /// The environment file's `targets`.
    Environment,
}

/// One input that moves the result within [`FACTOR_RANGE`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sensitivity {
    /// Dotted path (`orchestrator.cpu_ms_per_message`,
    /// `targets.traffic.concurrent_sessions`, `bedrock.models.<id>.first_token_p95_ms`).
    pub input: String,
    /// Its value now.
    pub value: f64,
    /// Where it comes from (the entry's `source`, or the environment file).
    pub source: String,
    /// Where it lives.
    pub origin: Origin,
    /// The value below which the result changes (`None`: not within the range).
    pub flips_below: Option<Flip>,
    /// The value above which the result changes.
    pub flips_above: Option<Flip>,
}

/// Where and to what a result changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flip {
    /// The input's value at the change.
    pub value: f64,
    /// As a change from today, in percent (negative below).
    pub change_pct: f64,
    /// The result there.
    pub result: String,
}

/// What decides one resource (or the budget verdict).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The resource (`service`, `dax`, …) or `budget`.
    pub resource: String,
    /// Its result today.
    pub result: String,
    /// The inputs that move it within [`FACTOR_RANGE`], nearest flip first.
    pub inputs: Vec<Sensitivity>,
    /// How many inputs were tried.
    pub tried: usize,
}

/// Why an exploration could not run.
#[derive(Debug, thiserror::Error)]
pub enum ExploreError {
    /// The resource is not one the plan has.
    #[error("unknown resource `{0}`: expected one of {1}")]
    UnknownResource(String, String),
    /// The sweep field is not a number under `targets`.
    #[error("unknown sweep field `{0}`: expected a number under targets, such as sessions, messages_per_session_per_minute, peak_factor, cache_hit_ratio or rules_confident_share")]
    UnknownField(String),
    /// The plan does not size at all (its own errors say why).
    #[error("the environment does not size: {0}")]
    DoesNotSize(String),
    /// The inputs did not survive serialization (a bug).
    #[error("internal: {0}")]
    Serde(String),
}

/// The resources [`explain`] knows, then `budget`.
pub fn resources() -> Vec<&'static str> {
    vec![
        "service",
        "redis",
        "dax",
        "dynamodb",
        "opensearch",
        "sagemaker",
        "bedrock",
        "budget",
    ]
}

/// The result of `resource` in `plan` as a comparable string: the size and
/// the binding constraint, or for `budget` the stages over budget and the
/// end-to-end verdict.
pub fn result_of(plan: &SizingPlan, ok: bool, resource: &str) -> String {
    if resource == "budget" {
        let over: Vec<&str> = plan
            .budget
            .rows
            .iter()
            .filter(|r| r.slack_ms < 0.0)
            .map(|r| r.stage.key())
            .collect();
        let path = if plan.budget.slack_ms < 0.0 {
            "end to end misses"
        } else {
            "end to end fits"
        };
        let verdict = if ok { "sizes" } else { "does not size" };
        return if over.is_empty() {
            format!("every stage fits; {path}; {verdict}")
        } else {
            format!("over: {}; {path}; {verdict}", over.join(", "))
        };
    }
    plan.resource_rows()
        .into_iter()
        .find(|r| r.resource == resource)
        .map(|r| {
            if resource == "bedrock" {
                // Its size is the traffic itself; what flips is the quota band.
                let band = match r.utilisation_at_peak {
                    u if u > 1.0 => "over the quota",
                    u if u > 0.8 => "in the 80-100% warning band",
                    _ => "within the quota",
                };
                format!("{band} ({})", r.binding)
            } else {
                // The count and type; the autoscaling bounds and targets
                // in a trailing parenthesis follow from them.
                let size = match r.size.rfind(" (") {
                    Some(i) if r.size.ends_with(')') => &r.size[..i],
                    _ => r.size.as_str(),
                };
                format!("{size} ({})", r.binding)
            }
        })
        .unwrap_or_default()
}

/// Sizes and returns the plan (also when it fails its targets) and whether
/// it sized cleanly; `None` when the inputs are invalid.
fn plan_of(input: &SizingInput, a: &Assumptions, prices: &Prices) -> Option<(SizingPlan, bool)> {
    match size_with(input, a, prices) {
        Ok(p) => Some((p, true)),
        Err(e) => e.plan.map(|p| (*p, false)),
    }
}

/// One numeric leaf: where it is in the JSON tree and how to name it.
#[derive(Debug, Clone)]
struct Leaf {
    name: String,
    pointer: String,
    value: f64,
    source: String,
    origin: Origin,
}

/// The numeric fields of every sourced entry under `v`.
fn sourced_leaves(v: &Value, name: &str, pointer: &str, out: &mut Vec<Leaf>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(source)) = map.get("source") {
                for (k, x) in map {
                    if let Some(n) = x.as_f64() {
                        if k == "date" {
                            continue;
                        }
                        let leaf_name = if k == "value" {
                            name.to_owned()
                        } else {
                            format!("{name}.{k}")
                        };
                        out.push(Leaf {
                            name: leaf_name,
                            pointer: format!("{pointer}/{k}"),
                            value: n,
                            source: source.clone(),
                            origin: Origin::Assumptions,
                        });
                    }
                }
                return;
            }
            for (k, x) in map {
                let child = if name.is_empty() {
                    k.clone()
                } else {
                    format!("{name}.{k}")
                };
                sourced_leaves(x, &child, &format!("{pointer}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                let id = x
                    .get("name")
                    .or_else(|| x.get("model_id"))
                    .and_then(Value::as_str)
                    .map_or_else(|| i.to_string(), str::to_owned);
                sourced_leaves(x, &format!("{name}.{id}"), &format!("{pointer}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Every number under `targets` in the environment.
fn target_leaves(v: &Value, name: &str, pointer: &str, out: &mut Vec<Leaf>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                target_leaves(x, &format!("{name}.{k}"), &format!("{pointer}/{k}"), out);
            }
        }
        Value::Number(n) => {
            if let Some(value) = n.as_f64() {
                out.push(Leaf {
                    name: name.to_owned(),
                    pointer: pointer.to_owned(),
                    value,
                    source: "environment file".to_owned(),
                    origin: Origin::Environment,
                });
            }
        }
        _ => {}
    }
}

/// The inputs as JSON trees, and every leaf in them.
fn leaves(input: &SizingInput, a: &Assumptions) -> Result<(Value, Value, Vec<Leaf>), ExploreError> {
    let iv = serde_json::to_value(input).map_err(|e| ExploreError::Serde(e.to_string()))?;
    let av = serde_json::to_value(a).map_err(|e| ExploreError::Serde(e.to_string()))?;
    let mut out = Vec::new();
    if let Some(t) = iv.get("targets") {
        target_leaves(t, "targets", "/targets", &mut out);
    }
    sourced_leaves(&av, "", "", &mut out);
    // Only the configured models' figures decide anything (by base id:
    // an inference profile's figures are its model's).
    let used: Vec<String> = input
        .llm
        .models()
        .iter()
        .map(|m| {
            format!(
                "bedrock.models.{}.",
                crate::assumptions::split_profile(&m.model_id).1
            )
        })
        .collect();
    out.retain(|l| {
        !l.name.starts_with("bedrock.models.") || used.iter().any(|u| l.name.starts_with(u))
    });
    Ok((iv, av, out))
}

/// `leaf` set to `value` in copies of the trees, parsed back; `None` if the
/// result does not parse (an integer field given a fraction is rounded).
fn with_value(
    iv: &Value,
    av: &Value,
    leaf: &Leaf,
    value: f64,
) -> Option<(SizingInput, Assumptions)> {
    let (mut iv, mut av) = (iv.clone(), av.clone());
    let tree = match leaf.origin {
        Origin::Environment => &mut iv,
        Origin::Assumptions => &mut av,
    };
    let slot = tree.pointer_mut(&leaf.pointer)?;
    *slot = if slot.is_u64() || slot.is_i64() {
        Value::from(value.round().max(0.0) as u64)
    } else {
        Value::from(value)
    };
    let input: SizingInput = serde_json::from_value(iv).ok()?;
    let a: Assumptions = serde_json::from_value(av).ok()?;
    Some((input, a))
}

/// The result of `resource` with `leaf` at `value` (`None`: invalid there).
fn result_at(
    iv: &Value,
    av: &Value,
    prices: &Prices,
    leaf: &Leaf,
    value: f64,
    resource: &str,
) -> Option<String> {
    let (input, a) = with_value(iv, av, leaf, value)?;
    let (plan, ok) = plan_of(&input, &a, prices)?;
    Some(result_of(&plan, ok, resource))
}

/// The nearest factor between 1 and `end` at which the result differs from
/// `today`, by bisection after checking `end` (a result that changes and
/// changes back inside the range is reported at its first change only if
/// the end differs).
fn flip(
    iv: &Value,
    av: &Value,
    prices: &Prices,
    leaf: &Leaf,
    resource: &str,
    today: &str,
    end: f64,
) -> Option<Flip> {
    let at = |f: f64| result_at(iv, av, prices, leaf, leaf.value * f, resource);
    // Invalid inputs (a ratio above 1, a tier mix off 100) are the edge of
    // the range, not a change of result: search only up to the furthest
    // valid factor.
    let mut end = end;
    let mut far = at(end);
    if far.is_none() {
        let (mut valid, mut invalid) = (1.0, end);
        for _ in 0..BISECTIONS {
            let mid = (valid * invalid).sqrt();
            if at(mid).is_some() {
                valid = mid;
            } else {
                invalid = mid;
            }
        }
        if (valid - 1.0).abs() < 1e-3 {
            return None;
        }
        end = valid;
        far = at(end);
    }
    let differs = |r: &Option<String>| r.is_some() && r.as_deref() != Some(today);
    if !differs(&far) {
        return None;
    }
    let (mut near_f, mut far_f) = (1.0, end);
    for _ in 0..BISECTIONS {
        // Geometric midpoint: factors are ratios.
        let mid = (near_f * far_f).sqrt();
        let r = at(mid);
        if differs(&r) {
            far_f = mid;
            far = r;
        } else {
            near_f = mid;
        }
    }
    Some(Flip {
        value: round_sig(leaf.value * far_f),
        change_pct: ((far_f - 1.0) * 1000.0).round() / 10.0,
        result: far.unwrap_or_default(),
    })
}

fn round_sig(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let mag = 10f64.powf(4.0 - v.abs().log10().floor());
    (v * mag).round() / mag
}

/// Which inputs decide `resource` and how far each can move, within
/// [`FACTOR_RANGE`] of its value.
pub fn explain(
    input: &SizingInput,
    a: &Assumptions,
    prices: &Prices,
    resource: &str,
) -> Result<Explanation, ExploreError> {
    if !resources().contains(&resource) {
        return Err(ExploreError::UnknownResource(
            resource.to_owned(),
            resources().join(", "),
        ));
    }
    let (plan, ok) = plan_of(input, a, prices).ok_or_else(|| {
        ExploreError::DoesNotSize(
            input
                .validate()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let today = result_of(&plan, ok, resource);
    let (iv, av, all) = leaves(input, a)?;
    let tried = all.len();
    let candidates: Vec<Leaf> = all.into_iter().filter(|l| l.value != 0.0).collect();
    // Each input is independent: spread them over the cores.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = candidates.len().div_ceil(threads.max(1)).max(1);
    let (iv, av, today) = (&iv, &av, &today);
    let mut inputs: Vec<Sensitivity> = std::thread::scope(|scope| {
        let handles: Vec<_> = candidates
            .chunks(chunk)
            .map(|leaves| {
                scope.spawn(move || {
                    leaves
                        .iter()
                        .filter_map(|leaf| {
                            let below = flip(iv, av, prices, leaf, resource, today, FACTOR_RANGE.0);
                            let above = flip(iv, av, prices, leaf, resource, today, FACTOR_RANGE.1);
                            (below.is_some() || above.is_some()).then(|| Sensitivity {
                                input: leaf.name.clone(),
                                value: leaf.value,
                                source: leaf.source.clone(),
                                origin: leaf.origin,
                                flips_below: below,
                                flips_above: above,
                            })
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        // A panicking worker is a bug; its inputs are dropped, not the run.
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let nearest = |s: &Sensitivity| {
        [&s.flips_below, &s.flips_above]
            .into_iter()
            .flatten()
            .map(|f| f.change_pct.abs())
            .fold(f64::INFINITY, f64::min)
    };
    inputs.sort_by(|x, y| {
        nearest(x)
            .total_cmp(&nearest(y))
            .then(x.input.cmp(&y.input))
    });
    Ok(Explanation {
        resource: resource.to_owned(),
        result: today.clone(),
        inputs,
        tried,
    })
}

/// One step of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepRow {
    /// The field's value.
    pub value: f64,
    /// `passes`, `accepted` (sizes within accepted shortfalls), `fails`
    /// (sizing errors) or `invalid`.
    pub verdict: String,
    /// Each resource's size, in the plan's row order.
    pub sizes: Vec<(String, String)>,
    /// The path p95 (the slowest covered tier), ms.
    pub critical_path_ms: f64,
    /// First token from receipt, p95, ms.
    pub first_token_ms: f64,
    /// The plan's monthly figure (peak capacity all month), USD.
    pub plan_monthly_usd: f64,
    /// The bill over the day, USD.
    pub bill_monthly_usd: f64,
    /// Tasks of the service.
    pub tasks: u32,
}

/// The dotted path of a sweep field: a name under `targets.traffic`
/// (`sessions` for `concurrent_sessions`), or any dotted path under
/// `targets`.
pub fn sweep_field(name: &str) -> String {
    match name {
        "sessions" => "targets.traffic.concurrent_sessions".to_owned(),
        n if n.starts_with("targets.") => n.to_owned(),
        n => format!("targets.traffic.{n}"),
    }
}

/// The plan at each of `values` of `field` ([`sweep_field`]).
pub fn sweep(
    input: &SizingInput,
    a: &Assumptions,
    prices: &Prices,
    field: &str,
    values: &[f64],
) -> Result<Vec<SweepRow>, ExploreError> {
    let path = sweep_field(field);
    let (iv, av, all) = leaves(input, a)?;
    let leaf = all
        .into_iter()
        .find(|l| l.origin == Origin::Environment && l.name == path)
        .ok_or_else(|| ExploreError::UnknownField(field.to_owned()))?;
    let mut rows = Vec::new();
    for &v in values {
        let sized =
            with_value(&iv, &av, &leaf, v).and_then(|(i, a)| match size_with(&i, &a, prices) {
                Ok(p) => Some((p, "passes_or_accepted")),
                Err(e) => e.plan.map(|p| (*p, "fails")),
            });
        let Some((plan, how)) = sized else {
            rows.push(SweepRow {
                value: v,
                verdict: "invalid".to_owned(),
                sizes: Vec::new(),
                critical_path_ms: f64::NAN,
                first_token_ms: f64::NAN,
                plan_monthly_usd: f64::NAN,
                bill_monthly_usd: f64::NAN,
                tasks: 0,
            });
            continue;
        };
        let verdict = match how {
            "fails" => "fails",
            _ if plan.budget.passes => "passes",
            _ => "accepted",
        };
        rows.push(SweepRow {
            value: v,
            verdict: verdict.to_owned(),
            sizes: plan
                .resource_rows()
                .into_iter()
                .map(|r| (r.resource.to_owned(), r.size))
                .collect(),
            critical_path_ms: plan.budget.critical_path_ms,
            first_token_ms: plan
                .budget
                .row(crate::latency::Stage::FirstToken)
                .map_or(f64::NAN, |r| r.modelled_p95_ms),
            plan_monthly_usd: plan.cost.total_monthly_usd,
            bill_monthly_usd: plan.bill.as_ref().map_or(f64::NAN, |b| b.total_monthly_usd),
            tasks: plan.service.tasks,
        });
    }
    Ok(rows)
}

/// `count` values from `from` to `to`, evenly spaced (both ends included).
pub fn steps(from: f64, to: f64, count: usize) -> Vec<f64> {
    let n = count.max(2);
    (0..n)
        .map(|i| from + (to - from) * i as f64 / (n - 1) as f64)
        .collect()
}
