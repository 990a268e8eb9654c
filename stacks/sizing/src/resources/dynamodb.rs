//! DynamoDB conversation-memory table: billing mode and capacity units.
//!
//! On-demand is the default: conversational traffic is spiky and on-demand
//! needs no capacity planning below the per-table limit. The read and write
//! capacity units provisioned mode would need are still computed, both as the
//! values to use when `billing: provisioned` and as a check on the override.
//! Reads that DAX serves from its item cache never reach the table.

use serde::Serialize;

use crate::cost::{monthly_hours, round_cents, SECONDS_PER_MONTH};
use crate::error::Findings;
use crate::input::Billing;

use super::{ceil_u32, pct, round4, Assessment, Binding, Ctx};

/// The sized table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DynamoDbPlan {
    /// Billing mode.
    pub billing: Billing,
    /// Read capacity units (used when provisioned; what provisioned would need otherwise).
    pub rcu: u32,
    /// Write capacity units (likewise).
    pub wcu: u32,
    /// Read request units per second reaching the table at peak.
    pub read_units_per_s: f64,
    /// Write request units per second at peak.
    pub write_units_per_s: f64,
    /// Binding constraint, utilisation, cost and notes.
    pub assessment: Assessment,
}

/// Sizes the table and applies the `capacity.dynamodb` override.
pub(crate) fn size(ctx: &Ctx<'_>, dax_enabled: bool, findings: &mut Findings) -> DynamoDbPlan {
    let ddb = &ctx.a.dynamodb;
    let r = ctx.rates;
    let item_kb = ddb.item_kb.v();
    // Eventually consistent reads cost half a unit per 4 KB; writes one unit per KB.
    let rcu_per_read = (item_kb / 4.0).ceil() * 0.5;
    let wcu_per_write = item_kb.ceil();
    // Through DAX: the item-cache misses (eventually consistent) and the
    // strongly consistent reads DAX passes through (a full unit per 4 KB).
    let (table_reads, read_units) = if dax_enabled {
        let (reads, consistent) = super::dax::reads_per_s(ctx);
        let misses = reads * (1.0 - ctx.a.dax.item_cache_hit_ratio.v());
        (
            misses + consistent,
            misses * rcu_per_read + consistent * rcu_per_read * 2.0,
        )
    } else {
        (r.memory_reads_per_s, r.memory_reads_per_s * rcu_per_read)
    };
    let write_units = r.memory_writes_per_s * wcu_per_write;
    let target = ddb.provisioned_target_utilisation.v();
    let rec_rcu = ceil_u32(read_units / target).max(1);
    let rec_wcu = ceil_u32(write_units / target).max(1);

    let ov = ctx.input.overrides.dynamodb.as_ref();
    let billing = ov.and_then(|o| o.billing).unwrap_or(Billing::OnDemand);
    let rcu = ov.and_then(|o| o.rcu).unwrap_or(rec_rcu);
    let wcu = ov.and_then(|o| o.wcu).unwrap_or(rec_wcu);

    let mut notes = vec![format!(
        "{:.0} reads/s{} × {rcu_per_read} RCU + {:.0} writes/s × {wcu_per_write} WCU ({item_kb} KB items)",
        table_reads,
        if dax_enabled { " past DAX" } else { "" },
        r.memory_writes_per_s
    )];
    let limit = ddb.on_demand_table_limit_units_per_s.v();
    let (binding, utilisation, cost) = match billing {
        Billing::OnDemand => {
            notes.push(format!(
                "on-demand; provisioned would need {rec_rcu} RCU / {rec_wcu} WCU at {} target",
                pct(target)
            ));
            let p = &ctx.prices.dynamodb;
            let peak_factor = ctx.input.targets.traffic.peak_factor.max(1.0);
            let monthly = (read_units * p.on_demand_read_per_million
                + write_units * p.on_demand_write_per_million)
                / peak_factor
                * SECONDS_PER_MONTH
                / 1e6;
            (
                Binding::OnDemand,
                read_units.max(write_units) / limit,
                round_cents(monthly),
            )
        }
        Billing::Provisioned => {
            let p = &ctx.prices.dynamodb;
            let monthly = monthly_hours(f64::from(rcu), p.rcu_hour)
                + monthly_hours(f64::from(wcu), p.wcu_hour);
            (
                Binding::OpsPerSecond,
                (read_units / f64::from(rcu.max(1))).max(write_units / f64::from(wcu.max(1))),
                round_cents(monthly),
            )
        }
    };
    if read_units.max(write_units) > limit {
        findings.warn(
            "dynamodb",
            format!(
                "{:.0} request units/s at peak exceed the default per-table limit of {limit:.0}; request a quota increase",
                read_units.max(write_units)
            ),
        );
    }
    if let Some(o) = ov {
        if billing == Billing::Provisioned && (rcu < rec_rcu || wcu < rec_wcu) {
            findings.override_shortfall(
                "dynamodb",
                format!(
                    "{rcu} RCU / {wcu} WCU below the {rec_rcu} RCU / {rec_wcu} WCU peak needs at {} utilisation (throttling)",
                    pct(target)
                ),
                ctx.is_production(),
                ctx.acknowledged("dynamodb"),
            );
        }
        if billing == Billing::OnDemand && (o.rcu.is_some() || o.wcu.is_some()) {
            findings.warn("dynamodb", "rcu/wcu are ignored with on-demand billing");
        }
    }

    DynamoDbPlan {
        billing,
        rcu,
        wcu,
        read_units_per_s: round4(read_units),
        write_units_per_s: round4(write_units),
        // `billing: on_demand` alone restates the default; only provisioned
        // capacity is a real override of the sizing.
        assessment: Assessment::new(
            binding,
            utilisation,
            cost,
            billing == Billing::Provisioned,
            notes,
        ),
    }
}
