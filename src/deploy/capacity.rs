//! OpenSearch Serverless capacity limits during `apply`: the sizing plan's
//! maximum OCUs are account settings (`UpdateAccountSettings`), not
//! template resources, so `apply` reads them before confirming (the pending
//! change is printed with the plan and covered by the confirmation) and
//! sets them once the search stack has deployed, only when they differ.
//!
//! Only the maxima exist in the API. The plan's `search_ocu_min` and
//! `indexing_ocu_min` are not an account or collection setting: OpenSearch
//! Serverless keeps its own floor of running OCUs, so nothing sets them and
//! they stay informational (the search template's `Metadata.Capacity`).

use serde::Serialize;
use sizing::SizingPlan;

use crate::aws::opensearch::{CapacityLimits, CapacityResult};
use crate::aws::SearchCapacity;

/// The limits the plan asks for: its maxima (see the module docs for why
/// the minima are not sent).
pub fn wanted(plan: &SizingPlan) -> CapacityLimits {
    CapacityLimits {
        max_search_ocu: Some(plan.opensearch.search_ocu_max),
        max_indexing_ocu: Some(plan.opensearch.indexing_ocu_max),
    }
}

/// The account's limits now and what the plan wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CapacityChange {
    pub before: CapacityLimits,
    pub after: CapacityLimits,
}

impl CapacityChange {
    pub fn is_change(&self) -> bool {
        self.before != self.after
    }

    /// `max search OCU 8 -> 16, max indexing OCU 4 (unchanged)`.
    pub fn describe(&self) -> String {
        fn one(label: &str, before: Option<u32>, after: Option<u32>) -> String {
            let show = |v: Option<u32>| v.map_or_else(|| "unset".to_owned(), |v| v.to_string());
            if before == after {
                format!("{label} {} (unchanged)", show(after))
            } else {
                format!("{label} {} -> {}", show(before), show(after))
            }
        }
        format!(
            "{}, {}",
            one(
                "max search OCU",
                self.before.max_search_ocu,
                self.after.max_search_ocu
            ),
            one(
                "max indexing OCU",
                self.before.max_indexing_ocu,
                self.after.max_indexing_ocu
            )
        )
    }
}

/// What `apply` did with the capacity limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CapacityOutcome {
    /// The account already had the plan's limits; nothing was sent.
    Unchanged { limits: CapacityLimits },
    /// `UpdateAccountSettings` set them; `after` is what the service reports.
    Updated {
        before: CapacityLimits,
        after: CapacityLimits,
    },
    /// A change was pending but not made (the search stack did not deploy,
    /// or Ctrl-C).
    NotApplied { reason: String },
    /// `UpdateAccountSettings` failed (the error names the operation).
    Failed { error: String },
}

/// Reads the current limits (`GetAccountSettings`) and checks the plan's
/// against the API's bounds, before anything is changed.
pub async fn pending(
    aoss: &dyn SearchCapacity,
    plan: &SizingPlan,
) -> CapacityResult<CapacityChange> {
    let after = wanted(plan);
    after.validate("UpdateAccountSettings")?;
    let before = aoss.capacity_limits().await?;
    Ok(CapacityChange { before, after })
}

/// Sets the limits of `change` if they differ; returns the outcome and the
/// line `apply` prints.
pub async fn set(aoss: &dyn SearchCapacity, change: &CapacityChange) -> (CapacityOutcome, String) {
    if !change.is_change() {
        return (
            CapacityOutcome::Unchanged {
                limits: change.before,
            },
            format!("search capacity: {}\n", change.describe()),
        );
    }
    match aoss.set_capacity_limits(&change.after).await {
        Ok(now) => {
            let done = CapacityChange {
                before: change.before,
                after: now,
            };
            (
                CapacityOutcome::Updated {
                    before: change.before,
                    after: now,
                },
                format!("search capacity: {}\n", done.describe()),
            )
        }
        Err(e) => (
            CapacityOutcome::Failed {
                error: e.to_string(),
            },
            format!("search capacity NOT set: {e}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(search: Option<u32>, indexing: Option<u32>) -> CapacityLimits {
        CapacityLimits {
            max_search_ocu: search,
            max_indexing_ocu: indexing,
        }
    }

    #[test]
    fn describes_each_limit_as_changed_or_unchanged() {
        let c = CapacityChange {
            before: limits(Some(8), Some(4)),
            after: limits(Some(16), Some(4)),
        };
        assert!(c.is_change());
        assert_eq!(
            c.describe(),
            "max search OCU 8 -> 16, max indexing OCU 4 (unchanged)"
        );
        let first = CapacityChange {
            before: limits(None, None),
            after: limits(Some(2), Some(2)),
        };
        assert_eq!(
            first.describe(),
            "max search OCU unset -> 2, max indexing OCU unset -> 2"
        );
        let same = CapacityChange {
            before: limits(Some(2), Some(2)),
            after: limits(Some(2), Some(2)),
        };
        assert!(!same.is_change());
    }
}
