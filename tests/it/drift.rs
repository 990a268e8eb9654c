//! `drift` (`src/deploy/drift.rs`): the resource layer against the
//! scripted fake fed DescribeStackResourceDrifts documents shaped like the
//! API reference's (MODIFIED, DELETED, IN_SYNC, NOT_CHECKED; a detection
//! that FAILED, one that never finishes), the code layer against the fake
//! and through the binary against moto (which has no drift detection), and
//! the exit codes, JSON and JUnit end to end.

use std::time::Duration;

use mangactl::aws::cloudformation::{PropertyDifference, ResourceDrift};
use mangactl::aws::CloudFormation;
use mangactl::deploy::apply;
use mangactl::deploy::capacity;
use mangactl::deploy::drift::{self, CodeLayer, DriftOptions};
use mangactl::deploy::live::LiveReaders;
use mangactl::deploy::Backoff;
use mangactl::fakes::capacity::FakeCapacity;
use mangactl::fakes::cloudformation::{DriftScript, FakeCloudFormation, Seed, SeedEvent};
use mangactl::fakes::opensearch::FakeSearchCapacity;
use mangactl::outcome::Outcome;
use serde_json::Value;
use stacks::render::Rendered;
use stacks::stacks::StackId;

use crate::deploy_fake::{apply_yes, name, rendered};
use crate::moto::Moto;
use crate::support::{block_on, stack_output, stderr, stdout, AppliedDev, TempDir};

/// The live capacity of a deployment exactly as rendered: every sized
/// resource named by the fake CloudFormation's outputs.
pub(crate) struct Live {
    pub capacity: FakeCapacity,
    pub search: FakeSearchCapacity,
}

impl Live {
    pub fn as_rendered(r: &Rendered, fake: &FakeCloudFormation) -> Live {
        let name = |id: StackId| {
            r.stacks
                .iter()
                .find(|s| s.id == id)
                .map(|s| s.stack_name.clone())
                .unwrap_or_default()
        };
        let wanted = capacity::wanted(&r.sizing);
        Live {
            capacity: FakeCapacity::as_rendered(r, |id, key| fake.output(&name(id), key)),
            search: FakeSearchCapacity::with_limits(
                wanted.max_search_ocu.unwrap_or(2),
                wanted.max_indexing_ocu.unwrap_or(2),
            ),
        }
    }

    pub fn readers(&self) -> LiveReaders<'_> {
        LiveReaders {
            capacity: &self.capacity,
            search: Some(&self.search),
            // 2026-12-01T00:00:00Z.
            now: 1_796_083_200,
        }
    }
}

/// `drift` of `r` against `fake`, with live capacity exactly as rendered.
async fn check(fake: &FakeCloudFormation, r: &Rendered, o: &DriftOptions) -> drift::DriftReport {
    drift::drift(fake, Live::as_rendered(r, fake).readers(), r, o)
        .await
        .expect("drift")
}

fn drift_opts(allow_unchecked: bool) -> DriftOptions {
    DriftOptions {
        only: None,
        accepted: vec![],
        scale_records: vec![],
        today: "2026-12-01".into(),
        timeout: Duration::from_secs(60),
        allow_unchecked,
        concurrency: 4,
        backoff: Backoff::default(),
    }
}

async fn deployed(r: &Rendered) -> FakeCloudFormation {
    let fake = FakeCloudFormation::new();
    let report = apply_yes(&fake, r).await;
    assert_eq!(report.status, apply::ApplyStatus::Applied);
    fake
}

fn drifts(entries: &[(&str, &str, &str)]) -> Vec<ResourceDrift> {
    entries
        .iter()
        .map(|(id, ty, status)| ResourceDrift {
            logical_id: (*id).into(),
            resource_type: (*ty).into(),
            status: (*status).into(),
            differences: if *status == "MODIFIED" {
                vec![PropertyDifference {
                    path: "/BillingMode".into(),
                    expected: "PAY_PER_REQUEST".into(),
                    actual: "PROVISIONED".into(),
                    kind: "NOT_EQUAL".into(),
                }]
            } else {
                vec![]
            },
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_clean_environment_is_in_sync_and_unsupported_types_are_unchecked() {
    let r = rendered("dev");
    let fake = deployed(&r).await;
    let report = check(&fake, &r, &drift_opts(false)).await;
    // The fake checks every resource by default: nothing unchecked.
    assert_eq!(
        Outcome::from(&report).code(),
        0,
        "{}",
        drift::render_text(&report)
    );
    assert!(report
        .stacks
        .iter()
        .all(|s| matches!(s.code, CodeLayer::InSync)));

    // CloudFormation leaves out types it cannot check: they are unchecked,
    // never in sync, and the run is incomplete unless that is accepted.
    let memory = name(&r, StackId::Memory);
    fake.script_drift(
        &memory,
        DriftScript::Complete(drifts(&[(
            "ConversationTable",
            "AWS::DynamoDB::Table",
            "IN_SYNC",
        )])),
    );
    let report = check(&fake, &r, &drift_opts(false)).await;
    assert_eq!(
        Outcome::from(&report).code(),
        3,
        "{}",
        drift::render_text(&report)
    );
    let m = report
        .stacks
        .iter()
        .find(|s| s.stack == StackId::Memory)
        .expect("memory");
    assert!(m
        .resources
        .unchecked
        .iter()
        .any(|u| u.resource_type == "AWS::DAX::Cluster"));
    assert!(!m
        .resources
        .unchecked
        .iter()
        .any(|u| u.logical_id == "ConversationTable"));
    let allowed = check(&fake, &r, &drift_opts(true)).await;
    assert_eq!(Outcome::from(&allowed).code(), 0);
}

#[tokio::test(start_paused = true)]
async fn modified_and_deleted_resources_are_drift_not_checked_ones_are_not() {
    let r = rendered("dev");
    let fake = deployed(&r).await;
    fake.script_drift(
        &name(&r, StackId::Memory),
        DriftScript::Complete(drifts(&[
            ("ConversationTable", "AWS::DynamoDB::Table", "MODIFIED"),
            ("DaxRole", "AWS::IAM::Role", "DELETED"),
            ("DaxSubnetGroup", "AWS::DAX::SubnetGroup", "NOT_CHECKED"),
            ("DaxCluster", "AWS::DAX::Cluster", "IN_SYNC"),
            ("DaxParameterGroup", "AWS::DAX::ParameterGroup", "IN_SYNC"),
        ])),
    );
    let report = check(&fake, &r, &drift_opts(true)).await;
    assert_eq!(Outcome::from(&report).code(), 2);
    let m = report
        .stacks
        .iter()
        .find(|s| s.stack == StackId::Memory)
        .expect("memory");
    let drifted: Vec<(&str, &str)> = m
        .resources
        .drifted
        .iter()
        .map(|d| (d.logical_id.as_str(), d.status.as_str()))
        .collect();
    assert_eq!(
        drifted,
        [("ConversationTable", "MODIFIED"), ("DaxRole", "DELETED")]
    );
    assert!(m
        .resources
        .unchecked
        .iter()
        .any(|u| u.logical_id == "DaxSubnetGroup" && u.why.contains("NOT_CHECKED")));
    let text = drift::render_text(&report);
    assert!(
        text.contains("/BillingMode (NOT_EQUAL): expected PAY_PER_REQUEST, actual PROVISIONED"),
        "{text}"
    );
    assert!(text.contains("resources 2 drifted"), "{text}");

    // Accepted drift is reported as ignored with its reason, and counts
    // again once its date has passed.
    let accept = |expires: &str| stacks::env::AcceptedDrift {
        stack: StackId::Memory,
        logical_id: "ConversationTable".into(),
        path: Some("/BillingMode".into()),
        reason: "capacity test in progress (OPS-42)".into(),
        expires: Some(expires.into()),
    };
    let mut o = drift_opts(true);
    o.accepted = vec![accept("2026-12-01")];
    let r1 = check(&fake, &r, &o).await;
    assert_eq!(r1.summary.resources_drifted, 1, "only DaxRole is left");
    assert_eq!(r1.summary.ignored, 1);
    let t1 = drift::render_text(&r1);
    assert!(
        t1.contains("ignored: memory/ConversationTable/BillingMode (capacity test in progress (OPS-42), accepted until 2026-12-01)"),
        "{t1}"
    );
    o.accepted = vec![accept("2026-11-30")];
    let r2 = check(&fake, &r, &o).await;
    assert_eq!(r2.summary.resources_drifted, 2);
    assert_eq!(r2.summary.ignored, 0);
    assert!(drift::render_text(&r2)
        .contains("(accepted: capacity test in progress (OPS-42) until 2026-11-30; counts again)"));

    // JSON carries the versioned schema name; JUnit is well-formed XML
    // with one test case per stack and a failure per drifted item.
    let json: Value = serde_json::to_value(&report).expect("json");
    assert_eq!(json["schema"], "mangactl.drift/v1");
    assert_eq!(json["summary"]["resources_drifted"], 2);
    let xml = drift::render_junit(&report);
    let doc = roxmltree::Document::parse(&xml).expect("JUnit parses as XML");
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .expect("suite");
    assert_eq!(suite.attribute("tests"), Some("8"));
    assert_eq!(suite.attribute("failures"), Some("2"));
    let failures = doc
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .count();
    assert_eq!(failures, 2);
}

#[tokio::test(start_paused = true)]
async fn a_scale_record_acknowledges_the_change_until_it_expires() {
    use mangactl::aws::scale_records::{ScaleRecord, RECORD_VERSION};
    let r = rendered("dev");
    let fake = deployed(&r).await;
    fake.script_drift(
        &name(&r, StackId::Memory),
        DriftScript::Complete(vec![ResourceDrift {
            logical_id: "DaxCluster".into(),
            resource_type: "AWS::DAX::Cluster".into(),
            status: "MODIFIED".into(),
            differences: vec![PropertyDifference {
                path: "/ReplicationFactor".into(),
                expected: "2".into(),
                actual: "5".into(),
                kind: "NOT_EQUAL".into(),
            }],
        }]),
    );
    // The record `mangactl scale dax --nodes 5` writes (src/aws/scale_records.rs).
    let record: ScaleRecord = serde_json::from_str(&format!(
        r#"{{"version": {RECORD_VERSION}, "component": "dax", "stack": "memory", "logical_id": "DaxCluster",
            "property": "/ReplicationFactor", "value": "5", "by": "alice", "at": "2026-12-01T03:12:00Z",
            "reason": "read spike (INC-7)", "until": "2026-12-08"}}"#
    ))
    .expect("record");
    let mut o = drift_opts(true);
    o.scale_records = vec![record.clone()];
    let report = check(&fake, &r, &o).await;
    assert_eq!(
        Outcome::from(&report).code(),
        0,
        "{}",
        drift::render_text(&report)
    );
    assert_eq!(report.summary.acknowledged, 1);
    assert!(drift::render_text(&report).contains(
        "acknowledged: memory/DaxCluster/ReplicationFactor = 5, scaled by alice at 2026-12-01T03:12:00Z (read spike (INC-7)), until 2026-12-08"
    ));
    o.today = "2026-12-09".into();
    let later = check(&fake, &r, &o).await;
    assert_eq!(
        Outcome::from(&later).code(),
        2,
        "an expired record is drift again"
    );
    assert_eq!(later.summary.acknowledged, 0);
    // Expired acceptance notes, acknowledged and resource drift: all in the schema.
    for report in [&report, &later] {
        crate::support::assert_matches_schema(
            &serde_json::to_string(report).expect("json"),
            "schemas/drift-v1.schema.json",
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_or_unfinished_detection_makes_the_run_incomplete_not_clean() {
    let r = rendered("dev");
    let fake = deployed(&r).await;
    fake.script_drift(
        &name(&r, StackId::Cache),
        DriftScript::Failed("Failed to detect drift on resource [Redis]".into()),
    );
    fake.script_drift(&name(&r, StackId::Search), DriftScript::NeverFinishes);
    let mut o = drift_opts(true);
    o.timeout = Duration::from_secs(30);
    let report = check(&fake, &r, &o).await;
    // Incomplete even with --allow-unchecked: those checks did not run.
    assert_eq!(report.summary.incomplete, ["cache", "search"]);
    assert_eq!(
        Outcome::from(&report).code(),
        3,
        "{}",
        drift::render_text(&report)
    );
    let text = drift::render_text(&report);
    assert!(
        text.contains("INCOMPLETE: drift detection DETECTION_FAILED: Failed to detect drift on resource [Redis]"),
        "{text}"
    );
    assert!(
        text.contains("did not finish within the run's 30s timeout"),
        "{text}"
    );
    crate::support::assert_matches_schema(
        &serde_json::to_string(&report).expect("json"),
        "schemas/drift-v1.schema.json",
    );
}

#[tokio::test(start_paused = true)]
async fn a_template_edited_outside_mangactl_a_missing_stack_and_an_orphan_are_drift() {
    let r = rendered("dev");
    let fake = deployed(&r).await;
    // Replace the intent stack with an edited copy, drop edge, and add a
    // stack named like this environment's that nothing renders.
    let intent = name(&r, StackId::Intent);
    let mut edited: Value = serde_json::from_str(
        &r.stacks
            .iter()
            .find(|s| s.id == StackId::Intent)
            .expect("intent")
            .body,
    )
    .expect("json");
    let resources = edited["Resources"].as_object_mut().expect("resources");
    let (first, _) = resources
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.clone()))
        .expect("one");
    resources[&first]["Properties"]["Tags"] =
        serde_json::json!([{"Key": "EditedBy", "Value": "console"}]);
    let fresh = FakeCloudFormation::new();
    for s in &r.stacks {
        if s.id == StackId::Edge {
            continue;
        }
        let live = fake
            .describe_stack(&s.stack_name)
            .await
            .expect("describe")
            .expect("deployed")
            .parameters;
        fresh.seed_stack(Seed {
            name: s.stack_name.clone(),
            status: "UPDATE_COMPLETE".into(),
            status_reason: None,
            template: Some(if s.stack_name == intent {
                edited.to_string()
            } else {
                s.body.clone()
            }),
            parameters: live,
            termination_protection: false,
            events: vec![SeedEvent::new(
                &s.stack_name,
                "AWS::CloudFormation::Stack",
                "UPDATE_COMPLETE",
                None,
                None,
            )],
        });
    }
    fresh.seed_stack(Seed {
        name: "mangaassist-dev-legacy".into(),
        status: "CREATE_COMPLETE".into(),
        status_reason: None,
        template: None,
        parameters: Default::default(),
        termination_protection: false,
        events: vec![],
    });
    let report = check(&fresh, &r, &drift_opts(true)).await;
    assert_eq!(Outcome::from(&report).code(), 2);
    assert_eq!(report.orphans, ["mangaassist-dev-legacy"]);
    assert_eq!(report.summary.missing, 1);
    let i = report
        .stacks
        .iter()
        .find(|s| s.stack == StackId::Intent)
        .expect("intent");
    match &i.code {
        CodeLayer::Drifted { differences } => assert!(
            differences.iter().any(|d| d
                .path
                .starts_with(&format!("Resources.{first}.Properties.Tags"))),
            "{differences:?}"
        ),
        other => panic!("intent: {other:?}"),
    }
}

/// Through the binary against moto: a clean dev exits 3 (moto has no drift
/// detection, so every resource is unchecked) or 0 with
/// `--allow-unchecked`; a parameter changed out of band is code drift
/// (exit 2) in text, JSON and JUnit.
#[test]
fn drift_exit_codes_and_outputs_through_the_binary_against_moto() {
    let moto = Moto::start();
    let tmp = TempDir::new("drift-moto");
    let envs = crate::support::repo().join("environments");
    let envs_arg = envs.to_str().expect("utf8").to_owned();
    let out_arg = tmp.path().join("out").to_str().expect("utf8").to_owned();
    let common = ["--env", "dev", "--environments", &envs_arg];
    let run = |args: &[&str]| {
        let o = moto.mangactl().args(args).output().expect("run");
        eprintln!(
            "$ mangactl {}\n{}{}",
            args.join(" "),
            stdout(&o),
            stderr(&o)
        );
        o
    };
    let o = run(&[&["apply"], &common[..], &["--yes", "--out", &out_arg]].concat());
    assert_eq!(o.status.code(), Some(0));
    let o = run(&[&["drift"], &common[..]].concat());
    assert_eq!(o.status.code(), Some(3), "unchecked is not clean");
    assert!(stdout(&o)
        .contains("UNCHECKED: CloudFormation DetectStackDrift on `mangaassist-dev-network`"));
    assert!(stdout(&o).contains("the endpoint likely does not implement this operation"));
    let o = run(&[&["drift"], &common[..], &["--allow-unchecked"]].concat());
    assert_eq!(o.status.code(), Some(0));

    // Scale records are read from Parameter Store (moto implements it); one
    // that is not a record is skipped, not fatal.
    rt_block(&moto, |ssm: aws_sdk_ssm::Client| async move {
        for (name, value) in [
            (
                "/mangaassist/dev/scale/dax",
                r#"{"version":1,"component":"dax","stack":"memory","logical_id":"DaxCluster","property":"/ReplicationFactor","value":"3","by":"alice","at":"2026-12-01T03:12:00Z","reason":"INC-7","until":"2026-12-08"}"#,
            ),
            ("/mangaassist/dev/scale/junk", "not json"),
        ] {
            ssm.put_parameter()
                .name(name)
                .value(value)
                .r#type(aws_sdk_ssm::types::ParameterType::String)
                .send()
                .await
                .expect("put parameter");
        }
    });
    let o = run(&[&["drift"], &common[..], &["--allow-unchecked"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("/mangaassist/dev/scale/junk: not a scale record"),
        "{}",
        stderr(&o)
    );

    // Someone updates the cache stack by hand with another security group
    // than the one network publishes.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let cfn = crate::moto_client!(aws_sdk_cloudformation, moto);
        let stack = "mangaassist-dev-cache";
        let d = cfn
            .describe_stacks()
            .stack_name(stack)
            .send()
            .await
            .expect("describe");
        let params: Vec<aws_sdk_cloudformation::types::Parameter> = d.stacks()[0]
            .parameters()
            .iter()
            .map(|p| {
                let key = p.parameter_key().unwrap_or_default();
                let value = if key == "NetworkRedisSecurityGroupId" {
                    "sg-0outofband".to_owned()
                } else {
                    p.parameter_value().unwrap_or_default().to_owned()
                };
                aws_sdk_cloudformation::types::Parameter::builder()
                    .parameter_key(key)
                    .parameter_value(value)
                    .build()
            })
            .collect();
        let body = cfn
            .get_template()
            .stack_name(stack)
            .send()
            .await
            .expect("template")
            .template_body()
            .expect("body")
            .to_owned();
        cfn.update_stack()
            .stack_name(stack)
            .template_body(body)
            .set_parameters(Some(params))
            .send()
            .await
            .expect("out-of-band update");
    });
    let o = run(&[&["drift"], &common[..], &["--allow-unchecked"]].concat());
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("~ Parameters.NetworkRedisSecurityGroupId (changed)"),
        "{}",
        stdout(&o)
    );
    let o = run(&[
        &["drift"],
        &common[..],
        &["--allow-unchecked", "--output", "json"],
    ]
    .concat());
    assert_eq!(o.status.code(), Some(2));
    let json: Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(json["schema"], "mangactl.drift/v1");
    crate::support::assert_matches_schema(&stdout(&o), "schemas/drift-v1.schema.json");
    // The replication group is updated in place (the wrapper's model), so
    // the cache stack's outputs stay and no consumer holds a stale value.
    let drifted: Vec<&str> = json["stacks"]
        .as_array()
        .expect("stacks")
        .iter()
        .filter(|s| s["code"]["status"] == "drifted")
        .filter_map(|s| s["stack"].as_str())
        .collect();
    assert_eq!(drifted, ["cache"], "{json}");
    let o = run(&[
        &["drift"],
        &common[..],
        &["--allow-unchecked", "--output", "junit"],
    ]
    .concat());
    assert_eq!(o.status.code(), Some(2));
    let xml = stdout(&o);
    let doc = roxmltree::Document::parse(&xml).expect("JUnit parses as XML");
    assert!(doc.descendants().any(|n| n.has_tag_name("failure")
        && n.attribute("message") == Some("code drift: Parameters.NetworkRedisSecurityGroupId")));
    let o = run(&[
        "size",
        "--env",
        "dev",
        "--environments",
        &envs_arg,
        "--output",
        "junit",
    ]);
    assert_eq!(o.status.code(), Some(1), "junit is drift's only");
}

/// The live-capacity layer through the binary against moto (whose ECS,
/// Application Auto Scaling, DAX and SageMaker backends the wrapper's
/// models fill): out-of-band changes through the service APIs are drift
/// in that layer (exit 2), a desired count moved inside the rendered
/// bounds is not, a scale record acknowledges its change, and an expired
/// one does not.
#[test]
fn live_capacity_changed_out_of_band_is_drift_unless_a_record_covers_it() {
    let dev = AppliedDev::start("drift-live", &[]);
    let moto = &dev.moto;
    let common = [&dev.env()[..], &["--allow-unchecked"]].concat();
    let run = |args: &[&str]| moto.mangactl().args(args).output().expect("run");
    let o = run(&[&["drift"], &common[..]].concat());
    assert_eq!(
        o.status.code(),
        Some(0),
        "as deployed, capacity is in sync: {}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("ok  DaxCluster/ReplicationFactor: live 1, allowed 1"),
        "{}",
        stdout(&o)
    );

    block_on(async {
        let cluster = stack_output(moto, "mangaassist-dev-service", "ClusterName").await;
        let service = stack_output(moto, "mangaassist-dev-service", "ServiceName").await;
        let dax = stack_output(moto, "mangaassist-dev-memory", "DaxClusterName").await;
        let endpoint = stack_output(moto, "mangaassist-dev-intent", "EndpointName").await;
        // Outside the rendered 1..3, and the bounds changed.
        crate::moto_client!(aws_sdk_ecs, moto)
            .update_service()
            .cluster(&cluster)
            .service(&service)
            .desired_count(5)
            .send()
            .await
            .expect("update service");
        crate::moto_client!(aws_sdk_applicationautoscaling, moto)
            .register_scalable_target()
            .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
            .resource_id(format!("service/{cluster}/{service}"))
            .scalable_dimension(
                aws_sdk_applicationautoscaling::types::ScalableDimension::EcsServiceDesiredCount,
            )
            .min_capacity(1)
            .max_capacity(6)
            .send()
            .await
            .expect("register");
        crate::moto_client!(aws_sdk_dax, moto)
            .increase_replication_factor()
            .cluster_name(&dax)
            .new_replication_factor(2)
            .send()
            .await
            .expect("dax");
        // Inside the rendered 1..3: what an autoscaler does, not drift.
        crate::moto_client!(aws_sdk_sagemaker, moto)
            .update_endpoint_weights_and_capacities()
            .endpoint_name(&endpoint)
            .desired_weights_and_capacities(
                aws_sdk_sagemaker::types::DesiredWeightAndCapacity::builder()
                    .variant_name("AllTraffic")
                    .desired_instance_count(3)
                    .build(),
            )
            .send()
            .await
            .expect("sagemaker");
    });
    let items = |json: &Value| -> Vec<(String, String, String)> {
        json["stacks"]
            .as_array()
            .expect("stacks")
            .iter()
            .flat_map(|s| s["capacity"].as_array().cloned().unwrap_or_default())
            .map(|i| {
                (
                    format!(
                        "{}{}",
                        i["logical_id"].as_str().unwrap_or(""),
                        i["property"].as_str().unwrap_or("")
                    ),
                    i["status"].as_str().unwrap_or("").to_owned(),
                    i["actual"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    };
    let o = run(&[&["drift"], &common[..], &["--output", "json"]].concat());
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let json: Value = serde_json::from_str(&stdout(&o)).expect("json");
    crate::support::assert_matches_schema(&stdout(&o), "schemas/drift-v1.schema.json");
    let found = items(&json);
    let status = |key: &str| {
        found
            .iter()
            .filter(|(k, _, _)| k == key)
            .map(|(_, s, a)| (s.as_str(), a.as_str()))
            .collect::<Vec<_>>()
    };
    assert_eq!(status("Service/DesiredCount"), [("drifted", "5")]);
    assert_eq!(
        status("ScalableTarget/MaxCapacity"),
        [("in_sync", "3"), ("drifted", "6")],
        "intent's, then service's"
    );
    assert_eq!(status("DaxCluster/ReplicationFactor"), [("drifted", "2")]);
    assert_eq!(status("Endpoint/DesiredInstanceCount"), [("in_sync", "3")]);
    assert_eq!(json["summary"]["capacity_drifted"], 3, "{json}");
    assert_eq!(
        json["summary"]["code_drifted"], 0,
        "the templates are untouched: {json}"
    );

    // An on-call record covers the DAX change; an expired one no longer
    // covers the bounds.
    rt_block(moto, |ssm: aws_sdk_ssm::Client| async move {
        for (name, value) in [
            (
                "/mangaassist/dev/scale/dax/DaxCluster/ReplicationFactor",
                r#"{"version":1,"component":"dax","stack":"memory","logical_id":"DaxCluster","property":"/ReplicationFactor","value":"2","by":"alice","at":"2026-12-01T03:12:00Z","reason":"INC-7 hot partition","until":"2099-01-01"}"#,
            ),
            (
                "/mangaassist/dev/scale/service/ScalableTarget/MaxCapacity",
                r#"{"version":1,"component":"service","stack":"service","logical_id":"ScalableTarget","property":"/MaxCapacity","value":"6","by":"bob","at":"2020-01-01T03:00:00Z","reason":"INC-1","until":"2020-01-02"}"#,
            ),
        ] {
            ssm.put_parameter()
                .name(name)
                .value(value)
                .r#type(aws_sdk_ssm::types::ParameterType::String)
                .send()
                .await
                .expect("put parameter");
        }
    });
    let o = run(&[&["drift"], &common[..]].concat());
    assert_eq!(
        o.status.code(),
        Some(2),
        "the service changes still drift: {}",
        stdout(&o)
    );
    let text = stdout(&o);
    assert!(text.contains("ack DaxCluster/ReplicationFactor: live 2, allowed 1 (scaled by alice at 2026-12-01T03:12:00Z (INC-7 hot partition), until 2099-01-01)"), "{text}");
    assert!(text.contains("!   ScalableTarget/MaxCapacity: live 6, allowed 3 (scaled to 6 by bob at 2020-01-01T03:00:00Z: INC-1 until 2020-01-02; counts again)"), "{text}");
    assert!(
        text.contains("capacity 2 drifted, 0 unchecked; 0 ignored, 1 acknowledged"),
        "{text}"
    );
}

fn rt_block<F, Fut>(moto: &Moto, f: F)
where
    F: FnOnce(aws_sdk_ssm::Client) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(f(crate::moto_client!(aws_sdk_ssm, moto)));
}

/// The CI recipe's policy (`examples/ci/drift-readonly-policy.json`) allows
/// exactly what drift needs: every call it makes, and the read permissions
/// of every resource type in every shipped environment's templates, each
/// of which the code lists; nothing else.
#[test]
fn the_ci_policy_matches_the_code_and_the_templates() {
    use mangactl::deploy::drift_access::{allows, DRIFT_CALLS, READ_PERMISSIONS};
    let policy: Value = serde_json::from_str(
        &std::fs::read_to_string(
            crate::support::repo().join("examples/ci/drift-readonly-policy.json"),
        )
        .expect("policy"),
    )
    .expect("policy json");
    let allowed: Vec<String> = policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    let is_allowed = |action: &str| allowed.iter().any(|p| allows(p, action));
    let mut needed: std::collections::BTreeSet<&str> = DRIFT_CALLS.iter().copied().collect();
    for env in crate::support::ENVIRONMENTS {
        let r = rendered(env);
        for s in &r.stacks {
            for (id, ty) in s.template.resource_types() {
                let actions = READ_PERMISSIONS
                    .iter()
                    .find(|(t, _)| *t == ty)
                    .map(|(_, a)| *a)
                    .unwrap_or_else(|| panic!("{env}/{}/{id}: no read permissions listed for {ty} in src/deploy/drift_access.rs", s.id));
                needed.extend(actions.iter().copied());
            }
        }
    }
    for action in &needed {
        assert!(is_allowed(action), "the policy does not allow {action}");
    }
    for pattern in &allowed {
        assert!(
            needed.iter().any(|a| allows(pattern, a)),
            "the policy allows {pattern}, which drift does not need"
        );
    }
    assert!(
        allowed.iter().all(|a| {
            let verb = a.split(':').nth(1).unwrap_or_default();
            ["Describe", "Get", "List", "BatchGet", "Detect"]
                .iter()
                .any(|p| verb.starts_with(p))
        }),
        "read-only: {allowed:?}"
    );
}

/// The live-capacity layer through the trait, for what moto cannot show:
/// an ElastiCache replica count changed out of band (with the group still
/// `modifying`), and a read that fails for a reason other than a missing
/// API, which makes the run incomplete even with `--allow-unchecked`.
#[tokio::test(start_paused = true)]
async fn replica_counts_and_failed_capacity_reads_through_the_trait() {
    use mangactl::aws::AwsError;
    use mangactl::deploy::live::ItemStatus;

    let r = rendered("prod");
    let fake = deployed(&r).await;
    let live = Live::as_rendered(&r, &fake);
    let clean = drift::drift(&fake, live.readers(), &r, &drift_opts(true))
        .await
        .expect("drift");
    assert_eq!(clean.summary.capacity_drifted, 0, "{:#?}", clean.stacks);
    assert_eq!(clean.summary.capacity_unchecked, 0);
    assert_eq!(Outcome::from(&clean).code(), 0);
    let cache = |report: &drift::DriftReport| {
        report
            .stacks
            .iter()
            .find(|s| s.stack == StackId::Cache)
            .expect("cache")
            .capacity
            .clone()
    };
    assert_eq!(cache(&clean).len(), 2);

    // Someone drops a replica by hand: prod renders 2 per node group.
    live.capacity.edit(|st| {
        for g in st.groups.values_mut() {
            g.replicas = vec![1];
            g.status = "modifying".into();
        }
    });
    let report = drift::drift(&fake, live.readers(), &r, &drift_opts(true))
        .await
        .expect("drift");
    assert_eq!(Outcome::from(&report).code(), 2);
    let replicas = cache(&report)
        .into_iter()
        .find(|i| i.property == "/ReplicasPerNodeGroup")
        .expect("replicas item");
    assert_eq!(replicas.status, ItemStatus::Drifted);
    assert_eq!(replicas.actual.as_deref(), Some("1"));
    assert_eq!(replicas.allowed.to_string(), "2");
    assert_eq!(
        replicas.note.as_deref(),
        Some("replication group modifying")
    );
    let text = drift::render_text(&report);
    assert!(
        text.contains(
            "!   Redis/ReplicasPerNodeGroup: live 1, allowed 2 (replication group modifying)"
        ),
        "{text}"
    );

    // Put back; then a read the caller may not make.
    live.capacity.edit(|st| {
        for g in st.groups.values_mut() {
            g.replicas = vec![2];
        }
    });
    live.capacity.fail_next(
        "DescribeClusters",
        AwsError::service(
            "DAX",
            "DescribeClusters",
            Some("dax"),
            "AccessDeniedException",
            "not authorized to perform dax:DescribeClusters",
        ),
    );
    let report = drift::drift(&fake, live.readers(), &r, &drift_opts(true))
        .await
        .expect("drift");
    assert!(!report.summary.drift, "{:#?}", report.summary);
    assert_eq!(report.summary.incomplete, ["memory (capacity)"]);
    crate::support::assert_matches_schema(
        &serde_json::to_string(&report).expect("json"),
        "schemas/drift-v1.schema.json",
    );
    assert_eq!(
        Outcome::from(&report).code(),
        3,
        "incomplete even with --allow-unchecked"
    );
    let memory = report
        .stacks
        .iter()
        .find(|s| s.stack == StackId::Memory)
        .expect("memory");
    assert!(memory
        .capacity
        .iter()
        .all(|i| i.status == ItemStatus::Unchecked));
    assert!(
        memory
            .capacity_failed
            .as_deref()
            .is_some_and(|f| f.contains("AccessDeniedException")),
        "{memory:?}"
    );
}
