use super::*;

const DEV: &str = include_str!("../../../environments/dev.yaml");

fn parse_as(text: &str, name: &str) -> Result<Environment, EnvError> {
    parse(text, Path::new(&format!("environments/{name}.yaml")))
}

fn problems(text: &str, name: &str) -> Vec<Problem> {
    match parse_as(text, name) {
        Err(EnvError::Invalid { problems, .. }) => problems,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn shipped_environments_are_valid() {
    for name in ["dev", "staging", "prod", "tokyo"] {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../environments/{name}.yaml"));
        let env = load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(env.name, name);
        assert_eq!(env.targets.latency_ms.end_to_end_p95, 2000);
        assert_eq!(env.targets.latency_ms.first_token, 400);
    }
}

#[test]
fn unknown_field_names_line_column_and_field() {
    let text = DEV.replace(
        "    cache_hit: 2\n",
        "    cache_hit: 2\n    cache_hitt: 3\n",
    );
    let p = problems(&text, "dev");
    assert_eq!(p.len(), 1);
    let line = text
        .lines()
        .position(|l| l.contains("cache_hitt"))
        .expect("line") as u64
        + 1;
    assert_eq!((p[0].line, p[0].column), (line, 5));
    assert_eq!(p[0].field, "targets.latency_ms.cache_hitt");
    assert!(
        p[0].message.contains("unknown field `cache_hitt`"),
        "{}",
        p[0].message
    );
}

#[test]
fn wrong_type_names_the_value_found() {
    let text = DEV.replace("az_count: 2", "az_count: two");
    let p = problems(&text, "dev");
    assert_eq!(p[0].field, "az_count");
    assert_eq!((p[0].line, p[0].column), (5, 11));
    assert!(p[0].message.contains("found `two`"), "{}", p[0].message);
}

#[test]
fn missing_field_is_named() {
    let text = DEV.replace("    first_token: 400\n", "");
    let p = problems(&text, "dev");
    assert!(
        p[0].message.contains("missing field `first_token`"),
        "{}",
        p[0].message
    );
    assert_eq!(p[0].field, "targets.latency_ms");
}

#[test]
fn semantic_problems_are_all_reported_at_once() {
    let text = DEV
        .replace("region: us-east-1", "region: mars-north-1")
        .replace("complex: 10", "complex: 11")
        .replace("cache_hit_ratio: 0.35", "cache_hit_ratio: 1.5")
        + "capacity:\n  service:\n    cpu: 512\n    memory_mib: 1000\n";
    let p = problems(&text, "dev");
    let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "region",
            "targets.traffic.cache_hit_ratio",
            "targets.tier_mix",
            "capacity.service.memory_mib"
        ],
        "{p:#?}"
    );
    let rendered = EnvError::Invalid {
        path: "environments/dev.yaml".into(),
        problems: p,
    }
    .to_string();
    assert!(
        rendered.starts_with("4 problems in environments/dev.yaml:"),
        "{rendered}"
    );
    assert!(
        rendered.contains("\nenvironments/dev.yaml:4:9: field `region`: must be a commercial AWS Region such as us-east-1 or ap-northeast-1, got `mars-north-1`"),
        "{rendered}"
    );
}

#[test]
fn prod_rules_apply_to_prod_only() {
    let overrides = "capacity:\n  redis:\n    replicas_per_shard: 0\n  dax:\n    nodes: 1\n";
    let prod = DEV.replace("name: dev", "name: prod") + overrides;
    let p = problems(&prod, "prod");
    let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "protection.termination_protection",
            "protection.retain_data",
            "protection.failover",
            "capacity.redis.replicas_per_shard",
            "capacity.dax.nodes"
        ]
    );
    assert!(parse_as(&(DEV.to_owned() + overrides), "dev").is_ok());
}

#[test]
fn regions_certificates_and_customers_follow_the_environment() {
    const TOKYO: &str = include_str!("../../../environments/tokyo.yaml");
    let env = parse_as(TOKYO, "tokyo").expect("tokyo");
    assert_eq!(env.region, "ap-northeast-1");
    assert_eq!(env.edge.price_class, "PriceClass_200");
    let d = env.domain.as_ref().expect("domain");
    assert!(d.certificate_arn.starts_with("arn:aws:acm:ap-northeast-1:"));
    assert!(d.edge_certificate_arn.starts_with("arn:aws:acm:us-east-1:"));

    // Outside us-east-1 CloudFront needs its own certificate there.
    let no_edge_cert: String = TOKYO
        .lines()
        .filter(|l| !l.contains("edge_certificate_arn"))
        .map(|l| format!("{l}\n"))
        .collect();
    let p = problems(&no_edge_cert, "tokyo");
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(p[0].field, "domain.edge_certificate_arn");
    assert!(
        p[0].message.contains("required outside us-east-1"),
        "{}",
        p[0].message
    );

    // The load balancer's certificate must be in the environment's region.
    let wrong_region = TOKYO.replace(
        "certificate_arn: arn:aws:acm:ap-northeast-1:",
        "certificate_arn: arn:aws:acm:us-west-2:",
    );
    let p = problems(&wrong_region, "tokyo");
    assert_eq!(p[0].field, "domain.certificate_arn", "{p:#?}");
    assert!(
        p[0].message.contains("arn:aws:acm:ap-northeast-1:"),
        "{}",
        p[0].message
    );

    // Customer areas set the price class; an unknown one is named.
    let everywhere = TOKYO.replace(
        "customers: [japan, asia]",
        "customers: [japan, south_america]",
    );
    assert_eq!(
        parse_as(&everywhere, "tokyo")
            .expect("valid")
            .edge
            .price_class,
        "PriceClass_All"
    );
    let p = problems(
        &TOKYO.replace("customers: [japan, asia]", "customers: [japan, atlantis]"),
        "tokyo",
    );
    assert_eq!(p[0].field, "edge.customers");
    assert!(
        p[0].message.contains("unknown area `atlantis`"),
        "{}",
        p[0].message
    );

    // Without an edge section: North America and Europe, as before.
    let dev = parse_as(DEV, "dev").expect("dev");
    assert_eq!(dev.edge.price_class, "PriceClass_100");
}

#[test]
fn accepted_drift_entries_are_checked() {
    let ok = format!(
        "{DEV}drift:\n  accept:\n    - stack: service\n      logical_id: Service\n      path: /DesiredCount\n      reason: the autoscaler owns it\n      expires: 2027-01-31\n"
    );
    let env = parse_as(&ok, "dev").expect("valid");
    assert_eq!(env.accepted_drift.len(), 1);
    assert_eq!(env.accepted_drift[0].stack, crate::stacks::StackId::Service);
    assert_eq!(env.accepted_drift[0].expires.as_deref(), Some("2027-01-31"));
    let bad = format!(
        "{DEV}drift:\n  accept:\n    - stack: servise\n      logical_id: Service\n      path: DesiredCount\n      reason: the autoscaler owns it\n      expires: 31.01.2027\n"
    );
    let p = problems(&bad, "dev");
    let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "drift.accept.stack",
            "drift.accept.path",
            "drift.accept.expires"
        ],
        "{p:#?}"
    );
}

#[test]
fn name_must_match_file() {
    let p = problems(DEV, "other");
    assert_eq!(p[0].field, "name");
    assert!(p[0].message.contains("must match the file name `other`"));
}

#[test]
fn duplicate_keys_and_syntax_errors_have_positions() {
    let dup = DEV.replace("az_count: 2\n", "az_count: 2\naz_count: 3\n");
    let p = problems(&dup, "dev");
    assert!(p[0].message.contains("duplicate"), "{}", p[0].message);
    assert_eq!(p[0].line, 6);
    let broken = DEV.replace("tags:\n", "tags: [\n");
    let p = problems(&broken, "dev");
    assert!(p[0].line > 1, "{p:?}");
}

#[test]
fn resolve_lists_available_environments() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../environments");
    match resolve("nope", &dir) {
        Err(e @ EnvError::Unknown { .. }) => {
            assert!(
                e.to_string().contains("available: dev, prod, staging"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(resolve("dev", &dir).is_ok());
    assert_eq!(
        resolve("x/y.yaml", &dir).ok(),
        Some(PathBuf::from("x/y.yaml"))
    );
}

#[test]
fn overrides_are_partial_and_checked() {
    let text = DEV.to_owned()
        + "capacity:\n  service:\n    min_tasks: 3\n  dynamodb:\n    billing: provisioned\n    rcu: 100\n    wcu: 20\n  acknowledged_overrides: [service]\n";
    let env = parse_as(&text, "dev").expect("valid");
    let service = env.capacity.service.as_ref().expect("service override");
    assert_eq!(
        (service.min_tasks, service.tasks, service.cpu),
        (Some(3), None, None)
    );
    let ddb = env.capacity.dynamodb.as_ref().expect("dynamodb override");
    assert_eq!(
        (ddb.billing, ddb.rcu, ddb.wcu),
        (Some(Billing::Provisioned), Some(100), Some(20))
    );
    assert!(env.capacity.redis.is_none());
    assert_eq!(env.acknowledged_overrides, vec!["service".to_owned()]);
    assert_eq!(
        env.sizing_input()
            .overrides
            .service
            .and_then(|s| s.min_tasks),
        Some(3)
    );

    let bad = DEV.to_owned() + "capacity:\n  dynamodb:\n    billing: on_demand\n    rcu: 5\n  acknowledged_overrides: [redsi]\n";
    let p = problems(&bad, "dev");
    let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        ["capacity.dynamodb", "capacity.acknowledged_overrides"],
        "{p:#?}"
    );
    assert!(
        p[1].message.contains("`redsi` is not a resource"),
        "{}",
        p[1].message
    );
}

#[test]
fn shipped_environments_size_within_their_accepted_shortfalls() {
    for name in ["dev", "staging", "prod", "tokyo"] {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../environments/{name}.yaml"));
        let env = load(&path).expect("loads");
        let plan = sizing::size(&env.sizing_input()).unwrap_or_else(|e| panic!("{name}: {e}"));
        // The model's public figures miss the seed's first-token and
        // streaming budgets; each file accepts exactly those misses.
        let accepted: Vec<&str> = env
            .accepted_shortfalls
            .iter()
            .map(|a| a.stage.key())
            .collect();
        assert_eq!(
            accepted,
            ["first_token", "streaming", "end_to_end"],
            "{name}"
        );
        for row in &plan.budget.rows {
            let llm = matches!(
                row.stage,
                sizing::Stage::FirstToken | sizing::Stage::Streaming
            );
            assert_eq!(row.slack_ms < 0.0, llm, "{name}: {row:?}");
        }
        // Warnings: the accepted misses and their remedies, Bedrock's quotas
        // and model lifecycle, and (outside us-east-1) the price table's region.
        for w in &plan.warnings {
            let ok = match w.resource.as_str() {
                "budget" => {
                    w.message.contains("accepted up to") || w.message.contains("would help")
                }
                "bedrock" => true,
                "cost" => env.region != "us-east-1",
                _ => false,
            };
            assert!(ok, "{name}: {w}");
        }
    }
}

#[test]
fn origin_secret_pins_a_version_and_previous_needs_one() {
    let env = parse_as(DEV, "dev").expect("dev");
    assert_eq!(env.origin_secret, OriginSecret::default());

    let pinned = format!(
        "{DEV}origin_secret:\n  version_id: 3f0c9a4e-8d2b-4c1a-9e7f-5b6a7c8d9e0f\n  accept_previous: true\n"
    );
    let env = parse_as(&pinned, "dev").expect("pinned");
    assert_eq!(
        env.origin_secret.version_id.as_deref(),
        Some("3f0c9a4e-8d2b-4c1a-9e7f-5b6a7c8d9e0f")
    );
    assert!(env.origin_secret.accept_previous);

    let bad = format!("{DEV}origin_secret:\n  version_id: short\n");
    let p = problems(&bad, "dev");
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].field, "origin_secret.version_id");

    let unpinned = format!("{DEV}origin_secret:\n  accept_previous: true\n");
    let p = problems(&unpinned, "dev");
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].field, "origin_secret.accept_previous");
    assert!(p[0].message.contains("version_id"), "{}", p[0].message);
}

#[test]
fn alerts_are_checked_and_prod_must_have_one() {
    let env = parse_as(DEV, "dev").expect("dev");
    assert_eq!(
        env.alerts.email,
        vec!["platform-dev@mangaassist.example.com".to_owned()]
    );

    let bad = DEV.replace(
        "  email: [platform-dev@mangaassist.example.com]\n",
        "  email: [not-an-address]\n  https: [http://insecure.example.com/hook]\n  sns_topic_arns: [\"arn:aws:sns:eu-west-1:123456789012:pager\", a, b, c, d]\n",
    );
    let p = problems(&bad, "dev");
    let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
    assert!(fields.contains(&"alerts.email"), "{p:?}");
    assert!(fields.contains(&"alerts.https"), "{p:?}");
    // Another Region's topic, four bad ARNs, and one topic too many.
    assert_eq!(
        fields
            .iter()
            .filter(|f| **f == "alerts.sns_topic_arns")
            .count(),
        6,
        "{p:?}"
    );

    let prod = include_str!("../../../environments/prod.yaml");
    let start = prod.find("alerts:\n").expect("prod has alerts");
    let end = prod[start..].find("targets:\n").expect("then targets") + start;
    let silent = format!("{}{}", &prod[..start], &prod[end..]);
    let p = problems(&silent, "prod");
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].field, "alerts");
    assert!(p[0].message.contains("page someone"), "{}", p[0].message);
}

#[test]
fn hourly_profile_is_checked_value_by_value_with_positions() {
    // 23 values, one of them negative: both problems, each where it is.
    let mut hours = vec!["1"; 23];
    hours[5] = "-0.5";
    let with_profile = |values: &str| {
        DEV.lines()
            .map(|l| {
                if l.starts_with("    hourly_profile:") {
                    format!("    hourly_profile: [{values}]")
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let text = with_profile(&hours.join(", "));
    let p = problems(&text, "dev");
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(p
        .iter()
        .all(|p| p.field == "targets.traffic.hourly_profile"));
    assert!(p[0].message.contains("must have 24 values"), "{p:#?}");
    assert!(
        p[1].message.contains("non-negative number, got -0.5"),
        "{p:#?}"
    );
    // The bad value's own column, not the list's.
    assert!(p[1].column > p[0].column, "{p:#?}");

    // 24 good values parse and reach sizing.
    let ok = with_profile(&["2"; 24].join(", "));
    let env = parse_as(&ok, "dev").expect("valid");
    assert_eq!(
        env.sizing_input().targets.traffic.hourly_profile,
        Some(vec![2.0; 24])
    );
}

#[test]
fn the_profiles_time_zone_must_be_an_iana_name_with_its_position() {
    let with_zone = |zone: &str| {
        DEV.lines()
            .map(|l| {
                if l.starts_with("    hourly_profile:") {
                    format!("{l}\n    timezone: {zone}")
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let p = problems(&with_zone("Tokyo"), "dev");
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(p[0].field, "targets.traffic.timezone");
    assert!(
        p[0].message.contains("\"Tokyo\" is not an IANA time zone"),
        "{p:#?}"
    );
    let line = with_zone("Tokyo")
        .lines()
        .position(|l| l.contains("timezone: Tokyo"))
        .expect("line")
        + 1;
    assert_eq!(p[0].line, line as u64, "{p:#?}");
    let env = parse_as(&with_zone("Asia/Tokyo"), "dev").expect("valid");
    assert_eq!(
        env.sizing_input().targets.traffic.timezone.as_deref(),
        Some("Asia/Tokyo")
    );
}

#[test]
fn tier_models_bring_their_quotas_once_with_positions() {
    // The shipped dev file puts the simple tier on Nova Micro.
    let env = parse_as(DEV, "dev").expect("dev");
    assert_eq!(env.llm.model_for("simple_llm"), "amazon.nova-micro-v1:0");
    assert_eq!(env.llm.model_for("standard_llm"), env.llm.model_id);
    let models = env.llm.models();
    assert_eq!(models.len(), 2, "{models:?}");
    assert_eq!(models[1].tiers, ["simple_llm"]);

    // A new model without its quota, and the default model with a quota
    // again: both named, with their lines.
    let text = DEV.replace(
        "  tiers:\n    simple_llm:\n      model_id: amazon.nova-micro-v1:0\n      tokens_per_minute_quota: 200000\n",
        "  tiers:\n    simple_llm:\n      model_id: amazon.nova-lite-v1:0\n    complex:\n      model_id: anthropic.claude-3-5-sonnet-20240620-v1:0\n      tokens_per_minute_quota: 5\n",
    );
    assert_ne!(text, DEV, "the dev file's tiers section moved");
    let p = problems(&text, "dev");
    let line_of =
        |needle: &str| text.lines().position(|l| l.contains(needle)).expect("line") as u64 + 1;
    let missing = p
        .iter()
        .find(|p| p.field == "llm.tiers.simple_llm.tokens_per_minute_quota")
        .unwrap_or_else(|| panic!("{p:?}"));
    assert!(
        missing.message.contains("amazon.nova-lite-v1:0"),
        "{missing:?}"
    );
    let again = p
        .iter()
        .find(|p| p.field == "llm.tiers.complex.tokens_per_minute_quota")
        .unwrap_or_else(|| panic!("{p:?}"));
    assert_eq!(again.line, line_of("tokens_per_minute_quota: 5"));
    assert!(again.message.contains("give them once"), "{again:?}");
    assert_eq!(p.len(), 2, "{p:?}");

    // An unknown tier is a field error like any other.
    let text = DEV.replace(
        "    simple_llm:\n      model_id: amazon.nova",
        "    template:\n      model_id: amazon.nova",
    );
    let p = problems(&text, "dev");
    assert!(p.iter().any(|p| p.message.contains("template")), "{p:?}");
}
