//! Monthly cost estimate from the dated price tables `data/prices/REGION.yaml`.
//!
//! One table per region, embedded at compile time ([`PRICE_TABLES`]); sizing
//! prices an environment with its region's table and falls back to
//! [`FALLBACK_REGION`]'s, with a warning, for a region without one
//! ([`Prices::embedded_for`], [`Prices::region_warnings`]). Every table
//! prices the same names (checked at load), and an entry a table could not
//! source for its region is listed in its `stand_ins` and warned about. The
//! bill's lines that are not capacity are in `crate::bill`.
//!
//! Engineers should see what a target costs before they deploy it, so every
//! resource in the plan carries a monthly estimate. Capacity billed by the hour
//! is costed at the sized count for 730 hours (an upper estimate where
//! autoscaling runs fewer tasks off-peak); request- and token-billed usage is
//! costed at the average (not peak) rate.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::assumptions::{Figure, Sourced};
use crate::error::SizingError;

/// The embedded price tables: region, file (for errors) and text. To add a
/// region, add its file here with every name the others price.
pub const PRICE_TABLES: &[(&str, &str, &str)] = &[
    (
        "us-east-1",
        "prices/us-east-1.yaml",
        include_str!("../data/prices/us-east-1.yaml"),
    ),
    (
        "ap-northeast-1",
        "prices/ap-northeast-1.yaml",
        include_str!("../data/prices/ap-northeast-1.yaml"),
    ),
];

/// The table used for a region without its own.
pub const FALLBACK_REGION: &str = "us-east-1";

/// Hours in a month, as the AWS Pricing Calculator counts them.
pub const HOURS_PER_MONTH: f64 = 730.0;

/// Seconds in that month, for per-request and per-token usage.
pub const SECONDS_PER_MONTH: f64 = HOURS_PER_MONTH * 3600.0;

/// Fargate per-vCPU and per-GB hourly prices.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FargatePrice {
    pub vcpu_hour: f64,
    pub gb_hour: f64,
    pub source: String,
    pub date: String,
}

/// Hourly price of one node or instance type.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodePrice {
    pub name: String,
    pub hourly: f64,
    pub source: String,
    pub date: String,
}

/// OpenSearch Serverless OCU price.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OcuPrice {
    pub ocu_hour: f64,
    pub source: String,
    pub date: String,
}

/// DynamoDB request and capacity prices.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamoDbPrice {
    pub on_demand_read_per_million: f64,
    pub on_demand_write_per_million: f64,
    pub rcu_hour: f64,
    pub wcu_hour: f64,
    pub source: String,
    pub date: String,
}

/// Bedrock token prices of one model.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenPrice {
    pub model_id: String,
    pub input_per_1k_tokens: f64,
    pub output_per_1k_tokens: f64,
    pub source: String,
    pub date: String,
}

/// The whole price table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    pub region: String,
    pub currency: String,
    pub fargate: FargatePrice,
    pub elasticache: Vec<NodePrice>,
    pub dax: Vec<NodePrice>,
    pub sagemaker: Vec<NodePrice>,
    pub opensearch_serverless: OcuPrice,
    pub dynamodb: DynamoDbPrice,
    pub bedrock: Vec<TokenPrice>,
    pub fargate_arm: FargatePrice,
    pub usage: UsagePrices,
    /// Entries (names as [`Prices::entries`] gives them) that hold another
    /// region's figure because no source for this region's was found;
    /// sizing warns about them.
    #[serde(default)]
    pub stand_ins: Vec<String>,
}

/// Prices of what the capacity plan does not size but the monthly bill
/// carries ([`crate::bill`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsagePrices {
    pub alb_hour: Figure,
    pub alb_lcu_hour: Figure,
    pub alb_lcu_new_connections_per_s: Figure,
    pub alb_lcu_active_connections_per_min: Figure,
    pub alb_lcu_gb_per_hour: Figure,
    pub cloudfront_data_out_per_gb: Figure,
    pub cloudfront_https_per_10k: Figure,
    pub nat_gateway_hour: Figure,
    pub nat_gateway_per_gb: Figure,
    pub cloudwatch_metric_month: Figure,
    pub cloudwatch_logs_per_gb: Figure,
    pub cloudwatch_alarm_month: Figure,
    pub guardrails_content_per_1k_text_units: Figure,
    pub guardrails_pii_per_1k_text_units: Figure,
    pub valkey_node_discount: Figure,
}

macro_rules! sourced {
    ($($t:ty),* $(,)?) => {$(
        impl Sourced for $t {
            fn source(&self) -> &str { &self.source }
            fn date(&self) -> &str { &self.date }
        }
    )*};
}
sourced!(FargatePrice, NodePrice, OcuPrice, DynamoDbPrice, TokenPrice);

impl Prices {
    /// Parses a price document (an embedded one or a replacement).
    pub fn from_yaml(yaml: &str) -> Result<Self, SizingError> {
        Self::parse("prices.yaml", yaml)
    }

    fn parse(file: &'static str, yaml: &str) -> Result<Self, SizingError> {
        let p: Prices = serde_saphyr::from_str(yaml).map_err(|e| SizingError::Data {
            file,
            detail: e.to_string(),
        })?;
        let names: Vec<String> = p.entries().into_iter().map(|(n, _)| n).collect();
        if let Some(s) = p.stand_ins.iter().find(|s| !names.contains(s)) {
            return Err(SizingError::Data {
                file,
                detail: format!("stand_ins names `{s}`, which the table does not price"),
            });
        }
        Ok(p)
    }

    /// Every embedded table, parsed and checked once: each table's `region`
    /// is its file's, and all price the same names (so no region's bill
    /// silently lacks a line).
    pub fn embedded_all() -> Result<&'static [Prices], SizingError> {
        static PARSED: OnceLock<Result<Vec<Prices>, SizingError>> = OnceLock::new();
        PARSED
            .get_or_init(|| {
                let mut tables = Vec::new();
                for (region, file, yaml) in PRICE_TABLES {
                    let p = Prices::parse(file, yaml)?;
                    if p.region != *region {
                        return Err(SizingError::Data {
                            file,
                            detail: format!("region is `{}`, the file is {region}'s", p.region),
                        });
                    }
                    tables.push(p);
                }
                check_same_names(&tables)?;
                Ok(tables)
            })
            .as_deref()
            .map_err(Clone::clone)
    }

    /// The embedded table of `region`, or [`FALLBACK_REGION`]'s when there
    /// is none ([`Prices::region_warnings`] says so).
    pub fn embedded_for(region: &str) -> Result<&'static Prices, SizingError> {
        let all = Self::embedded_all()?;
        all.iter()
            .find(|p| p.region == region)
            .or_else(|| all.iter().find(|p| p.region == FALLBACK_REGION))
            .ok_or_else(|| SizingError::Data {
                file: "prices/",
                detail: format!("no {FALLBACK_REGION} price table"),
            })
    }

    /// Regions with an embedded table.
    pub fn embedded_regions() -> Vec<&'static str> {
        PRICE_TABLES.iter().map(|(r, _, _)| *r).collect()
    }

    /// What the user should know about pricing `region` with this table:
    /// another region's table, or entries that are another region's figures.
    pub fn region_warnings(&self, region: &str) -> Vec<String> {
        let mut out = Vec::new();
        if self.region != region {
            out.push(format!(
                "prices are {}'s (stacks/sizing/data/prices/ has tables for {} only, none for {region}); the monthly cost is estimated at them",
                self.region,
                Self::embedded_regions().join(", ")
            ));
        }
        if !self.stand_ins.is_empty() {
            out.push(format!(
                "{} of {}'s {} prices are stand-ins (another region's figure, no {} source found; stacks/sizing/data/prices/{}.yaml): {}",
                self.stand_ins.len(),
                self.region,
                self.entries().len(),
                self.region,
                self.region,
                self.stand_ins.join(", ")
            ));
        }
        out
    }

    fn names(&self) -> std::collections::BTreeSet<String> {
        self.entries().into_iter().map(|(n, _)| n).collect()
    }

    /// Every entry with its name, for provenance checks.
    pub fn entries(&self) -> Vec<(String, &dyn Sourced)> {
        let mut out: Vec<(String, &dyn Sourced)> = vec![
            ("fargate".to_owned(), &self.fargate),
            (
                "opensearch_serverless".to_owned(),
                &self.opensearch_serverless,
            ),
            ("dynamodb".to_owned(), &self.dynamodb),
            ("fargate_arm".to_owned(), &self.fargate_arm),
        ];
        let u = &self.usage;
        for (name, f) in [
            ("alb_hour", &u.alb_hour),
            ("alb_lcu_hour", &u.alb_lcu_hour),
            (
                "alb_lcu_new_connections_per_s",
                &u.alb_lcu_new_connections_per_s,
            ),
            (
                "alb_lcu_active_connections_per_min",
                &u.alb_lcu_active_connections_per_min,
            ),
            ("alb_lcu_gb_per_hour", &u.alb_lcu_gb_per_hour),
            ("cloudfront_data_out_per_gb", &u.cloudfront_data_out_per_gb),
            ("cloudfront_https_per_10k", &u.cloudfront_https_per_10k),
            ("nat_gateway_hour", &u.nat_gateway_hour),
            ("nat_gateway_per_gb", &u.nat_gateway_per_gb),
            ("cloudwatch_metric_month", &u.cloudwatch_metric_month),
            ("cloudwatch_logs_per_gb", &u.cloudwatch_logs_per_gb),
            ("cloudwatch_alarm_month", &u.cloudwatch_alarm_month),
            (
                "guardrails_content_per_1k_text_units",
                &u.guardrails_content_per_1k_text_units,
            ),
            (
                "guardrails_pii_per_1k_text_units",
                &u.guardrails_pii_per_1k_text_units,
            ),
            ("valkey_node_discount", &u.valkey_node_discount),
        ] {
            out.push((format!("usage.{name}"), f as &dyn Sourced));
        }
        for (table, rows) in [
            ("elasticache", &self.elasticache),
            ("dax", &self.dax),
            ("sagemaker", &self.sagemaker),
        ] {
            for r in rows {
                out.push((format!("{table}.{}", r.name), r));
            }
        }
        for m in &self.bedrock {
            out.push((format!("bedrock.{}", m.model_id), m));
        }
        out
    }

    fn hourly(table: &'static str, rows: &[NodePrice], name: &str) -> Result<f64, SizingError> {
        rows.iter()
            .find(|r| r.name == name)
            .map(|r| r.hourly)
            .ok_or_else(|| SizingError::Data {
                file: "prices/",
                detail: format!("no {table} price for `{name}`"),
            })
    }

    /// Hourly price of an ElastiCache node type.
    pub fn elasticache_hourly(&self, node_type: &str) -> Result<f64, SizingError> {
        Self::hourly("elasticache", &self.elasticache, node_type)
    }

    /// Hourly price of a DAX node type.
    pub fn dax_hourly(&self, node_type: &str) -> Result<f64, SizingError> {
        Self::hourly("dax", &self.dax, node_type)
    }

    /// Hourly price of a SageMaker instance type.
    pub fn sagemaker_hourly(&self, instance_type: &str) -> Result<f64, SizingError> {
        Self::hourly("sagemaker", &self.sagemaker, instance_type)
    }

    /// Token prices of a Bedrock model.
    pub fn bedrock(&self, model_id: &str) -> Result<&TokenPrice, SizingError> {
        self.bedrock
            .iter()
            .find(|m| m.model_id == model_id)
            .ok_or_else(|| SizingError::Data {
                file: "prices/",
                detail: format!("no bedrock price for `{model_id}`"),
            })
    }
}

/// Every table prices the names the first one does, and no more.
pub fn check_same_names(tables: &[Prices]) -> Result<(), SizingError> {
    if let Some(first) = tables.first() {
        let want = first.names();
        for t in &tables[1..] {
            let have = t.names();
            if have != want {
                let missing: Vec<_> = want.difference(&have).cloned().collect();
                let extra: Vec<_> = have.difference(&want).cloned().collect();
                return Err(SizingError::Data {
                    file: "prices/",
                    detail: format!(
                        "{} prices other names than {}: missing {missing:?}, extra {extra:?}",
                        t.region, first.region
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Monthly cost of `count` units billed at `hourly` for the whole month.
pub fn monthly_hours(count: f64, hourly: f64) -> f64 {
    round_cents(count * hourly * HOURS_PER_MONTH)
}

/// Monthly cost of one Fargate task size times `tasks`.
pub fn fargate_monthly(prices: &Prices, cpu_units: u32, memory_mib: u32, tasks: u32) -> f64 {
    monthly_hours(
        f64::from(tasks),
        fargate_task_hour(&prices.fargate, cpu_units, memory_mib),
    )
}

/// Hourly price of one task of that size at `price` (x86 or ARM).
pub fn fargate_task_hour(price: &FargatePrice, cpu_units: u32, memory_mib: u32) -> f64 {
    f64::from(cpu_units) / 1024.0 * price.vcpu_hour + f64::from(memory_mib) / 1024.0 * price.gb_hour
}

/// Rounds a dollar amount to cents so plans compare and print cleanly.
pub fn round_cents(usd: f64) -> f64 {
    (usd * 100.0).round() / 100.0
}

/// Costs of the whole plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostSummary {
    /// Resources billed by the hour (tasks, nodes, instances, OCUs).
    pub capacity_monthly_usd: f64,
    /// Resources billed per request or token (DynamoDB on-demand, Bedrock).
    pub usage_monthly_usd: f64,
    /// Both together.
    pub total_monthly_usd: f64,
    /// Per resource, keyed by resource name (sorted for stable output).
    pub by_resource: std::collections::BTreeMap<String, f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assumptions::is_iso_date;

    #[test]
    fn every_embedded_table_parses_is_its_files_region_and_every_entry_is_sourced_and_dated() {
        let all = Prices::embedded_all().expect("embedded prices parse and agree");
        let regions: Vec<&str> = all.iter().map(|p| p.region.as_str()).collect();
        assert_eq!(regions, ["us-east-1", "ap-northeast-1"]);
        for p in all {
            for (name, e) in p.entries() {
                assert!(
                    !e.source().trim().is_empty(),
                    "{} {name} has no source",
                    p.region
                );
                assert!(
                    is_iso_date(e.date()),
                    "{} {name} has date {:?}",
                    p.region,
                    e.date()
                );
            }
        }
        // The fallback has no stand-ins: it is where stand-ins come from.
        assert!(Prices::embedded_for(FALLBACK_REGION)
            .expect("fallback")
            .stand_ins
            .is_empty());
    }

    #[test]
    fn a_region_without_a_table_gets_the_fallback() {
        assert_eq!(
            Prices::embedded_for("ap-northeast-1")
                .expect("tokyo")
                .region,
            "ap-northeast-1"
        );
        assert_eq!(
            Prices::embedded_for("eu-west-1").expect("fallback").region,
            "us-east-1"
        );
    }

    #[test]
    fn tables_that_price_different_names_are_refused() {
        let all = Prices::embedded_all().expect("prices");
        let mut tokyo = all[1].clone();
        tokyo.dax.retain(|n| n.name != "dax.r5.large");
        let err = check_same_names(&[all[0].clone(), tokyo]).expect_err("a missing line");
        assert!(err.to_string().contains("dax.dax.r5.large"), "{err}");
    }

    #[test]
    fn a_stand_in_that_names_nothing_is_refused() {
        let yaml = PRICE_TABLES[0].2.replacen(
            "region: us-east-1",
            "region: us-east-1\nstand_ins: [fargate, dax.no-such-node]",
            1,
        );
        let err = Prices::from_yaml(&yaml).expect_err("unknown stand-in");
        assert!(err.to_string().contains("dax.no-such-node"), "{err}");
    }

    #[test]
    fn every_sized_node_type_has_a_price_in_every_table() {
        let a = crate::assumptions::Assumptions::embedded().expect("assumptions parse");
        for p in Prices::embedded_all().expect("prices parse") {
            for n in &a.redis.node_types {
                assert!(
                    p.elasticache_hourly(&n.name).is_ok(),
                    "{} {}",
                    p.region,
                    n.name
                );
            }
            for n in &a.dax.node_types {
                assert!(p.dax_hourly(&n.name).is_ok(), "{} {}", p.region, n.name);
            }
            for n in &a.sagemaker.instance_types {
                assert!(
                    p.sagemaker_hourly(&n.name).is_ok(),
                    "{} {}",
                    p.region,
                    n.name
                );
            }
            for m in &a.bedrock.models {
                assert!(
                    p.bedrock(&m.model_id).is_ok(),
                    "{} {}",
                    p.region,
                    m.model_id
                );
            }
        }
    }

    #[test]
    fn fargate_task_month_by_hand() {
        // 1 vCPU x $0.04048 + 2 GB x $0.004445 = $0.04937/h; x 730 h = $36.04.
        let p = Prices::embedded_for("us-east-1").expect("prices parse");
        assert_eq!(fargate_monthly(p, 1024, 2048, 1), 36.04);
        // Tokyo: 1 vCPU x $0.05056 + 2 GB x $0.00553 = $0.06162/h; x 730 h = $44.98.
        let p = Prices::embedded_for("ap-northeast-1").expect("prices parse");
        assert_eq!(fargate_monthly(p, 1024, 2048, 1), 44.98);
    }
}
