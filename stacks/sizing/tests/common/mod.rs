//! Fixtures: the shipped environment files themselves (environments/*.yaml,
//! read here: their `targets`, `llm`, `accepted_shortfalls`, region, AZs and
//! failover), so a test of "prod" sizes what prod really asks for; and
//! hand-built variants (`base`, `*_with_capacity`) for what the files do not
//! contain.

#![allow(dead_code)]

use sizing::*;

pub fn seed_budgets() -> LatencyBudgets {
    LatencyBudgets::SEED
}

pub fn seed_mix() -> TierMix {
    TierMix {
        template: 35.0,
        simple_llm: 25.0,
        standard_llm: 30.0,
        complex: 10.0,
    }
}

fn traffic(sessions: u32, peak_factor: f64) -> Traffic {
    Traffic {
        concurrent_sessions: sessions,
        messages_per_session_per_minute: 2.0,
        peak_factor,
        cache_hit_ratio: 0.35,
        rules_confident_share: 0.6,
        hourly_profile: None,
        timezone: None,
    }
}

fn base(
    name: &str,
    is_production: bool,
    failover: bool,
    az: u32,
    sessions: u32,
    peak: f64,
    quota: u64,
) -> SizingInput {
    SizingInput {
        env_name: name.to_owned(),
        is_production,
        az_count: az,
        region: "us-east-1".into(),
        failover_required: failover,
        targets: Targets {
            latency_ms: seed_budgets(),
            traffic: traffic(sessions, peak),
            tier_mix: seed_mix(),
        },
        llm: Llm {
            model_id: "anthropic.claude-3-5-sonnet-20240620-v1:0".to_owned(),
            tokens_per_minute_quota: quota,
            requests_per_minute_quota: None,
            max_tokens: 400,
            tiers: Default::default(),
        },
        overrides: Overrides::default(),
        acknowledged_overrides: Vec::new(),
        accepted_shortfalls: Vec::new(),
    }
}

/// The parts of an environment file sizing reads (other keys are ignored here;
/// mangactl's own parser in `stacks::env` checks them).
#[derive(serde::Deserialize)]
struct EnvFile {
    name: String,
    region: String,
    az_count: u32,
    protection: EnvProtection,
    targets: Targets,
    llm: Llm,
    #[serde(default)]
    accepted_shortfalls: Vec<AcceptedShortfall>,
}

#[derive(serde::Deserialize)]
struct EnvProtection {
    failover: bool,
}

/// The sizing input of a shipped environment file (`environments/NAME.yaml`).
pub fn from_env_file(name: &str) -> SizingInput {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../environments/{name}.yaml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let f: EnvFile =
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    SizingInput {
        is_production: is_production(&f.name),
        env_name: f.name,
        az_count: f.az_count,
        region: f.region,
        failover_required: f.protection.failover,
        targets: f.targets,
        llm: f.llm,
        overrides: Overrides::default(),
        acknowledged_overrides: Vec::new(),
        accepted_shortfalls: f.accepted_shortfalls,
    }
}

/// environments/prod.yaml (it has no capacity section: pure sizing).
pub fn prod() -> SizingInput {
    from_env_file("prod")
}

/// environments/staging.yaml.
pub fn staging() -> SizingInput {
    from_env_file("staging")
}

/// environments/dev.yaml.
pub fn dev() -> SizingInput {
    from_env_file("dev")
}

/// prod.yaml with an explicit capacity section (a fixture: the shipped file has none).
pub fn prod_with_capacity() -> SizingInput {
    let mut i = prod();
    i.overrides = Overrides {
        service: Some(ServiceOverride {
            cpu: Some(1024),
            memory_mib: Some(2048),
            tasks: Some(9),
            min_tasks: Some(6),
            max_tasks: Some(36),
        }),
        redis: Some(RedisOverride {
            node_type: Some("cache.r7g.large".into()),
            shards: Some(1),
            replicas_per_shard: Some(2),
        }),
        dax: Some(DaxOverride {
            node_type: Some("dax.r5.large".into()),
            nodes: Some(3),
        }),
        dynamodb: Some(DynamoDbOverride {
            billing: Some(Billing::OnDemand),
            rcu: None,
            wcu: None,
        }),
        // Failure sizing (issue 15): 375 retrievals/s × 2 searches (hybrid:
        // BM25 and k-NN) × 12 ms = 9 Erlangs on 2 threads per OCU. 8 OCUs
        // split 4 + 4 over two AZs leave 8 threads at ρ = 1.125 (unstable)
        // with one AZ gone; 10 leave 5 OCUs, 10 threads at ρ = 0.9.
        opensearch: Some(OpenSearchOverride {
            search_ocu_min: Some(10),
            search_ocu_max: Some(20),
            indexing_ocu_min: Some(2),
            indexing_ocu_max: Some(4),
            standby_replicas: Some(true),
        }),
        // Failure sizing: 200 intents/s × 20 ms = 4 Erlangs. 2 × ml.c6i.xlarge
        // = 8 workers at ρ = 0.5; losing one (an AZ of 3 holds one of them)
        // leaves 4 workers at ρ = 1.0, unstable, so 3: losing one leaves 8
        // workers at ρ = 0.5.
        sagemaker: Some(SageMakerOverride {
            instance_type: Some("ml.c6i.xlarge".into()),
            instances: Some(3),
            max_instances: Some(9),
        }),
    };
    i
}

/// staging.yaml with an explicit capacity section (a fixture).
pub fn staging_with_capacity() -> SizingInput {
    let mut i = staging();
    i.overrides = Overrides {
        service: Some(ServiceOverride {
            cpu: Some(1024),
            memory_mib: Some(2048),
            tasks: Some(2),
            min_tasks: Some(2),
            max_tasks: Some(8),
        }),
        redis: Some(RedisOverride {
            node_type: Some("cache.t4g.medium".into()),
            shards: Some(1),
            replicas_per_shard: Some(1),
        }),
        // Every memory read goes to the primary (the runtime's head + six
        // turns a message): a t3.medium's queue would miss memory_read.
        dax: Some(DaxOverride {
            node_type: Some("dax.r5.large".into()),
            nodes: Some(2),
        }),
        dynamodb: Some(DynamoDbOverride {
            billing: Some(Billing::OnDemand),
            rcu: None,
            wcu: None,
        }),
        opensearch: Some(OpenSearchOverride {
            search_ocu_min: Some(2),
            search_ocu_max: Some(4),
            indexing_ocu_min: Some(2),
            indexing_ocu_max: Some(2),
            standby_replicas: Some(true),
        }),
        sagemaker: Some(SageMakerOverride {
            instance_type: Some("ml.c6i.large".into()),
            instances: Some(1),
            max_instances: Some(3),
        }),
    };
    i
}

/// dev.yaml with an explicit capacity section (a fixture).
pub fn dev_with_capacity() -> SizingInput {
    let mut i = dev();
    i.overrides = Overrides {
        service: Some(ServiceOverride {
            cpu: Some(512),
            memory_mib: Some(1024),
            tasks: Some(1),
            min_tasks: Some(1),
            max_tasks: Some(2),
        }),
        redis: Some(RedisOverride {
            node_type: Some("cache.t4g.micro".into()),
            shards: Some(1),
            replicas_per_shard: Some(0),
        }),
        dax: Some(DaxOverride {
            node_type: Some("dax.t3.small".into()),
            nodes: Some(1),
        }),
        dynamodb: Some(DynamoDbOverride {
            billing: Some(Billing::OnDemand),
            rcu: None,
            wcu: None,
        }),
        opensearch: Some(OpenSearchOverride {
            search_ocu_min: Some(1),
            search_ocu_max: Some(2),
            indexing_ocu_min: Some(1),
            indexing_ocu_max: Some(2),
            standby_replicas: Some(false),
        }),
        sagemaker: Some(SageMakerOverride {
            instance_type: Some("ml.t2.medium".into()),
            instances: Some(1),
            max_instances: Some(1),
        }),
    };
    i
}

/// Sizes and returns the plan whether or not there were errors (panics only
/// when no plan could be computed at all).
pub fn plan_of(input: &SizingInput) -> SizingPlan {
    match size(input) {
        Ok(p) => p,
        Err(e) => {
            let msg = e.to_string();
            *e.plan.unwrap_or_else(|| panic!("no plan: {msg}"))
        }
    }
}

/// `actual` within `tol` of `expected`.
pub fn close(actual: f64, expected: f64, tol: f64) {
    assert!(
        (actual - expected).abs() <= tol,
        "expected {expected} ± {tol}, got {actual}"
    );
}

/// The bill line named `item`.
pub fn line<'a>(b: &'a sizing::bill::Bill, item: &str) -> &'a sizing::bill::BillLine {
    b.lines
        .iter()
        .find(|l| l.item == item)
        .unwrap_or_else(|| panic!("no line {item}: {b:#?}"))
}
