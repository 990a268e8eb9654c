//! Failure sizing (issue 15): the degraded state each pooled resource must
//! survive, and the rule that sizes for it.
//!
//! The failure modelled is the loss of one Availability Zone, which takes
//! `ceil(n / az_count)` of `n` nodes spread evenly over the AZs, and always
//! at least one node (so N+1 is the special case of a pool no larger than
//! the AZ count). With a single AZ only one node's loss is modelled: losing
//! that AZ loses everything and no count helps.
//!
//! What each resource loses, and what AWS documents about it:
//!
//! - **SageMaker** instances: one AZ's instances. The AWS Config managed rule
//!   `sagemaker-endpoint-config-prod-instance-count`
//!   (<https://docs.aws.amazon.com/config/latest/developerguide/sagemaker-endpoint-config-prod-instance-count.html>)
//!   flags production variants with `InitialInstanceCount` 1, because
//!   SageMaker spreads an endpoint's instances over AZs and one instance has
//!   no redundancy (the SageMaker Developer Guide's hosting best practice
//!   "deploy multiple instances across Availability Zones" says the same; not
//!   found in the documentation index searched, so cited by title only).
//! - **DAX** nodes: one AZ's nodes. "If the primary node fails, DAX
//!   automatically fails over to a read replica and designates it as the new
//!   primary. If a replica node fails, other nodes in the DAX cluster can
//!   still serve requests"; "For production usage, we strongly recommend
//!   using DAX with at least three nodes, where each node is placed in
//!   different Availability Zones" (Amazon DynamoDB Developer Guide, "DAX
//!   cluster components", Nodes and Clusters,
//!   <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/DAX.concepts.cluster.html>).
//!   Reads spread over the survivors; every write still lands on the
//!   (new) primary and is replicated to all.
//! - **Redis**: a shard loses its primary and, with Multi-AZ, "the role of
//!   primary node will automatically fail over to one of the read replicas"
//!   (Amazon ElastiCache User Guide, "Minimizing downtime in ElastiCache by
//!   using Multi-AZ with Valkey and Redis OSS",
//!   <https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/AutoFailover.html>).
//!   This design reads from primaries only, so replicas add no read
//!   capacity and losing one takes none: the promoted replica is the same
//!   node type and carries the shard as before. Without a replica the shard
//!   is gone until ElastiCache replaces the node.
//! - **OpenSearch Serverless**: "redundant active replicas ... to ensure high
//!   availability with standby nodes in another Availability Zone" (Amazon
//!   OpenSearch Service Developer Guide, "Managing capacity limits for
//!   Amazon OpenSearch Serverless",
//!   <https://docs.aws.amazon.com/opensearch-service/latest/developerguide/serverless-scaling.html>).
//!   AWS does not say how search OCUs split between the two AZs or how much
//!   search capacity survives; **assumption**: with standby replicas the
//!   search OCUs are split evenly over two AZs and losing one leaves
//!   `floor(n / 2)`; without them every OCU is in one AZ.
//! - **ECS service** tasks: one AZ's tasks. Services spread tasks over AZs
//!   ("For tasks running as part of an Amazon ECS service, the task placement
//!   strategy is spread using the attribute:ecs.availability-zone", Amazon
//!   ECS Developer Guide, "Use strategies to define Amazon ECS task
//!   placement", <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-placement-strategies.html>;
//!   "Balancing an Amazon ECS service across Availability Zones",
//!   <https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-rebalancing.html>).
//!   The survivors must hold every session and stream at peak under their
//!   hard limits (the runtime refuses more) with CPU below 100%; the lost
//!   tasks come back by scaling out.
//!
//! The rule: where failover is required ([`Ctx::failover`]), the count is
//! raised until the degraded state is stable (ρ < 1) and, in prod, its stage
//! (where it has one) still fits its p95 budget; the binding is then
//! [`Binding::AzLoss`](super::Binding::AzLoss). Elsewhere counts are not
//! raised: a pool with redundancy whose survivors would be overloaded is a
//! warning, and a single-node pool, which promises no failover, only
//! records its degraded state.
//!
//! Not modelled: correlated failures beyond one AZ, the minutes a
//! replacement node or task takes (and the failover blip itself), and the
//! extra load of clients retrying during it.

use super::{pct, Ctx};
use crate::error::{fmt_ms, Findings};

/// Nodes lost with one AZ when `n` nodes are spread evenly over `az_count`
/// AZs: `ceil(n / az_count)`, at least one (a node loss), at most `n`. With
/// one AZ only a node loss is modelled.
pub fn lost_in_one_az(n: u32, az_count: u32) -> u32 {
    if n == 0 {
        0
    } else if az_count < 2 {
        1
    } else {
        n.div_ceil(az_count)
    }
}

/// The degraded state of a pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Degraded {
    /// The failure modelled, for humans ("one AZ of 3 lost: 2 of 5 tasks").
    pub what: String,
    /// Nodes left.
    pub survivors: u32,
    /// Utilisation of the survivors at peak (infinite when none are left).
    pub utilisation: f64,
    /// The resource's stage p95 in the degraded state, ms, where it has a stage.
    pub p95_ms: Option<f64>,
    /// The stage's budget, ms, where it has one and the healthy pool can meet it.
    pub budget_ms: Option<f64>,
}

impl Degraded {
    /// Describes losing one AZ of `n` nodes called `unit`.
    pub fn describe(n: u32, az_count: u32, unit: &str) -> (u32, String) {
        let lost = lost_in_one_az(n, az_count);
        let what = if az_count < 2 {
            format!("one {unit} lost ({lost} of {n}; a single AZ loses all)")
        } else {
            format!("one AZ of {az_count} lost: {lost} of {n} {unit}s")
        };
        (lost, what)
    }

    /// Whether the survivors are stable.
    pub fn stable(&self) -> bool {
        self.utilisation < 1.0
    }

    /// Whether the degraded stage p95 fits its budget (true without a stage).
    pub fn within_budget(&self) -> bool {
        match (self.p95_ms, self.budget_ms) {
            (Some(p), Some(b)) => p <= b,
            _ => true,
        }
    }

    /// Whether this state meets the failure rule of `ctx`'s environment:
    /// stable, and in prod within the stage budget.
    pub(crate) fn survives(&self, ctx: &Ctx<'_>) -> bool {
        self.stable() && (!ctx.is_production() || self.within_budget())
    }

    /// The survivors' utilisation as notes and problems print it.
    fn utilisation_shown(&self) -> String {
        if self.utilisation.is_finite() {
            pct(self.utilisation)
        } else {
            "no capacity".to_owned()
        }
    }

    /// The note the assessment carries.
    pub fn note(&self) -> String {
        let mut s = format!(
            "failure case, {}: {} left at {} at peak",
            self.what,
            self.survivors,
            self.utilisation_shown()
        );
        if let Some(p) = self.p95_ms {
            if p.is_finite() {
                s.push_str(&format!(", stage p95 {} ms", fmt_ms(p)));
            }
            if let Some(b) = self.budget_ms {
                s.push_str(&format!(" (budget {} ms)", fmt_ms(b)));
            }
        }
        s
    }

    /// Why this state fails the rule of `ctx`'s environment, if it does.
    pub(crate) fn problem(&self, ctx: &Ctx<'_>) -> Option<String> {
        if !self.stable() {
            Some(format!(
                "with {} the {} left run at {} at peak (unstable)",
                self.what,
                self.survivors,
                self.utilisation_shown()
            ))
        } else if ctx.is_production() && !self.within_budget() {
            Some(format!(
                "with {} the stage p95 is {} ms, budget {} ms",
                self.what,
                fmt_ms(self.p95_ms.unwrap_or(f64::INFINITY)),
                fmt_ms(self.budget_ms.unwrap_or(0.0))
            ))
        } else {
            None
        }
    }
}

/// Reports a degraded state that fails the rule, and returns the problem to
/// add to an override's shortfall list.
///
/// Where failover is required, a sized count always survives (sizing raised
/// it), so a problem there means sizing could not find a count: it is an
/// error. An override's problem is returned for the override rule (an error
/// in prod unless acknowledged). Elsewhere a pool with redundancy whose
/// survivors are overloaded is a warning; a single-node pool promises no
/// failover and is only noted.
pub(crate) fn check(
    ctx: &Ctx<'_>,
    findings: &mut Findings,
    resource: &str,
    d: &Degraded,
    overridden: bool,
) -> Option<String> {
    let problem = d.problem(ctx)?;
    if ctx.failover() {
        if overridden {
            return Some(problem);
        }
        findings.infeasible(resource, problem);
    } else if d.survivors > 0 && !d.stable() {
        findings.warn(
            resource,
            format!("{problem}; counts are not raised where failover is not required"),
        );
    }
    None
}

/// The smallest count from `start` (at most `limit`) whose degraded state
/// survives; `None` when none up to `limit` does.
pub(crate) fn smallest_surviving(
    start: u32,
    limit: u32,
    mut survives: impl FnMut(u32) -> bool,
) -> Option<u32> {
    let mut n = start.max(1);
    while n <= limit {
        if survives(n) {
            return Some(n);
        }
        n += 1;
    }
    None
}

/// The largest whole target-tracking value per unit at which target
/// tracking, holding `demand` at that value per unit, still runs `n` units:
/// the largest integer below `demand / (n − 1)`. Returns `current` when it
/// already settles at `n` or more. A failure-sized count is only kept at
/// peak if the scaling policy asks for it.
pub(crate) fn target_settling_at(demand: f64, n: u32, current: f64) -> f64 {
    if n <= 1 || current <= 0.0 || (demand / current).ceil() >= f64::from(n) {
        return current;
    }
    let below = (demand / f64::from(n - 1)).ceil() - 1.0;
    below.max(1.0).min(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_az_takes_its_share_rounded_up() {
        // 4 tasks over 3 AZs sit 2 + 1 + 1: the worst AZ takes 2.
        assert_eq!(lost_in_one_az(4, 3), 2);
        assert_eq!(lost_in_one_az(5, 3), 2);
        assert_eq!(lost_in_one_az(6, 3), 2);
        // Fewer nodes than AZs: one node per AZ, so one is lost (N+1).
        assert_eq!(lost_in_one_az(2, 3), 1);
        assert_eq!(lost_in_one_az(3, 2), 2);
        // A single AZ: only a node loss is modelled.
        assert_eq!(lost_in_one_az(3, 1), 1);
        assert_eq!(lost_in_one_az(0, 3), 0);
    }

    #[test]
    fn target_settles_at_the_failure_count() {
        // 507.5 streams at 150 per task settle at 4 tasks; to run 5 the
        // target must be below 507.5 / 4 = 126.9, so 126 (507.5 / 126 = 4.03 → 5).
        assert_eq!(target_settling_at(507.5, 5, 150.0), 126.0);
        // Already at 5 or more: unchanged.
        assert_eq!(target_settling_at(507.5, 4, 150.0), 150.0);
        assert_eq!(target_settling_at(10.0, 1, 3.0), 3.0);
    }

    #[test]
    fn smallest_surviving_searches_up_from_start() {
        assert_eq!(smallest_surviving(2, 10, |n| n >= 5), Some(5));
        assert_eq!(smallest_surviving(0, 10, |_| true), Some(1));
        assert_eq!(smallest_surviving(2, 4, |n| n >= 5), None);
    }
}
