//! Errors and warnings of a sizing run.
//!
//! Sizing reports every problem at once rather than stopping at the first, so
//! an engineer fixing an environment file sees the whole list. Errors carry
//! structured fields (stage, modelled value, budget, shortfall) so callers can
//! render them as they like; `Display` gives a one-line message.

use std::fmt;

use serde::Serialize;

use crate::latency::Stage;
use crate::plan::SizingPlan;

/// Formats milliseconds without noise: whole numbers plainly, others to 0.1 ms.
pub(crate) fn fmt_ms(ms: f64) -> String {
    if (ms - ms.round()).abs() < 0.05 {
        format!("{}", ms.round())
    } else {
        format!("{ms:.1}")
    }
}

/// One reason a set of targets cannot be sized or met.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SizingError {
    /// A stage's modelled p95 exceeds its own budget.
    #[error(
        "stage `{stage}`: modelled p95 {} ms exceeds budget {budget_ms} ms by {} ms",
        fmt_ms(*modelled_ms),
        fmt_ms(*shortfall_ms)
    )]
    StageOverBudget {
        /// The stage.
        stage: Stage,
        /// Modelled p95 in ms.
        modelled_ms: f64,
        /// The stage's budget in ms.
        budget_ms: u32,
        /// How far over budget, in ms.
        shortfall_ms: f64,
    },
    /// The critical path plus margin exceeds the end-to-end p95.
    #[error(
        "end to end: modelled critical path {} ms plus margin {margin_ms} ms exceeds end_to_end_p95 {end_to_end_ms} ms by {} ms",
        fmt_ms(*modelled_ms),
        fmt_ms(*shortfall_ms)
    )]
    EndToEndOverBudget {
        /// Modelled critical-path p95 in ms (without margin).
        modelled_ms: f64,
        /// Margin in ms.
        margin_ms: u32,
        /// The end-to-end target in ms.
        end_to_end_ms: u32,
        /// How far over, in ms.
        shortfall_ms: f64,
    },
    /// An explicit capacity cannot meet its target in an environment where
    /// that is an error (prod, not acknowledged).
    #[error("override of `{resource}` cannot meet its target: {detail} (add `{resource}` to acknowledged_overrides to accept it)")]
    OverrideShortfall {
        /// Resource name as in the `capacity` section.
        resource: String,
        /// What falls short.
        detail: String,
    },
    /// A budget miss larger than the environment's accepted shortfall for it.
    #[error("{detail}, beyond the {} ms accepted for `{}` in accepted_shortfalls", fmt_ms(*accepted_ms), stage.key())]
    ShortfallBeyondAccepted {
        /// The miss as [`SizingError::StageOverBudget`] or [`SizingError::EndToEndOverBudget`] says it.
        detail: String,
        /// The stage (`end_to_end` for the path).
        stage: Stage,
        /// The accepted figure, ms.
        accepted_ms: f64,
    },
    /// An explicit capacity that cannot be deployed or priced at all.
    #[error("override of `{resource}` is invalid: {detail}")]
    InvalidOverride {
        /// Resource name as in the `capacity` section.
        resource: String,
        /// Why.
        detail: String,
    },
    /// No size of a resource can carry the load.
    #[error("`{resource}` cannot be sized: {detail}")]
    Infeasible {
        /// Resource name.
        resource: String,
        /// Why.
        detail: String,
    },
    /// The input itself is unusable.
    #[error("invalid input `{field}`: {detail}")]
    InvalidInput {
        /// Field path.
        field: String,
        /// Why.
        detail: String,
    },
    /// The embedded assumptions or price table failed to parse or lacks an entry.
    #[error("sizing data `{file}`: {detail}")]
    Data {
        /// Data file name.
        file: &'static str,
        /// What is wrong.
        detail: String,
    },
}

/// Every error of a failed sizing run, with the plan when one could still be
/// computed (budget failures and override errors leave a complete plan worth
/// showing next to the errors).
#[derive(Debug)]
pub struct SizingErrors {
    /// All errors, in a stable order.
    pub errors: Vec<SizingError>,
    /// The plan as computed despite the errors, if the input allowed one.
    pub plan: Option<Box<SizingPlan>>,
}

impl fmt::Display for SizingErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "sizing failed with {n} error{}",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SizingErrors {}

/// Something worth a look that does not stop sizing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Warning {
    /// Resource or area (`bedrock`, `redis`, `timeouts`, ...).
    pub resource: String,
    /// What to look at.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.resource, self.message)
    }
}

/// Collects errors and warnings while the resources are sized.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub errors: Vec<SizingError>,
    pub warnings: Vec<Warning>,
}

impl Findings {
    pub fn warn(&mut self, resource: &str, message: impl Into<String>) {
        self.warnings.push(Warning {
            resource: resource.to_owned(),
            message: message.into(),
        });
    }

    /// An override that cannot meet its target: a warning outside prod or
    /// when acknowledged, an error otherwise (issue 3's override rule).
    pub fn override_shortfall(
        &mut self,
        resource: &str,
        detail: String,
        is_production: bool,
        acknowledged: bool,
    ) {
        if is_production && !acknowledged {
            self.errors.push(SizingError::OverrideShortfall {
                resource: resource.to_owned(),
                detail,
            });
        } else {
            let why = if is_production {
                "acknowledged"
            } else {
                "accepted outside prod"
            };
            self.warn(
                resource,
                format!("override cannot meet its target ({why}): {detail}"),
            );
        }
    }

    pub fn invalid_override(&mut self, resource: &str, detail: String) {
        self.errors.push(SizingError::InvalidOverride {
            resource: resource.to_owned(),
            detail,
        });
    }

    pub fn infeasible(&mut self, resource: &str, detail: String) {
        self.errors.push(SizingError::Infeasible {
            resource: resource.to_owned(),
            detail,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_error_message_names_stage_values_and_shortfall() {
        let e = SizingError::StageOverBudget {
            stage: Stage::FirstToken,
            modelled_ms: 450.0,
            budget_ms: 300,
            shortfall_ms: 150.0,
        };
        assert_eq!(
            e.to_string(),
            "stage `llm first token`: modelled p95 450 ms exceeds budget 300 ms by 150 ms"
        );
    }

    #[test]
    fn fractional_ms_keep_one_decimal() {
        assert_eq!(fmt_ms(12.5), "12.5");
        assert_eq!(fmt_ms(2.0), "2");
        assert_eq!(fmt_ms(0.04), "0");
    }
}
