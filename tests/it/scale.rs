//! `mangactl scale` and `mangactl status`: through the binary against moto
//! (ECS, Application Auto Scaling, DAX, SageMaker, Parameter Store, STS:
//! the wrapper creates real DAX and scalable-target entries; moto reports
//! the running count `MOTO_ECS_SERVICE_RUNNING` says), and, for what moto
//! lacks (ElastiCache replica counts, OpenSearch Serverless), in process
//! through the traits with the fakes.

use std::process::Stdio;

use mangactl::deploy::live::{Component, LiveReaders};
use mangactl::deploy::scale::{self, Attribution, Call, ScaleRequest};
use mangactl::fakes::capacity::FakeRecords;
use serde_json::Value;

use crate::deploy_fake::{apply_yes, rendered};
use crate::drift::Live;
use crate::moto::Moto;
use crate::support::{block_on, environments, run_on, stack_output, stderr, stdout, AppliedDev};

/// The live values the scale changed, read with the services' own SDKs.
struct Live3 {
    desired: i32,
    max: i32,
    dax_nodes: i32,
    instances: i32,
}

fn read_live(moto: &Moto) -> Live3 {
    block_on(async {
        let cluster = stack_output(moto, "mangaassist-dev-service", "ClusterName").await;
        let service = stack_output(moto, "mangaassist-dev-service", "ServiceName").await;
        let dax = stack_output(moto, "mangaassist-dev-memory", "DaxClusterName").await;
        let endpoint = stack_output(moto, "mangaassist-dev-intent", "EndpointName").await;
        let ecs = crate::moto_client!(aws_sdk_ecs, moto)
            .describe_services()
            .cluster(&cluster)
            .services(&service)
            .send()
            .await
            .expect("ecs");
        let aas = crate::moto_client!(aws_sdk_applicationautoscaling, moto)
            .describe_scalable_targets()
            .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
            .send()
            .await
            .expect("aas");
        let d = crate::moto_client!(aws_sdk_dax, moto)
            .describe_clusters()
            .cluster_names(&dax)
            .send()
            .await
            .expect("dax");
        let e = crate::moto_client!(aws_sdk_sagemaker, moto)
            .describe_endpoint()
            .endpoint_name(&endpoint)
            .send()
            .await
            .expect("endpoint");
        Live3 {
            desired: ecs.services()[0].desired_count(),
            max: aas.scalable_targets()[0].max_capacity(),
            dax_nodes: d.clusters()[0].total_nodes().unwrap_or(0),
            instances: e.production_variants()[0]
                .desired_instance_count()
                .unwrap_or(0),
        }
    })
}

fn records(moto: &Moto) -> Vec<String> {
    block_on(async {
        let out = crate::moto_client!(aws_sdk_ssm, moto)
            .get_parameters_by_path()
            .path("/mangaassist/dev/scale/")
            .recursive(true)
            .send()
            .await
            .expect("ssm");
        let mut names: Vec<String> = out
            .parameters()
            .iter()
            .filter_map(|p| p.name().map(str::to_owned))
            .collect();
        names.sort();
        names
    })
}

#[test]
fn scale_status_and_the_next_apply_against_moto() {
    // moto reports this running count for every service.
    let dev = AppliedDev::start("scale-moto", &[("MOTO_ECS_SERVICE_RUNNING", "2")]);
    let moto = &dev.moto;
    let env = dev.env();
    let apply = dev.apply();

    let o = run_on(moto, &[&["status"], &env[..]].concat());
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    assert!(text.contains("service: sized 1 tasks (1..3)"), "{text}");
    assert!(
        text.contains("ok  Service/DesiredCount: live 1, allowed 1..3"),
        "{text}"
    );
    assert!(text.contains("Verdict: healthy"), "{text}");
    assert!(text.contains("critical path"), "the budget table: {text}");

    // No terminal and no --yes: refused, nothing changed.
    let scale_service = [
        &["scale", "service"],
        &env[..],
        &["--max", "6", "--desired", "2"],
    ]
    .concat();
    let o = run_on(moto, &scale_service);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("stdin is not a terminal"),
        "{}",
        stderr(&o)
    );
    // --dry-run prints the calls and makes none.
    let o = run_on(moto, &[&scale_service[..], &["--dry-run"]].concat());
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    assert!(
        text.contains("ScalableTarget/MaxCapacity: 3 -> 6"),
        "{text}"
    );
    assert!(text.contains("Service/DesiredCount: 1 -> 2"), "{text}");
    assert!(
        text.contains("application-autoscaling RegisterScalableTarget ServiceNamespace=ecs"),
        "{text}"
    );
    assert!(
        text.contains("ecs UpdateService cluster=") && text.contains("desiredCount=2"),
        "{text}"
    );
    assert!(
        text.contains("ssm PutParameter Name=/mangaassist/dev/scale/service/Service/DesiredCount"),
        "{text}"
    );
    let before = read_live(moto);
    assert_eq!(
        (before.desired, before.max),
        (1, 3),
        "the dry run changed nothing"
    );
    assert!(records(moto).is_empty());

    // The change, waited for: moto runs 2 tasks.
    let o = run_on(
        moto,
        &[
            &scale_service[..],
            &[
                "--yes",
                "--reason",
                "INC-9",
                "--wait",
                "--wait-timeout",
                "30s",
            ],
        ]
        .concat(),
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("waiting for service: running 2/2"),
        "{}",
        stderr(&o)
    );
    let o = run_on(
        moto,
        &[&["scale", "dax"], &env[..], &["--nodes", "3", "--yes"]].concat(),
    );
    assert_eq!(o.status.code(), Some(0));
    let o = run_on(
        moto,
        &[
            &["scale", "intent"],
            &env[..],
            &["--instances", "2", "--yes"],
        ]
        .concat(),
    );
    assert_eq!(o.status.code(), Some(0));
    let now = read_live(moto);
    assert_eq!(
        (now.desired, now.max, now.dax_nodes, now.instances),
        (2, 6, 3, 2)
    );
    assert_eq!(
        records(moto),
        [
            "/mangaassist/dev/scale/dax/DaxCluster/ReplicationFactor",
            "/mangaassist/dev/scale/intent/Endpoint/DesiredInstanceCount",
            "/mangaassist/dev/scale/service/ScalableTarget/MaxCapacity",
            "/mangaassist/dev/scale/service/Service/DesiredCount",
        ]
    );
    // moto's DAX never reports its nodes active: --wait runs out (exit 3).
    let o = run_on(
        moto,
        &[
            &["scale", "dax"],
            &env[..],
            &["--nodes", "4", "--yes", "--wait", "--wait-timeout", "1s"],
        ]
        .concat(),
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("did not settle within 1s"),
        "{}",
        stderr(&o)
    );

    // drift acknowledges the records; status says scaled.
    let o = run_on(
        moto,
        &[&["drift"], &env[..], &["--allow-unchecked"]].concat(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let text = stdout(&o);
    assert!(
        text.contains("ack DaxCluster/ReplicationFactor: live 4, allowed 1"),
        "{text}"
    );
    assert!(
        text.contains("ack ScalableTarget/MaxCapacity: live 6, allowed 3"),
        "{text}"
    );
    let o = run_on(
        moto,
        &[&["status"], &env[..], &["--output", "json"]].concat(),
    );
    let json: Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(json["status"]["verdict"], "scaled", "{json}");

    // The next apply keeps the scaled values (plan says so), and drift
    // stays clean: the deployed templates now carry them.
    let o = run_on(moto, &[&["plan"], &env[..]].concat());
    let text = stdout(&o);
    assert!(
        text.contains("= memory/DaxCluster/ReplicationFactor stays 4 (renders 1)"),
        "{text}"
    );
    assert!(
        text.contains("= service/ScalableTarget/MaxCapacity stays 6 (renders 3)"),
        "{text}"
    );
    assert_eq!(run_on(moto, &apply).status.code(), Some(0));
    let after = read_live(moto);
    assert_eq!((after.max, after.dax_nodes), (6, 4), "apply undid nothing");
    let o = run_on(
        moto,
        &[&["drift"], &env[..], &["--allow-unchecked"]].concat(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("code: in sync"), "{}", stdout(&o));

    // --revert: back to the rendering, records gone.
    let o = run_on(
        moto,
        &[&["scale", "service"], &env[..], &["--revert", "--yes"]].concat(),
    );
    assert_eq!(o.status.code(), Some(0));
    let r = read_live(moto);
    assert_eq!((r.desired, r.max), (1, 3));
    assert!(
        !records(moto).iter().any(|n| n.contains("/service/")),
        "{:?}",
        records(moto)
    );
}

/// Everything that needs no call is refused before any: the endpoint here
/// listens nowhere, so a call would fail differently.
#[test]
fn bad_values_and_the_prod_rules_are_refused_before_any_call() {
    let envs = environments();
    let scale = |args: &[&str]| {
        let o = crate::support::mangactl()
            .args(["scale"])
            .args(args)
            .args([
                "--environments",
                &envs,
                "--endpoint-url",
                "http://127.0.0.1:9",
                "--yes",
            ])
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .output()
            .expect("run");
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        stderr(&o)
    };
    let e = scale(&["service", "--env", "prod", "--min", "1"]);
    assert!(e.contains("--reason is required in prod"), "{e}");
    assert!(
        e.contains("--min 1 is below the sized minimum") && e.contains("for prod; add --force"),
        "{e}"
    );
    assert!(!e.contains("127.0.0.1:9"), "no call was made: {e}");
    let e = scale(&[
        "cache",
        "--env",
        "prod",
        "--replicas",
        "0",
        "--reason",
        "test",
        "--force",
    ]);
    assert!(
        e.contains("--replicas 0 on a Multi-AZ replication group"),
        "{e}"
    );
    let e = scale(&["cache", "--env", "dev", "--node-type", "cache.z9.huge"]);
    assert!(
        e.contains("--node-type cache.z9.huge is not a node type the sizing model knows"),
        "{e}"
    );
    let e = scale(&[
        "service",
        "--env",
        "dev",
        "--min",
        "5",
        "--max",
        "2",
        "--replicas",
        "1",
    ]);
    assert!(e.contains("--min 5 is above --max 2"), "{e}");
    assert!(e.contains("--replicas does not apply to service"), "{e}");
    let e = scale(&["dax", "--env", "dev", "--nodes", "12"]);
    assert!(e.contains("a DAX cluster has 1 to 11 nodes"), "{e}");
    let e = scale(&["dax", "--env", "dev"]);
    assert!(e.contains("nothing to change"), "{e}");
}

fn who() -> Attribution {
    Attribution {
        by: "arn:aws:iam::123456789012:user/alice".into(),
        at: "2026-12-01T03:12:00Z".into(),
        reason: "INC-7".into(),
        until: "2026-12-02".into(),
    }
}

/// ElastiCache replicas and node type, and OpenSearch Serverless limits,
/// through the traits (moto has neither replica counts nor OpenSearch
/// Serverless account settings).
#[tokio::test(start_paused = true)]
async fn cache_and_search_scale_through_the_traits() {
    let r = rendered("prod");
    let fake = mangactl::fakes::cloudformation::FakeCloudFormation::new();
    apply_yes(&fake, &r).await;
    let live = Live::as_rendered(&r, &fake);
    let store = FakeRecords::default();
    let req = ScaleRequest {
        replicas: Some(3),
        node_type: Some("cache.r7g.large".into()),
        reason: Some("INC-7".into()),
        ..ScaleRequest::default()
    };
    scale::validate(Component::Cache, &req, &r).expect("valid");
    let plan = scale::prepare(&fake, live.readers(), &r, Component::Cache, &req)
        .await
        .expect("prepare");
    assert!(
        matches!(plan.calls[0], Call::SetReplicas { from: 2, to: 3, .. }),
        "{:?}",
        plan.calls
    );
    assert!(
        matches!(&plan.calls[1], Call::SetNodeType { node_type, .. } if node_type == "cache.r7g.large")
    );
    let text = scale::render_text(&plan, Some(&who()));
    assert!(
        text.contains("Redis/ReplicasPerNodeGroup: 2 -> 3"),
        "{text}"
    );
    assert!(text.contains("utilisation at peak"), "{text}");
    scale::execute(live.readers(), &store, &plan, &who())
        .await
        .expect("execute");
    let st = live.capacity.state();
    assert!(
        st.calls.contains(&"IncreaseReplicaCount".to_owned()),
        "{:?}",
        st.calls
    );
    assert!(st.calls.contains(&"ModifyReplicationGroup".to_owned()));
    let g = st.groups.values().next().expect("group");
    assert_eq!(
        (g.replicas.clone(), g.node_type.as_str(), g.status.as_str()),
        (vec![3], "cache.r7g.large", "modifying")
    );
    assert_eq!(
        store.all().keys().cloned().collect::<Vec<_>>(),
        [
            "/mangaassist/prod/scale/cache/Redis/CacheNodeType",
            "/mangaassist/prod/scale/cache/Redis/ReplicasPerNodeGroup",
        ]
    );
    // The group is `modifying` until the next describe: --wait sees it settle.
    let lines = std::sync::Mutex::new(Vec::new());
    let settled = scale::wait(
        live.readers(),
        &plan,
        std::time::Duration::from_secs(60),
        std::time::Duration::from_secs(5),
        &|l: &str| lines.lock().expect("lines").push(l.to_owned()),
    )
    .await
    .expect("wait");
    assert!(settled);
    assert_eq!(
        *lines.lock().expect("lines"),
        ["replication group modifying", "replication group available"]
    );

    // Decreasing below 1 replica is refused by the API rule too (Multi-AZ).
    let err = live_readers_decrease(&live).await;
    assert!(
        err.contains("at least one replica") || err.contains("Automatic failover"),
        "{err}"
    );

    // Search limits: UpdateAccountSettings with the new maxima.
    let req = ScaleRequest {
        max_search_ocu: Some(40),
        reason: Some("INC-7".into()),
        ..ScaleRequest::default()
    };
    scale::validate(Component::Search, &req, &r).expect("valid");
    let plan = scale::prepare(&fake, live.readers(), &r, Component::Search, &req)
        .await
        .expect("prepare");
    scale::execute(live.readers(), &store, &plan, &who())
        .await
        .expect("execute");
    let sent = live.search.update_requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0]["capacityLimits"]["maxSearchCapacityInOCU"], 40,
        "{:?}",
        sent[0]
    );
    assert!(store.all().contains_key(
        "/mangaassist/prod/scale/search/AccountSettings/capacityLimits/maxSearchCapacityInOCU"
    ));
}

async fn live_readers_decrease(live: &Live) -> String {
    let readers: LiveReaders<'_> = live.readers();
    let group = live
        .capacity
        .state()
        .groups
        .keys()
        .next()
        .cloned()
        .expect("group");
    match readers.capacity.set_replicas(&group, 3, 0).await {
        Ok(()) => "accepted".into(),
        Err(e) => e.to_string(),
    }
}

/// A scale is refused while the stack has an operation in progress, naming
/// who started it; `status` calls that stuck.
#[tokio::test(start_paused = true)]
async fn a_busy_stack_refuses_the_scale_and_status_says_stuck() {
    use mangactl::deploy::status::{self, Verdict};
    use mangactl::fakes::cloudformation::{Seed, SeedEvent};
    use stacks::stacks::StackId;

    let r = rendered("dev");
    let fake = mangactl::fakes::cloudformation::FakeCloudFormation::new();
    apply_yes(&fake, &r).await;
    let live = Live::as_rendered(&r, &fake);
    let memory = crate::deploy_fake::name(&r, StackId::Memory);
    let token = "Console-UpdateStack-7f59c3cf-00d2-40c7-b2ff-e75db0987002";
    let body = r
        .stacks
        .iter()
        .find(|s| s.id == StackId::Memory)
        .expect("memory")
        .body
        .clone();
    fake.seed_stack(Seed {
        name: memory.clone(),
        status: "UPDATE_IN_PROGRESS".into(),
        status_reason: None,
        template: Some(body),
        parameters: Default::default(),
        termination_protection: false,
        events: vec![SeedEvent::new(
            &memory,
            "AWS::CloudFormation::Stack",
            "UPDATE_IN_PROGRESS",
            Some("User Initiated"),
            Some(token),
        )],
    });
    let req = ScaleRequest {
        nodes: Some(3),
        ..ScaleRequest::default()
    };
    let err = scale::prepare(&fake, live.readers(), &r, Component::Dax, &req)
        .await
        .expect_err("refused");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("{memory} is UPDATE_IN_PROGRESS")),
        "{msg}"
    );
    assert!(msg.contains(token), "names who: {msg}");
    assert!(
        live.capacity
            .state()
            .calls
            .iter()
            .all(|c| !c.starts_with("Increase")),
        "no change was made"
    );

    let mut report = status::status(&fake, live.readers(), &r)
        .await
        .expect("status");
    status::judge(&mut report, &[], "2026-12-01");
    assert_eq!(report.verdict, Verdict::Stuck, "{:?}", report.why);
    assert!(report.why.iter().any(|w| w.contains("UPDATE_IN_PROGRESS")));
}

/// An instance-type change of the autoscaled intent variant: plan says
/// apply releases the scaling resources first, and apply deploys the
/// template without them before the update that creates them again
/// (SageMaker refuses the change on a scalable target).
#[tokio::test(start_paused = true)]
async fn an_instance_type_change_releases_the_endpoints_autoscaling_first() {
    use mangactl::aws::CloudFormation;
    use mangactl::deploy::apply::ApplyStatus;
    use mangactl::deploy::plan::{self, PlanOptions};
    use mangactl::deploy::Backoff;
    use stacks::stacks::StackId;

    let r = rendered("prod");
    let fake = mangactl::fakes::cloudformation::FakeCloudFormation::new();
    apply_yes(&fake, &r).await;
    let mut bigger = r.clone();
    let intent = bigger
        .stacks
        .iter()
        .find(|s| s.id == StackId::Intent)
        .expect("intent")
        .template
        .to_value();
    let mut variants =
        intent["Resources"]["EndpointConfig"]["Properties"]["ProductionVariants"].clone();
    // A different type from the one sizing chose (ml.c6i.2xlarge in prod).
    assert_ne!(variants[0]["InstanceType"], "ml.c6i.4xlarge");
    variants[0]["InstanceType"] = "ml.c6i.4xlarge".into();
    bigger
        .replace_property(
            StackId::Intent,
            "EndpointConfig",
            "ProductionVariants",
            variants,
        )
        .expect("re-render")
        .expect("the property exists");
    let p = plan::plan(
        &fake,
        &bigger,
        &PlanOptions {
            only: None,
            change_set_name: "mangactl-plan-test".into(),
            concurrency: 4,
            backoff: Backoff::default(),
            revert_drift: false,
        },
    )
    .await
    .expect("plan");
    plan::discard(&fake, &p).await;
    assert!(p.stack(StackId::Intent).is_some_and(|s| s.release_scaling));
    assert!(plan::render_text(&p).contains("apply first removes its scaling target and policy"));

    let name = crate::deploy_fake::name(&r, StackId::Intent);
    let before = fake.calls().len();
    let report = apply_yes(&fake, &bigger).await;
    assert_eq!(report.status, ApplyStatus::Applied);
    let intent_calls: Vec<String> = fake.calls()[before..]
        .iter()
        .filter(|c| c.ends_with(&name) || c.contains(&format!("{name} ")))
        .cloned()
        .collect();
    let executes = intent_calls
        .iter()
        .filter(|c| c.starts_with("ExecuteChangeSet"))
        .count();
    assert_eq!(executes, 2, "release, then the update: {intent_calls:?}");
    let deployed: Value =
        serde_json::from_str(&fake.template(&name).await.expect("template").expect("body"))
            .expect("json");
    assert_eq!(
        deployed["Resources"]["EndpointConfig"]["Properties"]["ProductionVariants"][0]
            ["InstanceType"],
        "ml.c6i.4xlarge"
    );
    assert!(
        deployed["Resources"]["ScalableTarget"].is_object(),
        "scaling is back"
    );
    // Nothing left to do: a second plan does not release again.
    let again = plan::plan(
        &fake,
        &bigger,
        &PlanOptions {
            only: None,
            change_set_name: "mangactl-plan-test2".into(),
            concurrency: 4,
            backoff: Backoff::default(),
            revert_drift: false,
        },
    )
    .await
    .expect("plan");
    plan::discard(&fake, &again).await;
    assert!(again
        .stack(StackId::Intent)
        .is_some_and(|s| !s.release_scaling));
}

/// Prod's service follows a scheduled minimum (America/New_York; 6 tasks
/// from 18:00 to 22:59, the floor 5 otherwise: the stack test in
/// stacks/src/stacks/tests.rs works it out). An on-call scale takes
/// precedence: it suspends the schedule live and in the rendering while
/// its record stands; `--revert` resumes it at the minimum due this hour.
/// Drift admits the hour's minimum, or the floor, and nothing else.
#[tokio::test(start_paused = true)]
async fn a_scale_suspends_the_schedule_and_revert_resumes_it_at_the_hours_minimum() {
    use mangactl::aws::capacity::{Bounds, Capacity};
    use mangactl::aws::CloudFormation;
    use mangactl::deploy::holds;
    use mangactl::deploy::live;

    let r = rendered("prod");
    let fake = mangactl::fakes::cloudformation::FakeCloudFormation::new();
    apply_yes(&fake, &r).await;
    let live = Live::as_rendered(&r, &fake);
    // The readers' instant, 2026-12-01T00:00Z, is 19:00 in New York.
    let service = r
        .stacks
        .iter()
        .find(|s| s.id == stacks::stacks::StackId::Service)
        .expect("service");
    let stack = fake
        .describe_stack(&service.stack_name)
        .await
        .expect("describe")
        .expect("stack");
    let min_item = |check: &live::LiveCheck| {
        check
            .items
            .iter()
            .find(|i| i.logical_id == "ScalableTarget" && i.property == "/MinCapacity")
            .cloned()
            .expect("min item")
    };
    let id = live::Target::of(Component::Service, &stack, service)
        .expect("target")
        .scalable_id()
        .expect("scalable id");
    let set_min = |min: u32| Bounds {
        min,
        max: 18,
        scheduled_suspended: None,
    };

    // The floor (what the stack registered) and the hour's 6 are admitted;
    // 7 is not, and neither is 6 at 03:00, when the floor stands.
    let item = min_item(&live::check(live.readers(), &r, Component::Service, &stack).await);
    assert_eq!(item.status, live::ItemStatus::InSync, "{item:?}");
    live.capacity
        .set_bounds(&id, set_min(6))
        .await
        .expect("set");
    let item = min_item(&live::check(live.readers(), &r, Component::Service, &stack).await);
    assert_eq!(item.status, live::ItemStatus::InSync, "{item:?}");
    assert!(
        item.allowed
            .to_string()
            .contains("6 (scheduled from 19:00 America/New_York)"),
        "{}",
        item.allowed
    );
    let night = LiveReaders {
        now: live.readers().now + 8 * 3600,
        ..live.readers()
    };
    let item = min_item(&live::check(night, &r, Component::Service, &stack).await);
    assert_eq!(item.status, live::ItemStatus::Drifted, "{item:?}");
    live.capacity
        .set_bounds(&id, set_min(7))
        .await
        .expect("set");
    let item = min_item(&live::check(live.readers(), &r, Component::Service, &stack).await);
    assert_eq!(item.status, live::ItemStatus::Drifted, "{item:?}");
    live.capacity
        .set_bounds(&id, set_min(5))
        .await
        .expect("set");

    // The on-call scale: RegisterScalableTarget suspends scheduled scaling.
    let store = FakeRecords::default();
    let req = ScaleRequest {
        min: Some(8),
        desired: Some(8),
        reason: Some("INC-7".into()),
        ..ScaleRequest::default()
    };
    scale::validate(Component::Service, &req, &r).expect("valid");
    let plan = scale::prepare(&fake, live.readers(), &r, Component::Service, &req)
        .await
        .expect("prepare");
    assert!(
        matches!(
            plan.calls[0],
            Call::SetBounds {
                bounds: Bounds {
                    min: 8,
                    max: 18,
                    scheduled_suspended: Some(true)
                },
                ..
            }
        ),
        "{:?}",
        plan.calls
    );
    let text = scale::render_text(&plan, Some(&who()));
    assert!(
        text.contains("ScalableTarget/SuspendedState/ScheduledScalingSuspended: false -> true"),
        "{text}"
    );
    let call = plan.calls[0].to_string();
    assert!(
        call.ends_with("SuspendedState.ScheduledScalingSuspended=true"),
        "{call}"
    );
    scale::execute(live.readers(), &store, &plan, &who())
        .await
        .expect("execute");
    let live_target = live.capacity.state().targets[&id.resource_id];
    assert_eq!(
        (live_target.min, live_target.scheduled_suspended),
        (8, Some(true))
    );

    // The rendering keeps the schedule suspended while the records stand,
    // and resumes it once they expire.
    let records: Vec<_> = scale::records(&plan, &who());
    let mut held = r.clone();
    let holds = holds::apply_holds(&mut held, &records, "2026-12-01").expect("holds");
    assert!(
        holds
            .iter()
            .any(|h| h.property == holds::SCHEDULE_SUSPENDED && h.held == "true"),
        "{holds:?}"
    );
    let suspended = |r: &stacks::render::Rendered| {
        r.stacks
            .iter()
            .find(|s| s.id == stacks::stacks::StackId::Service)
            .map(|s| {
                s.template.to_value()["Resources"]["ScalableTarget"]["Properties"]["SuspendedState"]
                    ["ScheduledScalingSuspended"]
                    .clone()
            })
    };
    assert_eq!(suspended(&held), Some(Value::Bool(true)));
    let mut expired = r.clone();
    holds::apply_holds(&mut expired, &records, "2026-12-03").expect("holds");
    assert_eq!(suspended(&expired), Some(Value::Bool(false)));
    // Suspended, the schedule no longer sets what MinCapacity may be: the
    // held rendering says exactly the record's 8, not "6 (scheduled…)".
    let item = min_item(&live::check(live.readers(), &held, Component::Service, &stack).await);
    assert_eq!(item.allowed.to_string(), "8", "{item:?}");
    assert_eq!(item.status, live::ItemStatus::InSync, "{item:?}");

    // --revert: back to the minimum due at 19:00 (6), schedule resumed.
    let req = ScaleRequest {
        revert: true,
        ..ScaleRequest::default()
    };
    let plan = scale::prepare(&fake, live.readers(), &r, Component::Service, &req)
        .await
        .expect("prepare");
    assert!(
        matches!(
            plan.calls[0],
            Call::SetBounds {
                bounds: Bounds {
                    min: 6,
                    max: 18,
                    scheduled_suspended: Some(false)
                },
                ..
            }
        ),
        "{:?}",
        plan.calls
    );
}
