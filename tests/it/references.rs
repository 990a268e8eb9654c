//! Cross-stack references (`src/deploy/references.rs`) against the scripted
//! fake, which enforces CloudFormation's export rules and binds parameters:
//!
//! - the fake itself refuses to change or delete an export in use, as
//!   CloudFormation does (the reason references are parameters now);
//! - `az_count` 2 → 3: plan shows the consumers that follow network's
//!   subnet outputs, apply updates network and then them, and a second plan
//!   has nothing to do;
//! - a deployment made with exports moves to parameters: consumers first,
//!   then the producers drop their exports, nothing added, removed or
//!   replaced;
//! - `destroy --stack network` is refused while consumers reference it.
//!
//! The same `az_count` scenario runs through the binary against moto in
//! `deploy_moto.rs`.

use std::collections::BTreeMap;

use mangactl::aws::cloudformation::{ChangeSetKind, ChangeSetRequest};
use mangactl::aws::CloudFormation;
use mangactl::deploy::apply::ApplyStatus;
use mangactl::deploy::confirm::ScriptedPrompter;
use mangactl::deploy::destroy::{self, DestroyOptions};
use mangactl::deploy::plan::{self, PlanAction, PlanOptions};
use mangactl::deploy::{Backoff, DeployError};
use mangactl::fakes::cloudformation::{FakeCloudFormation, Seed, SeedEvent};
use mangactl::outcome::Outcome;
use serde_json::{json, Value};
use stacks::render::Rendered;
use stacks::stacks::StackId;
use tokio::sync::watch;

use crate::deploy_fake::{apply_yes, plain};
use crate::support::{repo, TempDir};

const STACK: &str = "AWS::CloudFormation::Stack";

/// dev rendered with `az_count` changed, from a copy of the environments.
fn dev_with_azs(tmp: &TempDir, azs: u32) -> Rendered {
    let dir = tmp.path().join(format!("az{azs}"));
    std::fs::create_dir_all(&dir).expect("dir");
    let dev = std::fs::read_to_string(repo().join("environments/dev.yaml")).expect("dev.yaml");
    let edited = dev.replace("az_count: 2", &format!("az_count: {azs}"));
    assert!(azs == 2 || edited != dev, "dev.yaml states az_count: 2");
    std::fs::write(dir.join("dev.yaml"), edited).expect("write");
    mangactl::cli::plan::rendered_for_deploy(&dir, "dev").expect("render")
}

/// The templates as the first releases rendered them: published outputs
/// exported as `mangaassist-<env>-<stack>-<Output>`, references imported
/// with `Fn::ImportValue` (lists through `Fn::Split`).
fn legacy(r: &Rendered) -> BTreeMap<StackId, String> {
    let prefix = format!("mangaassist-{}", r.manifest.environment);
    let export = |stack: StackId, output: &str| format!("{prefix}-{}-{output}", stack.name());
    r.stacks
        .iter()
        .map(|s| {
            let m = &r.manifest.stacks[&s.id];
            let mut v = s.template.to_value();
            for key in &m.published {
                v["Outputs"][key]["Export"] = json!({ "Name": export(s.id, key) });
            }
            fn swap(v: &mut Value, param: &str, with: &Value) {
                match v {
                    Value::Object(o) if o.len() == 1 && o.get("Ref") == Some(&json!(param)) => {
                        *v = with.clone();
                    }
                    Value::Object(o) => o.values_mut().for_each(|x| swap(x, param, with)),
                    Value::Array(a) => a.iter_mut().for_each(|x| swap(x, param, with)),
                    _ => {}
                }
            }
            for (param, reference) in &m.references {
                let import =
                    json!({ "Fn::ImportValue": export(reference.stack, &reference.output) });
                let with = if reference.list {
                    json!({ "Fn::Split": [",", import] })
                } else {
                    import
                };
                for section in ["Resources", "Outputs"] {
                    if let Some(x) = v.get_mut(section) {
                        swap(x, param, &with);
                    }
                }
                if let Some(ps) = v.get_mut("Parameters").and_then(Value::as_object_mut) {
                    ps.remove(param);
                }
            }
            if v["Parameters"].as_object().is_some_and(|p| p.is_empty()) {
                v.as_object_mut().map(|o| o.remove("Parameters"));
            }
            (s.id, serde_json::to_string_pretty(&v).expect("json"))
        })
        .collect()
}

fn seed_legacy(fake: &FakeCloudFormation, r: &Rendered) {
    let bodies = legacy(r);
    for s in &r.stacks {
        fake.seed_stack(Seed {
            name: s.stack_name.clone(),
            status: "CREATE_COMPLETE".into(),
            status_reason: None,
            template: Some(bodies[&s.id].clone()),
            // Lookups were parameters before references were.
            parameters: r.lookups.get(&s.id).cloned().unwrap_or_default(),
            termination_protection: false,
            events: vec![SeedEvent::new(
                &s.stack_name,
                STACK,
                "CREATE_COMPLETE",
                None,
                None,
            )],
        });
    }
}

fn stack_name(r: &Rendered, id: StackId) -> String {
    r.manifest.stacks[&id].stack_name.clone()
}

fn plan_opts() -> PlanOptions {
    PlanOptions {
        only: None,
        change_set_name: "mangactl-plan-test".into(),
        concurrency: 4,
        backoff: Backoff::default(),
        revert_drift: false,
    }
}

/// Polls the fake (each describe advances an operation by a step) until
/// the stack's operation is over; returns its status.
async fn settle(fake: &FakeCloudFormation, stack: &str) -> String {
    for _ in 0..500 {
        let s = fake.describe_stack(stack).await.expect("describe");
        match s {
            Some(s) if s.status.is_in_progress() => continue,
            Some(s) => return s.status.to_string(),
            None => return "DELETE_COMPLETE".into(),
        }
    }
    panic!("{stack} never settled");
}

fn position(calls: &[String], call: &str) -> usize {
    calls
        .iter()
        .rposition(|c| c == call)
        .unwrap_or_else(|| panic!("no `{call}` in {calls:#?}"))
}

#[tokio::test(start_paused = true)]
async fn the_fake_refuses_to_change_or_delete_an_export_in_use_as_cloudformation_does() {
    let tmp = TempDir::new("refs-legacy-rule");
    let (az2, az3) = (dev_with_azs(&tmp, 2), dev_with_azs(&tmp, 3));
    let fake = FakeCloudFormation::new();
    seed_legacy(&fake, &az2);
    let network = stack_name(&az2, StackId::Network);

    // The az_count change as the export-based templates made it: the
    // subnet export's value changes while four stacks import it.
    let request = ChangeSetRequest {
        stack_name: network.clone(),
        change_set_name: "legacy".into(),
        kind: ChangeSetKind::Update,
        template_body: legacy(&az3)[&StackId::Network].clone(),
        parameters: az3.lookups[&StackId::Network].clone(),
        capabilities: vec![],
        tags: BTreeMap::new(),
        description: None,
        revert_drift: false,
    };
    let id = fake.create_change_set(&request).await.expect("change set");
    let cs = loop {
        let cs = fake
            .describe_change_set(&network, &id)
            .await
            .expect("describe");
        if !cs.is_pending() {
            break cs;
        }
    };
    assert!(cs.is_ready(), "the change set itself is accepted: {cs:?}");
    fake.execute_change_set(&network, &id, "token-1")
        .await
        .expect("execute");
    assert_eq!(settle(&fake, &network).await, "UPDATE_ROLLBACK_COMPLETE");
    let events = fake.stack_events(&network).await.expect("events");
    let reason = events
        .iter()
        .filter(|e| e.is_stack_level() && e.status == "UPDATE_ROLLBACK_IN_PROGRESS")
        .find_map(|e| e.reason.clone())
        .expect("a rollback reason");
    assert!(
        reason.starts_with("Export mangaassist-dev-network-")
            && reason.contains("cannot be updated as it is in use by mangaassist-dev-"),
        "{reason}"
    );

    // Nor can the producer be deleted while imported.
    fake.delete_stack(&network, "token-2")
        .await
        .expect("delete call");
    assert_eq!(settle(&fake, &network).await, "DELETE_FAILED");
    let events = fake.stack_events(&network).await.expect("events");
    assert!(
        events.iter().any(|e| e
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("cannot be deleted as it is in use by"))),
        "{events:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn az_count_2_to_3_updates_network_then_its_consumers_and_converges() {
    let tmp = TempDir::new("refs-azs");
    let (az2, az3) = (dev_with_azs(&tmp, 2), dev_with_azs(&tmp, 3));
    let fake = FakeCloudFormation::new();
    let first = apply_yes(&fake, &az2).await;
    assert_eq!(first.status, ApplyStatus::Applied);

    let p = plan::plan(&fake, &az3, &plan_opts())
        .await
        .expect("plan az3");
    plan::discard(&fake, &p).await;
    assert_eq!(Outcome::from(&p).code(), 2);
    let text = plan::render_text(&p);
    let network = p.stack(StackId::Network).expect("network");
    assert_eq!(network.action, PlanAction::Update, "{text}");
    for consumer in [
        StackId::Memory,
        StackId::Cache,
        StackId::Search,
        StackId::Service,
    ] {
        let s = p.stack(consumer).expect("consumer");
        assert!(
            s.follows
                .iter()
                .any(|f| f.parameter == "NetworkPrivateSubnetIds"
                    && f.stack == StackId::Network
                    && f.how == "changed"
                    && !f.used_by.is_empty()),
            "{consumer} follows network's private subnets: {text}"
        );
        assert!(s.has_changes(), "{text}");
    }
    assert!(
        text.contains("~ parameter NetworkPrivateSubnetIds follows network.PrivateSubnetIds (changed by this apply); used by RedisSubnetGroup"),
        "{text}"
    );
    for unaffected in [StackId::Intent, StackId::Edge, StackId::Observability] {
        assert!(
            !p.stack(unaffected).expect("stack").has_changes(),
            "{unaffected}: {text}"
        );
    }

    let before = fake.calls().len();
    let report = apply_yes(&fake, &az3).await;
    assert_eq!(report.status, ApplyStatus::Applied);
    let calls = fake.calls()[before..].to_vec();
    let network_done = position(
        &calls,
        &format!("ExecuteChangeSet {}", stack_name(&az3, StackId::Network)),
    );
    for consumer in [
        StackId::Memory,
        StackId::Cache,
        StackId::Search,
        StackId::Service,
    ] {
        let name = stack_name(&az3, consumer);
        let executed = position(&calls, &format!("ExecuteChangeSet {name}"));
        assert!(
            network_done < executed,
            "{consumer} after network: {calls:#?}"
        );
        // Its change set was made again once network's outputs had changed.
        let made = position(&calls, &format!("CreateChangeSet {name} UPDATE"));
        assert!(network_done < made, "{consumer}: {calls:#?}");
    }

    let again = plan::plan(&fake, &az3, &plan_opts())
        .await
        .expect("plan again");
    plan::discard(&fake, &again).await;
    assert_eq!(
        Outcome::from(&again).code(),
        0,
        "{}",
        plan::render_text(&again)
    );
}

#[tokio::test(start_paused = true)]
async fn an_export_based_deployment_moves_to_parameters_consumers_first_replacing_nothing() {
    let tmp = TempDir::new("refs-migrate");
    let r = dev_with_azs(&tmp, 2);
    let fake = FakeCloudFormation::new();
    seed_legacy(&fake, &r);
    let report = apply_yes(&fake, &r).await;
    assert_eq!(report.status, ApplyStatus::Applied, "{:?}", report.results);
    for s in &report.plan.stacks {
        assert_eq!(s.action, PlanAction::Update, "{}", s.stack);
        assert!(
            s.changes.is_empty(),
            "{}: only parameters and outputs change, no resource: {:?}",
            s.stack,
            s.changes
        );
    }
    let calls = fake.calls();
    for (consumer, producers) in &r.graph.depends_on {
        let c = position(
            &calls,
            &format!("ExecuteChangeSet {}", stack_name(&r, *consumer)),
        );
        for producer in producers {
            let p = position(
                &calls,
                &format!("ExecuteChangeSet {}", stack_name(&r, *producer)),
            );
            assert!(
                c < p,
                "{consumer} stops importing before {producer} drops its exports: {calls:#?}"
            );
        }
    }
    for s in &r.stacks {
        let live = fake
            .describe_stack(&s.stack_name)
            .await
            .expect("describe")
            .expect("exists");
        assert!(!live.has_exports(), "{} still exports", s.stack_name);
        assert_eq!(live.status.as_str(), "UPDATE_COMPLETE");
    }
    let again = plan::plan(&fake, &r, &plan_opts())
        .await
        .expect("plan again");
    plan::discard(&fake, &again).await;
    assert_eq!(
        Outcome::from(&again).code(),
        0,
        "{}",
        plan::render_text(&again)
    );
}

#[tokio::test(start_paused = true)]
async fn destroy_refuses_a_producer_while_its_consumers_reference_it() {
    let tmp = TempDir::new("refs-destroy");
    let r = dev_with_azs(&tmp, 2);
    let fake = FakeCloudFormation::new();
    apply_yes(&fake, &r).await;
    let (progress, _out) = plain();
    let (_tx, rx) = watch::channel(0);
    let prompter = ScriptedPrompter::new(false, &[]);
    let err = destroy::destroy(
        &fake,
        &r,
        &DestroyOptions {
            only: Some(StackId::Network),
            yes: true,
            confirm_env: None,
            disable_termination_protection: false,
            concurrency: 4,
            backoff: Backoff::default(),
        },
        &progress,
        &prompter,
        rx,
    )
    .await
    .expect_err("refused");
    assert!(matches!(err, DeployError::Refused { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("network is referenced by memory, cache, search, service"),
        "{err}"
    );
    assert!(
        !fake.calls().iter().any(|c| c.starts_with("DeleteStack")),
        "{:?}",
        fake.calls()
    );
}

#[tokio::test(start_paused = true)]
async fn the_tokyo_example_puts_the_edge_in_us_east_1_and_crosses_regions_by_parameter() {
    let r = crate::deploy_fake::rendered("tokyo");
    let tokyo = std::sync::Arc::new(FakeCloudFormation::in_region("ap-northeast-1"));
    let virginia = std::sync::Arc::new(FakeCloudFormation::in_region("us-east-1"));
    let regions: BTreeMap<String, String> = r
        .manifest
        .stacks
        .values()
        .map(|m| (m.stack_name.clone(), m.region.clone()))
        .collect();
    let cfn = mangactl::aws::regional::RegionalCloudFormation::new(
        BTreeMap::from([
            (
                "ap-northeast-1".to_owned(),
                tokyo.clone() as std::sync::Arc<dyn CloudFormation>,
            ),
            (
                "us-east-1".to_owned(),
                virginia.clone() as std::sync::Arc<dyn CloudFormation>,
            ),
        ]),
        regions,
        "ap-northeast-1",
    );
    let report = apply_yes(&cfn, &r).await;
    assert_eq!(report.status, ApplyStatus::Applied, "{:?}", report.results);
    let edge = stack_name(&r, StackId::Edge);
    assert!(
        virginia
            .calls()
            .iter()
            .all(|c| c.ends_with(&edge) || c.contains(&format!("{edge} "))),
        "{:?}",
        virginia.calls()
    );
    assert!(
        virginia
            .calls()
            .iter()
            .any(|c| c == &format!("ExecuteChangeSet {edge}")),
        "{:?}",
        virginia.calls()
    );
    assert!(
        !tokyo.calls().iter().any(|c| c.contains(&edge)),
        "{:?}",
        tokyo.calls()
    );
    let alb = tokyo
        .output(&stack_name(&r, StackId::Service), "AlbDnsName")
        .expect("service output");
    let deployed = virginia
        .describe_stack(&edge)
        .await
        .expect("describe")
        .expect("edge exists");
    assert_eq!(deployed.parameters.get("ServiceAlbDnsName"), Some(&alb));
}
