//! Properties of the rendered templates that must hold in every shipped
//! environment: what a snapshot shows but does not assert.

use std::path::Path;

use serde_json::Value;

use super::*;
use crate::render::{render, Format};

/// Every shipped environment rendered: (name, stack id, template JSON).
fn rendered() -> Vec<(String, StackId, Value)> {
    let mut out = Vec::new();
    for name in ["dev", "staging", "prod", "tokyo"] {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../environments/{name}.yaml"));
        let env = crate::env::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let plan = sizing::size(&env.sizing_input()).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let r = render(&Inputs::new(&env, &plan), Format::Json).unwrap_or_else(|e| panic!("{e}"));
        for s in r.stacks {
            out.push((name.to_owned(), s.id, s.template.to_value()));
        }
    }
    out
}

fn of_type<'a>(t: &'a Value, ty: &str) -> Vec<(&'a String, &'a Value)> {
    t["Resources"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, r)| r["Type"] == ty)
        .collect()
}

#[test]
fn the_alb_answers_403_unless_the_origin_header_matches() {
    for (env, id, t) in rendered() {
        let listeners = of_type(&t, "AWS::ElasticLoadBalancingV2::Listener");
        let rules = of_type(&t, "AWS::ElasticLoadBalancingV2::ListenerRule");
        if id != StackId::Service {
            assert!(listeners.is_empty() && rules.is_empty(), "{env}/{id}");
            continue;
        }
        assert_eq!(listeners.len(), 1, "{env}");
        let default = &listeners[0].1["Properties"]["DefaultActions"];
        assert_eq!(
            default.as_array().map(Vec::len),
            Some(1),
            "{env}: {default}"
        );
        assert_eq!(default[0]["Type"], "fixed-response", "{env}");
        assert_eq!(default[0]["FixedResponseConfig"]["StatusCode"], "403");

        let forwarding: Vec<_> = rules
            .iter()
            .filter(|(_, r)| {
                r["Properties"]["Actions"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x["Type"] == "forward"))
            })
            .collect();
        assert_eq!(forwarding.len(), 1, "{env}: one forwarding rule");
        let conditions = &forwarding[0].1["Properties"]["Conditions"];
        assert_eq!(conditions.as_array().map(Vec::len), Some(1), "{env}");
        assert_eq!(conditions[0]["Field"], "http-header");
        let header = &conditions[0]["HttpHeaderConfig"];
        assert_eq!(header["HttpHeaderName"], service::ORIGIN_HEADER);
        let values = header["Values"].as_array().cloned().unwrap_or_default();
        assert!(!values.is_empty(), "{env}");
        for v in &values {
            let text = v.to_string();
            assert!(
                text.contains("{{resolve:secretsmanager:${Secret}:SecretString:"),
                "{env}: {text}"
            );
        }
    }
}

#[test]
fn cloudfront_sends_the_current_origin_secret() {
    for (env, id, t) in rendered()
        .into_iter()
        .filter(|(_, id, _)| *id == StackId::Edge)
    {
        let d = of_type(&t, "AWS::CloudFront::Distribution");
        let origins = &d[0].1["Properties"]["DistributionConfig"]["Origins"];
        let headers = &origins[0]["OriginCustomHeaders"];
        assert_eq!(
            headers[0]["HeaderName"],
            service::ORIGIN_HEADER,
            "{env}/{id}"
        );
        let value = headers[0]["HeaderValue"].to_string();
        assert!(value.contains(":SecretString:current"), "{env}: {value}");
        assert!(value.contains("ServiceOriginSecretName"), "{env}: {value}");
    }
}

#[test]
fn every_alarm_notifies_the_topic_when_it_fires_and_clears() {
    let mut alarms = 0;
    for (env, id, t) in rendered() {
        for (logical, a) in of_type(&t, "AWS::CloudWatch::Alarm") {
            assert_eq!(
                id,
                StackId::Observability,
                "{env}: {logical} outside observability"
            );
            alarms += 1;
            let p = &a["Properties"];
            for key in ["AlarmActions", "OKActions"] {
                let actions = p[key].as_array().cloned().unwrap_or_default();
                assert!(
                    actions.contains(&serde_json::json!({ "Ref": "AlarmTopic" })),
                    "{env}/{logical}: {key} {actions:?}"
                );
            }
            let missing = p["TreatMissingData"].as_str().unwrap_or_default();
            assert!(
                ["breaching", "notBreaching", "ignore", "missing"].contains(&missing),
                "{env}/{logical}: TreatMissingData `{missing}`"
            );
        }
        if id == StackId::Observability {
            let topic = &of_type(&t, "AWS::SNS::Topic")[0].1["Properties"];
            assert_eq!(
                topic["KmsMasterKeyId"],
                serde_json::json!({ "Ref": "AlarmTopicKey" })
            );
            let key = &of_type(&t, "AWS::KMS::Key")[0].1["Properties"]["KeyPolicy"];
            assert!(
                key.to_string().contains("cloudwatch.amazonaws.com"),
                "{env}: the key lets CloudWatch publish"
            );
        }
    }
    assert!(alarms > 4 * 15, "{alarms}");
}

#[test]
fn redis_admits_only_the_iam_user_the_task_role_may_connect_as() {
    for (env, id, t) in rendered() {
        match id {
            StackId::Cache => {
                let users = of_type(&t, "AWS::ElastiCache::User");
                let iam: Vec<_> = users
                    .iter()
                    .filter(|(_, u)| u["Properties"]["AuthenticationMode"]["Type"] == "iam")
                    .collect();
                assert_eq!(iam.len(), 1, "{env}");
                let p = &iam[0].1["Properties"];
                assert_eq!(p["UserId"], p["UserName"], "{env}");
                let default = users
                    .iter()
                    .find(|(_, u)| u["Properties"]["UserName"] == "default")
                    .expect("a default user");
                let access = default.1["Properties"]["AccessString"]
                    .as_str()
                    .unwrap_or("");
                assert!(access.starts_with("off"), "{env}: {access}");
                let group = &of_type(&t, "AWS::ElastiCache::ReplicationGroup")[0].1["Properties"];
                assert_eq!(group["UserGroupIds"].as_array().map(Vec::len), Some(1));
                assert_eq!(group["TransitEncryptionEnabled"], true);
            }
            StackId::Service => {
                let text = t["Resources"]["TaskRole"].to_string();
                assert!(text.contains("elasticache:Connect"), "{env}");
                assert!(text.contains(":user:mangaassist-"), "{env}");
                let td = t["Resources"]["TaskDefinition"].to_string();
                for var in [
                    "MANGA_REDIS_USER",
                    "MANGA_TARGET_GROUP_ARN",
                    "MANGA_DRAIN_POLL_SECS",
                ] {
                    assert!(td.contains(var), "{env}: {var}");
                }
            }
            _ => {}
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BaselineException {
    rule: String,
    /// An environment, or absent / "*" for every one.
    #[serde(default)]
    env: Option<String>,
    stack: String,
    resource: String,
    why: String,
}

#[test]
fn baseline_exceptions_name_real_stacks_and_resources() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../baseline-exceptions.yaml");
    let text = std::fs::read_to_string(&path).expect("baseline-exceptions.yaml");
    let list: Vec<BaselineException> = serde_saphyr::from_str(&text).expect("a list");
    let all = rendered();
    assert!(!list.is_empty());
    for e in &list {
        assert!(!e.rule.is_empty() && !e.why.is_empty(), "{}", e.rule);
        assert!(!e.why.contains('\n'), "one line: {}", e.rule);
        let stacks: Vec<&(String, StackId, Value)> = all
            .iter()
            .filter(|(env, id, _)| {
                (e.stack == "*" || id.name() == e.stack)
                    && e.env
                        .as_deref()
                        .is_none_or(|want| want == "*" || want == env)
            })
            .collect();
        assert!(!stacks.is_empty(), "{}: no stack `{}`", e.rule, e.stack);
        if e.resource != "*" {
            assert!(
                stacks
                    .iter()
                    .any(|(_, _, t)| t["Resources"].get(&e.resource).is_some()),
                "{}: no resource `{}` in `{}`",
                e.rule,
                e.resource,
                e.stack
            );
        }
    }
}

#[test]
fn the_runtime_runs_as_its_image_user_within_a_memory_limit() {
    for (env, _, t) in rendered()
        .into_iter()
        .filter(|(_, id, _)| *id == StackId::Service)
    {
        let c = &t["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][0];
        assert_eq!(c["User"], service::RUNTIME_USER, "{env}");
        assert_eq!(c["ReadonlyRootFilesystem"], true, "{env}");
        assert!(c["Memory"].as_u64().is_some_and(|m| m >= 512), "{env}");
        let attrs =
            t["Resources"]["LoadBalancer"]["Properties"]["LoadBalancerAttributes"].to_string();
        assert!(attrs.contains("access_logs.s3.enabled"), "{env}");
    }
}

/// The task count each scaling policy settles at under `demand` per task-less
/// total (target tracking holds the per-task value at the target, so it runs
/// ceil(total / target) tasks).
fn settles_at(total: f64, target: f64) -> u32 {
    assert!(target > 0.0, "a scaling target must be positive");
    (total / target).ceil() as u32
}

#[test]
fn the_service_scales_on_what_binds_and_settles_at_the_sized_task_count() {
    let a = sizing::Assumptions::embedded().expect("assumptions");
    for name in ["dev", "staging", "prod", "tokyo"] {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../environments/{name}.yaml"));
        let env = crate::env::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let plan = sizing::size(&env.sizing_input()).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let t = service::template(&Inputs::new(&env, &plan)).to_value();
        let policies = of_type(&t, "AWS::ApplicationAutoScaling::ScalingPolicy");
        let policy = |id: &str| {
            let p = policies
                .iter()
                .find(|(k, _)| *k == id)
                .unwrap_or_else(|| panic!("{name}: no {id}"));
            p.1["Properties"]["TargetTrackingScalingPolicyConfiguration"].clone()
        };
        let (sessions, streams, cpu) = (
            policy("SessionsScalingPolicy"),
            policy("StreamsScalingPolicy"),
            policy("CpuScalingPolicy"),
        );
        // The runtime's gauges, averaged over the environment's tasks.
        for (p, metric) in [
            (&sessions, "ActiveSessions"),
            (&streams, "LlmStreamsInFlight"),
        ] {
            let m = &p["CustomizedMetricSpecification"];
            assert_eq!(m["MetricName"], metric, "{name}");
            assert_eq!(m["Namespace"], "MangaAssist", "{name}");
            assert_eq!(m["Statistic"], "Average", "{name}");
            assert_eq!(
                m["Dimensions"],
                serde_json::json!([{"Name": "Environment", "Value": env.name}]),
                "{name}"
            );
        }
        assert_eq!(
            cpu["PredefinedMetricSpecification"]["PredefinedMetricType"],
            "ECSServiceAverageCPUUtilization"
        );
        // Where each policy settles at the peak demand sizing was given,
        // worked from the rendered targets (not from sizing's own counts).
        let r = &plan.rates;
        let s = &plan.service;
        let vcpu = f64::from(s.cpu) / 1024.0;
        let cpu_target = cpu["TargetValue"].as_f64().expect("cpu target") / 100.0;
        let by_policy = [
            settles_at(
                f64::from(r.concurrent_sessions),
                sessions["TargetValue"].as_f64().expect("target"),
            ),
            settles_at(
                r.streams_in_flight,
                streams["TargetValue"].as_f64().expect("target"),
            ),
            settles_at(
                r.messages_per_s
                    * a.orchestrator.cpu_ms_per_message.v()
                    * a.orchestrator.bench_cpu_per_fargate_vcpu.v()
                    / 1000.0,
                vcpu * cpu_target,
            ),
        ];
        let need = by_policy.iter().copied().max().unwrap_or(0);
        assert!(
            need <= s.tasks,
            "{name}: policies {by_policy:?}, sized {}",
            s.tasks
        );
        match s.assessment.binding {
            // The floor decided: no policy asks for more.
            sizing::Binding::OnePerAz | sizing::Binding::Minimum => {}
            b => assert_eq!(
                need, s.tasks,
                "{name}: bound by {b}, policies settle at {by_policy:?}"
            ),
        }
        // The runtime refuses sessions and streams beyond the capacity the
        // targets are a share of.
        assert!(
            s.target_sessions_per_task < s.connections_per_task,
            "{name}"
        );
        assert!(s.target_streams_per_task < s.max_streams_per_task, "{name}");
        let target = &of_type(&t, "AWS::ApplicationAutoScaling::ScalableTarget")[0].1["Properties"];
        assert!(
            target["MinCapacity"].as_u64() <= Some(u64::from(s.tasks))
                && target["MaxCapacity"].as_u64() >= Some(u64::from(s.tasks)),
            "{name}: {target}"
        );
    }
}

#[test]
fn prod_keeps_the_minimum_the_hourly_profile_needs_in_its_time_zone() {
    // Prod sizes 6 tasks at the peak hour over a floor of 5 (one AZ's loss).
    // Its default profile (stacks/sizing/data/assumptions.yaml,
    // bill.hourly_profile) has the shares 0.82 at 17:00, 0.88 at 18:00,
    // 0.95, 1.00, 0.98 at 19–21:00, 0.85 at 22:00 and 0.65 at 23:00 (local,
    // America/New_York): ⌈6 × share⌉ is 5 at 17:00 (4.92), 6 from 18:00
    // (5.28) to 22:00 (5.1), and 4 at 23:00 (3.9), under the floor. Every
    // other hour is under 0.82, so the floor.
    let mut expected = [5u64; 24];
    for m in &mut expected[18..=22] {
        *m = 6;
    }
    let all = rendered();
    let service = all
        .iter()
        .find(|(n, id, _)| n == "prod" && *id == StackId::Service)
        .map(|(_, _, t)| t)
        .expect("prod service");
    let p = &of_type(service, "AWS::ApplicationAutoScaling::ScalableTarget")[0].1["Properties"];
    assert_eq!(p["MinCapacity"], 5, "the floor is the template's minimum");
    let actions = p["ScheduledActions"].as_array().expect("scheduled actions");
    assert_eq!(
        actions.len(),
        24,
        "one per hour, so a deploy's reset lasts an hour at most"
    );
    for (h, a) in actions.iter().enumerate() {
        assert_eq!(a["Schedule"], format!("cron(0 {h} * * ? *)"), "{a}");
        assert_eq!(a["Timezone"], "America/New_York", "{a}");
        assert_eq!(
            a["ScalableTargetAction"]["MinCapacity"], expected[h],
            "hour {h}: {a}"
        );
        assert!(
            a["ScalableTargetAction"].get("MaxCapacity").is_none(),
            "{a}"
        );
    }
    let names: std::collections::BTreeSet<_> = actions
        .iter()
        .map(|a| a["ScheduledActionName"].to_string())
        .collect();
    assert_eq!(names.len(), 24, "names are unique per target");
    assert_eq!(p["SuspendedState"]["ScheduledScalingSuspended"], false);

    // Where the schedule never leaves the floor there is nothing to run.
    for (name, id, t) in &all {
        if !matches!(id, StackId::Service | StackId::Intent)
            || (name == "prod" && *id == StackId::Service)
        {
            continue;
        }
        for (_, r) in of_type(t, "AWS::ApplicationAutoScaling::ScalableTarget") {
            let p = &r["Properties"];
            if let Some(a) = p["ScheduledActions"].as_array() {
                assert!(
                    a.iter()
                        .any(|a| a["ScalableTargetAction"]["MinCapacity"] != p["MinCapacity"]),
                    "{name} {id:?}: scheduled actions that never leave the floor"
                );
            }
        }
    }
}
