//! Phase two: raw environment → validated [`Environment`], collecting every
//! problem with its position instead of stopping at the first.

use std::path::Path;

use serde_saphyr::Spanned;

use super::raw::*;
// The one Fargate size table (sizing chooses from it, validation checks overrides against it).
use super::*;
use sizing::input::AcceptedShortfall;
use sizing::resources::service::{is_valid_fargate, FARGATE_CPU};
use sizing::Stage;

struct Checker<'a> {
    text: &'a str,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn fail<T>(&mut self, at: &Spanned<T>, field: &str, message: impl Into<String>) {
        let (line, column) = (at.referenced.line(), at.referenced.column());
        self.problems.push(Problem {
            line,
            column,
            field: field.to_owned(),
            message: message.into(),
            snippet: super::source_line(self.text, line),
        });
    }

    fn require<T>(&mut self, ok: bool, at: &Spanned<T>, field: &str, message: impl Into<String>) {
        if !ok {
            self.fail(at, field, message);
        }
    }

    fn positive(&mut self, at: &Spanned<u32>, field: &str) -> u32 {
        self.require(at.value > 0, at, field, "must be greater than 0");
        at.value
    }

    fn between(&mut self, at: &Spanned<u32>, field: &str, lo: u32, hi: u32) -> u32 {
        self.require(
            (lo..=hi).contains(&at.value),
            at,
            field,
            format!("must be between {lo} and {hi}, got {}", at.value),
        );
        at.value
    }

    fn ratio(&mut self, at: &Spanned<f64>, field: &str) -> f64 {
        let v = at.value;
        self.require(
            v.is_finite() && (0.0..=1.0).contains(&v),
            at,
            field,
            format!("must be between 0 and 1, got {v}"),
        );
        v
    }

    fn non_empty(&mut self, at: &Spanned<String>, field: &str) -> String {
        let v = at.value.trim();
        self.require(
            !v.is_empty() && !v.contains(char::is_whitespace),
            at,
            field,
            "must be a non-empty value without spaces",
        );
        v.to_owned()
    }

    fn prefixed(&mut self, at: &Spanned<String>, field: &str, prefix: &str, what: &str) -> String {
        self.require(
            at.value.starts_with(prefix) && at.value.len() > prefix.len(),
            at,
            field,
            format!(
                "must be {what} starting with `{prefix}`, got `{}`",
                at.value
            ),
        );
        at.value.clone()
    }
}

/// `YYYY-MM-DD` with a plausible month and day.
fn is_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    matches!(parts.as_slice(), [y, m, d]
        if y.len() == 4 && m.len() == 2 && d.len() == 2
            && [y, m, d].iter().all(|p| p.chars().all(|c| c.is_ascii_digit()))
            && (1..=12).contains(&m.parse::<u32>().unwrap_or(0))
            && (1..=31).contains(&d.parse::<u32>().unwrap_or(0)))
}

/// CloudFront's price classes, cheapest first.
const PRICE_CLASSES: [&str; 3] = ["PriceClass_100", "PriceClass_200", "PriceClass_All"];

fn price_rank(class: &str) -> usize {
    PRICE_CLASSES.iter().position(|c| *c == class).unwrap_or(2)
}

/// Tag keys mangactl sets itself on every stack.
pub const RESERVED_TAGS: [&str; 2] = ["Environment", "ManagedBy"];

pub(super) fn validate(
    raw: RawEnvironment,
    text: &str,
    path: &Path,
) -> Result<Environment, Vec<Problem>> {
    let mut c = Checker {
        text,
        problems: Vec::new(),
    };

    let name = raw.name.value.clone();
    let name_ok = !name.is_empty()
        && name.len() <= 16
        && name.starts_with(|ch: char| ch.is_ascii_lowercase())
        && name
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-');
    c.require(name_ok, &raw.name, "name", "must be 1-16 characters of a-z, 0-9 and `-`, starting with a letter (it prefixes stack and resource names)");
    if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
        c.require(
            stem == name,
            &raw.name,
            "name",
            format!("must match the file name `{stem}`"),
        );
    }

    let region = raw.region.value.clone();
    // Any commercial region: the edge stack alone lives in us-east-1
    // (stacks::EDGE_REGION) and reaches the service across regions.
    c.require(
        COMMERCIAL_REGIONS.contains(&region.as_str()),
        &raw.region,
        "region",
        format!(
            "must be a commercial AWS Region such as us-east-1 or ap-northeast-1, got `{region}`"
        ),
    );

    let account_id = raw.account_id.as_ref().map(|a| {
        c.require(
            a.value.len() == 12 && a.value.chars().all(|ch| ch.is_ascii_digit()),
            a,
            "account_id",
            "must be 12 digits (quote it so YAML keeps leading zeros)",
        );
        a.value.clone()
    });
    let az_count = c.between(&raw.az_count, "az_count", 2, 6);
    let image = c.non_empty(&raw.image, "image");

    let domain = raw.domain.as_ref().map(|d| {
        let dn = &d.value.name;
        let ok = dn.value.contains('.')
            && dn
                .value
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '.' || ch == '-');
        c.require(
            ok,
            dn,
            "domain.name",
            "must be a DNS name such as chat.example.com",
        );
        // The ALB's certificate lives in the environment's region,
        // CloudFront's in us-east-1: one certificate serves both only when
        // the environment is there.
        let cert = c.prefixed(
            &d.value.certificate_arn,
            "domain.certificate_arn",
            &format!("arn:aws:acm:{region}:"),
            &format!("an ACM certificate ARN in {region} (the load balancer's region)"),
        );
        let edge_prefix = format!("arn:aws:acm:{}:", crate::stacks::EDGE_REGION);
        let edge_cert = match &d.value.edge_certificate_arn {
            Some(e) => c.prefixed(
                e,
                "domain.edge_certificate_arn",
                &edge_prefix,
                "an ACM certificate ARN in us-east-1 (CloudFront requires it)",
            ),
            None => {
                c.require(
                    region == crate::stacks::EDGE_REGION,
                    &d.value.certificate_arn,
                    "domain.edge_certificate_arn",
                    format!("is required outside us-east-1: CloudFront needs a certificate in us-east-1, the load balancer one in {region}"),
                );
                cert.clone()
            }
        };
        Domain {
            name: dn.value.clone(),
            certificate_arn: cert,
            edge_certificate_arn: edge_cert,
        }
    });

    let edge = match &raw.edge {
        Some(e) => {
            let mut class_rank = 0;
            for area in &e.value.customers {
                match CUSTOMER_AREAS.iter().position(|(a, _)| *a == area.value) {
                    Some(i) => class_rank = class_rank.max(price_rank(CUSTOMER_AREAS[i].1)),
                    None => c.fail(
                        area,
                        "edge.customers",
                        format!(
                            "unknown area `{}`; areas are {}",
                            area.value,
                            CUSTOMER_AREAS.map(|(a, _)| a).join(", ")
                        ),
                    ),
                }
            }
            c.require(
                !e.value.customers.is_empty(),
                e,
                "edge.customers",
                "must name at least one area",
            );
            Edge {
                customers: e.value.customers.iter().map(|a| a.value.clone()).collect(),
                price_class: PRICE_CLASSES[class_rank],
            }
        }
        None => Edge {
            customers: vec!["north_america".into(), "europe".into()],
            price_class: PRICE_CLASSES[0],
        },
    };

    let mut accepted_drift = Vec::new();
    for a in raw.drift.iter().flat_map(|d| d.value.accept.iter()) {
        let a = &a.value;
        let stack = crate::stacks::StackId::parse(&a.stack.value);
        if stack.is_none() {
            c.fail(
                &a.stack,
                "drift.accept.stack",
                format!(
                    "unknown stack `{}`; stacks are {}",
                    a.stack.value,
                    crate::stacks::StackId::ALL.map(|s| s.name()).join(", ")
                ),
            );
        }
        let id = c.non_empty(&a.logical_id, "drift.accept.logical_id");
        c.require(
            !a.reason.value.trim().is_empty(),
            &a.reason,
            "drift.accept.reason",
            "must say why the drift is accepted",
        );
        let reason = a.reason.value.trim().to_owned();
        if let Some(p) = &a.path {
            c.require(
                p.value.starts_with('/'),
                p,
                "drift.accept.path",
                "must be a property path as drift detection reports it, such as /BillingMode",
            );
        }
        if let Some(e) = &a.expires {
            c.require(
                is_date(&e.value),
                e,
                "drift.accept.expires",
                format!("must be a date YYYY-MM-DD, got `{}`", e.value),
            );
        }
        if let Some(stack) = stack {
            accepted_drift.push(AcceptedDrift {
                stack,
                logical_id: id,
                path: a.path.as_ref().map(|p| p.value.clone()),
                reason,
                expires: a.expires.as_ref().map(|e| e.value.clone()),
            });
        }
    }

    let mut tags = BTreeMap::new();
    for (k, v) in &raw.tags {
        let field = format!("tags.{k}");
        c.require(
            !k.is_empty() && k.len() <= 128 && !k.starts_with("aws:"),
            v,
            &field,
            "tag keys are 1-128 characters and may not start with `aws:`",
        );
        c.require(
            !RESERVED_TAGS.contains(&k.as_str()),
            v,
            &field,
            format!("`{k}` is set by mangactl on every stack"),
        );
        c.require(
            v.value.len() <= 256,
            v,
            &field,
            "tag values are at most 256 characters",
        );
        tags.insert(k.clone(), v.value.clone());
    }

    let p = &raw.protection.value;
    let protection = Protection {
        termination_protection: p.termination_protection.value,
        retain_data: p.retain_data.value,
        failover: p.failover.value,
    };
    if sizing::is_production(&name) {
        c.require(
            protection.termination_protection,
            &p.termination_protection,
            "protection.termination_protection",
            "must be true in prod",
        );
        c.require(
            protection.retain_data,
            &p.retain_data,
            "protection.retain_data",
            "must be true in prod: data stores are kept or snapshotted on delete",
        );
        c.require(
            protection.failover,
            &p.failover,
            "protection.failover",
            "must be true in prod: it must survive losing a node or an AZ",
        );
    }

    let l = &raw.llm.value;
    let llm = Llm {
        model_id: c.non_empty(&l.model_id, "llm.model_id"),
        tokens_per_minute_quota: l.tokens_per_minute_quota.value,
        requests_per_minute_quota: l.requests_per_minute_quota.as_ref().map(|q| {
            c.require(
                q.value > 0,
                q,
                "llm.requests_per_minute_quota",
                "must be greater than 0",
            );
            q.value
        }),
        max_tokens: l
            .max_tokens
            .as_ref()
            .map_or(sizing::input::DEFAULT_MAX_TOKENS, |m| {
                c.positive(m, "llm.max_tokens")
            }),
        tiers: Default::default(),
    };
    let mut llm = llm;
    if let Some(tiers) = &l.tiers {
        // Quotas are per model: a model other than llm.model_id brings its
        // own, given once (sizing::input::Llm::models pairs them up).
        let mut quoted: Vec<String> = vec![llm.model_id.clone()];
        let mut tier = |raw: &Option<Spanned<RawTierModel>>, name: &str| {
            let t = raw.as_ref()?;
            let field = format!("llm.tiers.{name}");
            let model_id = c.non_empty(&t.value.model_id, &format!("{field}.model_id"));
            let tpm = t.value.tokens_per_minute_quota.as_ref();
            let rpm = t.value.requests_per_minute_quota.as_ref();
            if quoted.contains(&model_id) {
                let again = format!("`{model_id}` already has its quotas (llm or an earlier tier): quotas are per model, give them once");
                if let Some(q) = tpm {
                    c.fail(
                        q,
                        &format!("{field}.tokens_per_minute_quota"),
                        again.clone(),
                    );
                }
                if let Some(q) = rpm {
                    c.fail(q, &format!("{field}.requests_per_minute_quota"), again);
                }
            } else {
                match tpm {
                    None => c.fail(
                        t,
                        &format!("{field}.tokens_per_minute_quota"),
                        format!("required for `{model_id}`, a model other than llm.model_id: the account's quota for it"),
                    ),
                    Some(q) => c.require(q.value > 0, q, &format!("{field}.tokens_per_minute_quota"), "must be greater than 0"),
                }
                if let Some(q) = rpm {
                    c.require(
                        q.value > 0,
                        q,
                        &format!("{field}.requests_per_minute_quota"),
                        "must be greater than 0",
                    );
                }
                quoted.push(model_id.clone());
            }
            Some(sizing::input::TierModel {
                model_id,
                tokens_per_minute_quota: tpm.map(|q| q.value),
                requests_per_minute_quota: rpm.map(|q| q.value),
            })
        };
        let t = &tiers.value;
        llm.tiers = sizing::input::LlmTiers {
            simple_llm: tier(&t.simple_llm, "simple_llm"),
            standard_llm: tier(&t.standard_llm, "standard_llm"),
            complex: tier(&t.complex, "complex"),
        };
    }
    c.require(
        llm.tokens_per_minute_quota > 0,
        &l.tokens_per_minute_quota,
        "llm.tokens_per_minute_quota",
        "must be greater than 0",
    );

    let auth = Auth {
        jwks_url: c.prefixed(
            &raw.auth.value.jwks_url,
            "auth.jwks_url",
            "https://",
            "an HTTPS URL of the identity provider's JWKS",
        ),
        issuer: c.prefixed(
            &raw.auth.value.issuer,
            "auth.issuer",
            "https://",
            "the identity provider's issuer URL (the tokens' `iss`)",
        ),
        audience: c.non_empty(&raw.auth.value.audience, "auth.audience"),
    };

    let im = &raw.intent_model.value;
    let intent_model = IntentModel {
        image: c.non_empty(&im.image, "intent_model.image"),
        model_data_url: c.prefixed(
            &im.model_data_url,
            "intent_model.model_data_url",
            "s3://",
            "an S3 URL",
        ),
    };

    let origin_secret = match &raw.origin_secret {
        Some(o) => {
            let version_id = o.value.version_id.as_ref().map(|v| {
                // PutSecretValue's ClientRequestToken (the new VersionId) is
                // 32-64 characters (Secrets Manager API Reference).
                let ok = (32..=64).contains(&v.value.len())
                    && v.value.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-');
                c.require(
                    ok,
                    v,
                    "origin_secret.version_id",
                    "must be a secret VersionId: 32-64 letters, digits and `-` (the ClientRequestToken given to put-secret-value)",
                );
                v.value.clone()
            });
            let accept_previous = o.value.accept_previous.as_ref().is_some_and(|a| a.value);
            if let (true, None, Some(a)) = (accept_previous, &version_id, &o.value.accept_previous)
            {
                c.fail(
                    a,
                    "origin_secret.accept_previous",
                    "needs `version_id`: the generated first version has no `previous` key",
                );
            }
            OriginSecret {
                version_id,
                accept_previous,
            }
        }
        None => OriginSecret::default(),
    };

    let alerts = match &raw.alerts {
        Some(a) => {
            let a = &a.value;
            for e in &a.email {
                let ok = e.value.split_once('@').is_some_and(|(user, host)| {
                    !user.is_empty() && host.contains('.') && !e.value.contains(char::is_whitespace)
                });
                c.require(
                    ok,
                    e,
                    "alerts.email",
                    format!("must be an email address, got `{}`", e.value),
                );
            }
            for h in &a.https {
                c.prefixed(h, "alerts.https", "https://", "an HTTPS endpoint URL");
            }
            for t in &a.sns_topic_arns {
                c.prefixed(
                    t,
                    "alerts.sns_topic_arns",
                    &format!("arn:aws:sns:{region}:"),
                    &format!(
                        "an SNS topic ARN in {region} (an alarm notifies topics in its own Region)"
                    ),
                );
            }
            if let Some(extra) = a.sns_topic_arns.get(Alerts::MAX_EXTRA_TOPICS) {
                c.fail(extra, "alerts.sns_topic_arns", format!("at most {} topics: an alarm takes five actions, one is the environment's own topic", Alerts::MAX_EXTRA_TOPICS));
            }
            Alerts {
                email: a.email.iter().map(|e| e.value.clone()).collect(),
                https: a.https.iter().map(|h| h.value.clone()).collect(),
                sns_topic_arns: a.sns_topic_arns.iter().map(|t| t.value.clone()).collect(),
            }
        }
        None => Alerts::default(),
    };
    if sizing::is_production(&name) && alerts.is_empty() {
        let msg = "prod must page someone: give at least one of alerts.email, alerts.https, alerts.sns_topic_arns";
        match &raw.alerts {
            Some(a) => c.fail(a, "alerts", msg),
            None => c.fail(&raw.name, "alerts", msg),
        }
    }

    let targets = targets(&mut c, &raw.targets);
    let accepted_shortfalls = accepted_shortfalls(&mut c, &raw.accepted_shortfalls);
    let (capacity, acknowledged_overrides) = match &raw.capacity {
        Some(cap) => capacity(&mut c, cap, sizing::is_production(&name)),
        None => (Overrides::default(), Vec::new()),
    };

    if c.problems.is_empty() {
        Ok(Environment {
            name,
            source: path.to_path_buf(),
            region,
            account_id,
            az_count,
            image,
            domain,
            edge,
            tags,
            protection,
            llm,
            auth,
            intent_model,
            targets,
            capacity,
            acknowledged_overrides,
            accepted_drift,
            origin_secret,
            alerts,
            accepted_shortfalls,
        })
    } else {
        c.problems.sort_by_key(|p| (p.line, p.column));
        Err(c.problems)
    }
}

/// `accepted_shortfalls`: each names a stage key (or `end_to_end`), the highest
/// modelled p95 accepted, its source and the reason; a stage at most once.
fn accepted_shortfalls(
    c: &mut Checker<'_>,
    raw: &[Spanned<RawAcceptedShortfall>],
) -> Vec<AcceptedShortfall> {
    let mut out: Vec<AcceptedShortfall> = Vec::new();
    for (i, entry) in raw.iter().enumerate() {
        let r = &entry.value;
        let field = |f: &str| format!("accepted_shortfalls[{i}].{f}");
        let stage = Stage::from_key(&r.stage.value);
        if stage.is_none() {
            c.fail(
                &r.stage,
                &field("stage"),
                format!(
                    "unknown stage `{}` (stages: {}, end_to_end)",
                    r.stage.value,
                    Stage::BUDGETED.map(Stage::key).join(", ")
                ),
            );
        }
        c.require(
            r.up_to_ms.value > 0.0 && r.up_to_ms.value.is_finite(),
            &r.up_to_ms,
            &field("up_to_ms"),
            "must be a positive number of milliseconds",
        );
        for (text, name) in [(&r.source, "source"), (&r.reason, "reason")] {
            c.require(
                !text.value.trim().is_empty(),
                text,
                &field(name),
                "must say it (free text)",
            );
        }
        let (source, reason) = (r.source.value.clone(), r.reason.value.clone());
        if let Some(stage) = stage {
            if out.iter().any(|a| a.stage == stage) {
                c.fail(
                    &r.stage,
                    &field("stage"),
                    format!("`{}` is accepted twice", stage.key()),
                );
            }
            out.push(AcceptedShortfall {
                stage,
                up_to_ms: r.up_to_ms.value,
                source,
                reason,
            });
        }
    }
    out
}

fn targets(c: &mut Checker<'_>, raw: &Spanned<RawTargets>) -> Targets {
    let l = &raw.value.latency_ms.value;
    let latency_ms = l.map(|name, s| {
        if LatencyBudgets::<u32>::must_be_positive(name) {
            c.positive(s, &format!("targets.latency_ms.{name}"))
        } else {
            s.value
        }
    });
    c.require(
        latency_ms.margin < latency_ms.end_to_end_p95,
        &l.margin,
        "targets.latency_ms.margin",
        "must be smaller than end_to_end_p95",
    );

    let t = &raw.value.traffic.value;
    let concurrent_sessions = c.positive(
        &t.concurrent_sessions,
        "targets.traffic.concurrent_sessions",
    );
    let mpm = t.messages_per_session_per_minute.value;
    c.require(
        mpm.is_finite() && mpm > 0.0,
        &t.messages_per_session_per_minute,
        "targets.traffic.messages_per_session_per_minute",
        "must be a positive number",
    );
    let peak = t.peak_factor.value;
    c.require(
        peak.is_finite() && peak >= 1.0,
        &t.peak_factor,
        "targets.traffic.peak_factor",
        format!("must be at least 1.0 (peak over average), got {peak}"),
    );
    let hourly_profile = t.hourly_profile.as_ref().map(|p| {
        let field = "targets.traffic.hourly_profile";
        c.require(
            p.value.len() == 24,
            p,
            field,
            format!(
                "must have 24 values, one per hour of the day, got {}",
                p.value.len()
            ),
        );
        for v in &p.value {
            c.require(
                v.value.is_finite() && v.value >= 0.0,
                v,
                field,
                format!(
                    "every hour's load must be a non-negative number, got {}",
                    v.value
                ),
            );
        }
        c.require(
            p.value.iter().any(|v| v.value > 0.0),
            p,
            field,
            "at least one hour must carry load",
        );
        p.value.iter().map(|v| v.value).collect::<Vec<f64>>()
    });
    let timezone = t.timezone.as_ref().map(|tz| {
        if let Err(why) = sizing::schedule::check_timezone(&tz.value) {
            c.require(false, tz, "targets.traffic.timezone", why);
        }
        tz.value.clone()
    });
    let traffic = Traffic {
        hourly_profile,
        timezone,
        concurrent_sessions,
        messages_per_session_per_minute: mpm,
        peak_factor: peak,
        cache_hit_ratio: c.ratio(&t.cache_hit_ratio, "targets.traffic.cache_hit_ratio"),
        rules_confident_share: c.ratio(
            &t.rules_confident_share,
            "targets.traffic.rules_confident_share",
        ),
    };

    let m = &raw.value.tier_mix;
    let (template, simple, standard, complex) = (
        m.value.template.value,
        m.value.simple_llm.value,
        m.value.standard_llm.value,
        m.value.complex.value,
    );
    let sum = template + simple + standard + complex;
    let tier_mix = TierMix {
        template: f64::from(template),
        simple_llm: f64::from(simple),
        standard_llm: f64::from(standard),
        complex: f64::from(complex),
    };
    c.require(
        sum == 100,
        m,
        "targets.tier_mix",
        format!("shares must sum to 100, got {sum}"),
    );
    Targets {
        latency_ms,
        traffic,
        tier_mix,
    }
}

/// Checks the overrides that are present; sizing fills in the rest.
fn capacity(
    c: &mut Checker<'_>,
    raw: &Spanned<RawCapacity>,
    prod: bool,
) -> (Overrides, Vec<String>) {
    use sizing::{
        DaxOverride, DynamoDbOverride, OpenSearchOverride, RedisOverride, SageMakerOverride,
        ServiceOverride,
    };
    let r = &raw.value;
    let v = |x: &Option<Spanned<u32>>| x.as_ref().map(|s| s.value);
    let positive = |c: &mut Checker<'_>, x: &Option<Spanned<u32>>, field: &str| {
        x.as_ref().map(|s| c.positive(s, field))
    };

    let service = r.service.as_ref().map(|s| {
        let s = &s.value;
        let o = ServiceOverride {
            cpu: v(&s.cpu),
            memory_mib: v(&s.memory_mib),
            tasks: positive(c, &s.tasks, "capacity.service.tasks"),
            min_tasks: positive(c, &s.min_tasks, "capacity.service.min_tasks"),
            max_tasks: positive(c, &s.max_tasks, "capacity.service.max_tasks"),
        };
        if let (Some(cpu), Some(mem)) = (&s.cpu, &s.memory_mib) {
            c.require(
                is_valid_fargate(cpu.value, mem.value),
                mem,
                "capacity.service.memory_mib",
                format!(
                    "{} MiB is not a valid Fargate memory size for {} CPU units",
                    mem.value, cpu.value
                ),
            );
        } else if let Some(cpu) = &s.cpu {
            c.require(
                FARGATE_CPU.contains(&cpu.value),
                cpu,
                "capacity.service.cpu",
                format!(
                    "{} is not a Fargate CPU size ({})",
                    cpu.value,
                    FARGATE_CPU.map(|c| c.to_string()).join(", ")
                ),
            );
        }
        let (lo, mid, hi) = (
            o.min_tasks.unwrap_or(1),
            o.tasks,
            o.max_tasks.unwrap_or(u32::MAX),
        );
        if let Some(at) = s
            .tasks
            .as_ref()
            .or(s.max_tasks.as_ref())
            .or(s.min_tasks.as_ref())
        {
            let ok = lo <= hi && mid.is_none_or(|m| lo <= m && m <= hi);
            c.require(
                ok,
                at,
                "capacity.service.tasks",
                "must satisfy min_tasks <= tasks <= max_tasks",
            );
        }
        o
    });

    let redis = r.redis.as_ref().map(|rd| {
        let rd = &rd.value;
        let o = RedisOverride {
            node_type: rd.node_type.as_ref().map(|n| {
                c.prefixed(
                    n,
                    "capacity.redis.node_type",
                    "cache.",
                    "an ElastiCache node type",
                )
            }),
            shards: rd
                .shards
                .as_ref()
                .map(|n| c.between(n, "capacity.redis.shards", 1, 500)),
            replicas_per_shard: rd
                .replicas_per_shard
                .as_ref()
                .map(|n| c.between(n, "capacity.redis.replicas_per_shard", 0, 5)),
        };
        if let (true, Some(rep)) = (prod, &rd.replicas_per_shard) {
            c.require(
                rep.value >= 1,
                rep,
                "capacity.redis.replicas_per_shard",
                "prod needs at least 1 replica for automatic failover",
            );
        }
        o
    });

    let dax = r.dax.as_ref().map(|dx| {
        let dx = &dx.value;
        let o = DaxOverride {
            node_type: dx
                .node_type
                .as_ref()
                .map(|n| c.prefixed(n, "capacity.dax.node_type", "dax.", "a DAX node type")),
            nodes: dx
                .nodes
                .as_ref()
                .map(|n| c.between(n, "capacity.dax.nodes", 1, 11)),
        };
        if let (true, Some(n)) = (prod, &dx.nodes) {
            c.require(
                n.value >= 3,
                n,
                "capacity.dax.nodes",
                "prod needs at least 3 nodes, one per AZ",
            );
        }
        o
    });

    let dynamodb = r.dynamodb.as_ref().map(|dy| {
        let dy = &dy.value;
        let billing = dy.billing.as_ref().and_then(|b| match b.value.as_str() {
            "on_demand" => Some(Billing::OnDemand),
            "provisioned" => Some(Billing::Provisioned),
            other => {
                c.fail(
                    b,
                    "capacity.dynamodb.billing",
                    format!("must be `on_demand` or `provisioned`, got `{other}`"),
                );
                None
            }
        });
        if billing == Some(Billing::OnDemand) {
            for extra in [&dy.rcu, &dy.wcu].into_iter().flatten() {
                c.fail(
                    extra,
                    "capacity.dynamodb",
                    "rcu/wcu only apply to billing: provisioned",
                );
            }
        }
        DynamoDbOverride {
            billing,
            rcu: positive(c, &dy.rcu, "capacity.dynamodb.rcu"),
            wcu: positive(c, &dy.wcu, "capacity.dynamodb.wcu"),
        }
    });

    let opensearch = r.opensearch.as_ref().map(|os| {
        let os = &os.value;
        let o = OpenSearchOverride {
            search_ocu_min: positive(c, &os.search_ocu_min, "capacity.opensearch.search_ocu_min"),
            search_ocu_max: positive(c, &os.search_ocu_max, "capacity.opensearch.search_ocu_max"),
            indexing_ocu_min: positive(
                c,
                &os.indexing_ocu_min,
                "capacity.opensearch.indexing_ocu_min",
            ),
            indexing_ocu_max: positive(
                c,
                &os.indexing_ocu_max,
                "capacity.opensearch.indexing_ocu_max",
            ),
            standby_replicas: os.standby_replicas.as_ref().map(|b| b.value),
        };
        if let (Some(lo), Some(hi)) = (o.search_ocu_min, &os.search_ocu_max) {
            c.require(
                lo <= hi.value,
                hi,
                "capacity.opensearch.search_ocu_max",
                "must be at least search_ocu_min",
            );
        }
        if let (Some(lo), Some(hi)) = (o.indexing_ocu_min, &os.indexing_ocu_max) {
            c.require(
                lo <= hi.value,
                hi,
                "capacity.opensearch.indexing_ocu_max",
                "must be at least indexing_ocu_min",
            );
        }
        o
    });

    let sagemaker = r.sagemaker.as_ref().map(|sm| {
        let sm = &sm.value;
        let o = SageMakerOverride {
            instance_type: sm.instance_type.as_ref().map(|n| {
                c.prefixed(
                    n,
                    "capacity.sagemaker.instance_type",
                    "ml.",
                    "a SageMaker instance type",
                )
            }),
            instances: positive(c, &sm.instances, "capacity.sagemaker.instances"),
            max_instances: positive(c, &sm.max_instances, "capacity.sagemaker.max_instances"),
        };
        if let (Some(n), Some(max)) = (o.instances, &sm.max_instances) {
            c.require(
                n <= max.value,
                max,
                "capacity.sagemaker.max_instances",
                "must be at least instances",
            );
        }
        o
    });

    const RESOURCES: [&str; 6] = [
        "service",
        "redis",
        "dax",
        "dynamodb",
        "opensearch",
        "sagemaker",
    ];
    let mut acknowledged = Vec::new();
    for a in &r.acknowledged_overrides {
        c.require(
            RESOURCES.contains(&a.value.as_str()),
            a,
            "capacity.acknowledged_overrides",
            format!(
                "`{}` is not a resource; use one of {}",
                a.value,
                RESOURCES.join(", ")
            ),
        );
        acknowledged.push(a.value.clone());
    }
    (
        Overrides {
            service,
            redis,
            dax,
            dynamodb,
            opensearch,
            sagemaker,
        },
        acknowledged,
    )
}
