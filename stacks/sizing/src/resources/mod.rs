//! Sizing of each AWS resource from the arrival rates and stage budgets.
//!
//! Every resource follows the same shape: compute the smallest size that
//! meets its capacity, availability and latency targets; name the constraint
//! that decided it; then, if the environment file gives explicit capacities,
//! let them win and check them against the same targets (a shortfall is a
//! warning outside prod and an error in prod unless acknowledged).
//!
//! Node and instance types are chosen with one rule everywhere: take the
//! smallest type whose count stays at the availability floor, otherwise scale
//! out the largest type. That rule keeps counts monotone in traffic (more
//! traffic never yields fewer nodes), which a cheapest-mix search would not.

pub mod bedrock;
pub mod dax;
pub mod dynamodb;
pub mod failure;
pub mod opensearch;
pub mod redis;
pub mod sagemaker;
pub mod service;

use serde::Serialize;

use crate::assumptions::{Assumptions, BedrockModel};
use crate::cost::Prices;
use crate::input::SizingInput;
use crate::rates::Rates;

/// The constraint that decided a resource's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Binding {
    /// Open WebSocket connections (memory per session).
    #[serde(rename = "connections")]
    Connections,
    /// CPU at the target utilisation.
    #[serde(rename = "cpu")]
    Cpu,
    /// LLM streams one task may relay at once.
    #[serde(rename = "in-flight streams")]
    InFlightStreams,
    /// At least one task per Availability Zone.
    #[serde(rename = "one per AZ")]
    OnePerAz,
    /// The smallest deployable size.
    #[serde(rename = "minimum")]
    Minimum,
    /// Data that must fit in memory.
    #[serde(rename = "memory")]
    Memory,
    /// Operations per second at the utilisation ceiling.
    #[serde(rename = "ops/s")]
    OpsPerSecond,
    /// Writes only the primary node can take.
    #[serde(rename = "primary writes")]
    PrimaryWrites,
    /// The stage's p95 latency budget.
    #[serde(rename = "latency budget")]
    LatencyBudget,
    /// Nodes or replicas needed to survive losing one AZ.
    #[serde(rename = "multi-AZ minimum")]
    MultiAzMinimum,
    /// The failure case decided the size: with one AZ's nodes (at least one
    /// node) gone, the survivors must stay stable (ρ < 1) and, in prod, keep
    /// their stage within its p95 budget. See [`failure`].
    #[serde(rename = "AZ loss")]
    AzLoss,
    /// An explicit capacity from the environment file.
    #[serde(rename = "override")]
    Override,
    /// Pay-per-request capacity; nothing to size.
    #[serde(rename = "on-demand")]
    OnDemand,
    /// The resource is not needed for the targets.
    #[serde(rename = "not needed")]
    NotNeeded,
    /// The account's tokens-per-minute quota.
    #[serde(rename = "tokens per minute")]
    TokensPerMinute,
}

impl Binding {
    /// The name used in tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Binding::Connections => "connections",
            Binding::Cpu => "cpu",
            Binding::InFlightStreams => "in-flight streams",
            Binding::OnePerAz => "one per AZ",
            Binding::Minimum => "minimum",
            Binding::Memory => "memory",
            Binding::OpsPerSecond => "ops/s",
            Binding::PrimaryWrites => "primary writes",
            Binding::LatencyBudget => "latency budget",
            Binding::MultiAzMinimum => "multi-AZ minimum",
            Binding::AzLoss => "AZ loss",
            Binding::Override => "override",
            Binding::OnDemand => "on-demand",
            Binding::NotNeeded => "not needed",
            Binding::TokensPerMinute => "tokens per minute",
        }
    }
}

impl std::fmt::Display for Binding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What every resource reports next to its chosen size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assessment {
    /// The constraint that decided the size (`override` when explicit).
    pub binding: Binding,
    /// Demand over capacity in the most loaded dimension at peak (0..1 is
    /// healthy; above 1 the resource is overloaded).
    pub utilisation_at_peak: f64,
    /// Share of that dimension's capacity left at peak (1 − utilisation).
    pub headroom: f64,
    /// Estimated monthly cost in USD.
    pub monthly_cost_usd: f64,
    /// Whether the environment file's explicit capacity was used.
    pub overridden: bool,
    /// Utilisation of the survivors at peak with one AZ's nodes (at least
    /// one node) gone, in the same dimension as `utilisation_at_peak`
    /// (below 1 is stable). Infinite (`null` in JSON) when the failure
    /// leaves nothing; absent for resources AWS runs across AZs itself
    /// (DynamoDB, Bedrock). The notes name the failure modelled.
    pub degraded_utilisation: Option<f64>,
    /// The resource's stage p95 in that failure case, ms, where it has a
    /// latency stage (SageMaker `intent_ml`, DAX `memory_read`, Redis
    /// `cache_hit`, OpenSearch `retrieval`).
    pub degraded_p95_ms: Option<f64>,
    /// How the size was derived, for humans.
    pub notes: Vec<String>,
}

impl Assessment {
    pub(crate) fn new(
        binding: Binding,
        utilisation: f64,
        monthly_cost_usd: f64,
        overridden: bool,
        notes: Vec<String>,
    ) -> Self {
        let utilisation = round4(utilisation);
        Assessment {
            binding: if overridden {
                Binding::Override
            } else {
                binding
            },
            utilisation_at_peak: utilisation,
            headroom: round4(1.0 - utilisation),
            monthly_cost_usd,
            overridden,
            degraded_utilisation: None,
            degraded_p95_ms: None,
            notes,
        }
    }

    /// Records the failure case: its utilisation and a note naming it.
    pub(crate) fn with_failure(mut self, d: &failure::Degraded) -> Self {
        self.degraded_utilisation = Some(round4(d.utilisation));
        self.degraded_p95_ms = d.p95_ms.map(round_ms);
        self.notes.push(d.note());
        self
    }
}

/// Everything a resource's sizing may read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub input: &'a SizingInput,
    pub a: &'a Assumptions,
    pub prices: &'a Prices,
    pub rates: &'a Rates,
    /// The Bedrock model of each tier, in the tier mix's order
    /// (`llm.tiers`, else `llm.model_id`).
    pub tier_models: [&'a BedrockModel; 4],
}

impl Ctx<'_> {
    pub fn failover(&self) -> bool {
        self.input.requires_failover()
    }

    pub fn is_production(&self) -> bool {
        self.input.is_production
    }

    pub fn acknowledged(&self, resource: &str) -> bool {
        self.input.is_acknowledged(resource)
    }

    /// Whether node types may be burstable (T-family). Burstable CPU credits
    /// run out under sustained load, so production does not use them.
    pub fn allows_burstable(&self) -> bool {
        !self.input.is_production
    }
}

/// Rounds up to a whole count, saturating instead of wrapping: a non-finite
/// or huge requirement becomes `u32::MAX`, which every check then rejects.
pub(crate) fn ceil_u32(x: f64) -> u32 {
    if x.is_nan() || x >= f64::from(u32::MAX) {
        u32::MAX
    } else if x <= 0.0 {
        0
    } else {
        // In range and non-negative, so the cast is exact after ceil().
        x.ceil() as u32
    }
}

/// Rounds to 4 decimals so plans serialise identically across platforms.
pub(crate) fn round4(x: f64) -> f64 {
    if x.is_finite() {
        (x * 10_000.0).round() / 10_000.0
    } else {
        x
    }
}

/// Rounds milliseconds to 0.1 ms for the same reason.
pub(crate) fn round_ms(x: f64) -> f64 {
    if x.is_finite() {
        (x * 10.0).round() / 10.0
    } else {
        x
    }
}

/// The "smallest type at the floor, else scale out the largest" rule.
///
/// `count_for(i)` is the count candidate `i` needs (`None` when it cannot
/// carry the load at any count); candidates are ordered smallest first and a
/// larger one carries at least what a smaller one does. Returns the chosen
/// index and its count, or `None` when no candidate can carry the load.
pub(crate) fn pick_type(
    candidates: usize,
    floor: u32,
    mut count_for: impl FnMut(usize) -> Option<u32>,
) -> Option<(usize, u32)> {
    let mut largest_feasible = None;
    for i in 0..candidates {
        if let Some(n) = count_for(i) {
            if n <= floor {
                return Some((i, n.max(floor)));
            }
            largest_feasible = Some((i, n.max(floor)));
        }
    }
    largest_feasible
}

/// Formats a ratio as a whole percentage.
pub(crate) fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceil_saturates() {
        assert_eq!(ceil_u32(f64::INFINITY), u32::MAX);
        assert_eq!(ceil_u32(f64::NAN), u32::MAX);
        assert_eq!(ceil_u32(-3.0), 0);
        assert_eq!(ceil_u32(2.0001), 3);
        assert_eq!(ceil_u32(2.0), 2);
    }

    #[test]
    fn pick_type_prefers_smallest_at_floor_then_largest() {
        // Needs 5, 3, 2 nodes with a floor of 3: the second type is chosen.
        let needs = [Some(5), Some(3), Some(2)];
        assert_eq!(pick_type(3, 3, |i| needs[i]), Some((1, 3)));
        // Nothing reaches the floor: scale out the largest.
        let needs = [Some(9), None, Some(4)];
        assert_eq!(pick_type(3, 3, |i| needs[i]), Some((2, 4)));
        let needs = [None, None, None];
        assert_eq!(pick_type(3, 3, |i| needs[i]), None);
    }
}
