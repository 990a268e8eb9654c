//! The deploy logic (`src/deploy/`) in-process against the scripted fake
//! (`src/fakes/cloudformation/`), for what moto cannot show: per-resource events of
//! operations in progress, a failed resource with its rollback and reason,
//! replacements in a change set, ROLLBACK_COMPLETE and
//! UPDATE_ROLLBACK_FAILED recovery, a stack busy with someone else's
//! update, Ctrl-C, termination protection and retained data on destroy.
//!
//! Time is paused (`start_paused`): polling sleeps advance virtual time, so
//! the tests are fast and assert no timings. Plain progress is compared
//! line by line with the leading timestamp removed.

use std::io::Write;
use std::sync::{Arc, Mutex};

use mangactl::aws::cloudformation::{Action, ChangeDetail, Replacement, ResourceChange};
use mangactl::deploy::apply::{self, ApplyOptions, ApplyStatus, StackResult};
use mangactl::deploy::confirm::ScriptedPrompter;
use mangactl::deploy::destroy::{self, DeleteResult, DestroyOptions, DestroyStatus};
use mangactl::deploy::plan::{self, PlanAction, PlanOptions};
use mangactl::deploy::progress::Progress;
use mangactl::deploy::{Backoff, DeployError};
use mangactl::fakes::cloudformation::{
    Behavior, FakeCloudFormation, ScriptedChangeSet, Seed, SeedEvent,
};
use mangactl::outcome::Outcome;
use stacks::render::Rendered;
use stacks::stacks::StackId;
use tokio::sync::watch;

use crate::support::repo;

const STACK: &str = "AWS::CloudFormation::Stack";

#[derive(Clone, Default)]
pub(crate) struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buf").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buf {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("buf")).into_owned()
    }
}

pub(crate) fn plain() -> (Progress, Buf) {
    let buf = Buf::default();
    (Progress::plain(Box::new(buf.clone())), buf)
}

pub(crate) fn rendered(env: &str) -> Rendered {
    mangactl::cli::plan::rendered_for_deploy(&repo().join("environments"), env).expect("render")
}

pub(crate) fn name(r: &Rendered, id: StackId) -> String {
    r.stacks
        .iter()
        .find(|s| s.id == id)
        .expect("stack")
        .stack_name
        .clone()
}

fn body(r: &Rendered, id: StackId) -> String {
    r.stacks
        .iter()
        .find(|s| s.id == id)
        .expect("stack")
        .body
        .clone()
}

fn has_resource(r: &Rendered, id: StackId, logical: &str) -> bool {
    r.stacks
        .iter()
        .find(|s| s.id == id)
        .expect("stack")
        .template
        .to_value()["Resources"]
        .get(logical)
        .is_some()
}

pub(crate) fn opts(only: Option<StackId>) -> ApplyOptions {
    ApplyOptions {
        only,
        yes: true,
        confirm_env: None,
        concurrency: 4,
        backoff: Backoff::default(),
        // The OpenSearch capacity limits have their own tests (deploy_capacity.rs).
        search_capacity: None,
        capacity: None,
        holds: vec![],
        revert_drift: false,
    }
}

/// `apply --yes` of `r` with no terminal and no Ctrl-C; its progress is
/// discarded. For tests that only need a deployment or its report.
pub(crate) async fn apply_yes(
    cfn: &dyn mangactl::aws::CloudFormation,
    r: &Rendered,
) -> apply::ApplyReport {
    let (progress, _out) = plain();
    let (_tx, rx) = watch::channel(0);
    apply::apply(
        cfn,
        r,
        &opts(None),
        &progress,
        &ScriptedPrompter::new(false, &[]),
        rx,
    )
    .await
    .expect("apply")
}

/// Every stack deployed with its current template.
/// Stacks are seeded in deploy order, each with its references' values read
/// from the producers seeded before it, as `apply` would have passed them.
pub(crate) fn seed_all(fake: &FakeCloudFormation, r: &Rendered, protection: bool) {
    for s in &r.stacks {
        let mut parameters: std::collections::BTreeMap<String, String> = r.manifest.stacks[&s.id]
            .references
            .iter()
            .filter_map(|(param, reference)| {
                let producer = &r.manifest.stacks[&reference.stack].stack_name;
                Some((param.clone(), fake.output(producer, &reference.output)?))
            })
            .collect();
        parameters.extend(r.lookups.get(&s.id).cloned().unwrap_or_default());
        fake.seed_stack(Seed {
            name: s.stack_name.clone(),
            status: "CREATE_COMPLETE".into(),
            status_reason: None,
            template: Some(s.body.clone()),
            parameters,
            termination_protection: protection,
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

/// Plain progress lines of one stack, without their timestamps.
pub(crate) fn stack_lines(text: &str, stack: StackId) -> Vec<String> {
    let prefix = format!("{:<13} ", stack.name());
    text.lines()
        .filter_map(|l| l.split_once(' ').map(|(_, rest)| rest))
        .filter(|rest| rest.starts_with(&prefix))
        .map(|rest| rest.trim_end().to_owned())
        .collect()
}

fn calls_index(calls: &[String], call: &str) -> usize {
    calls
        .iter()
        .position(|c| c == call)
        .unwrap_or_else(|| panic!("no `{call}` in {calls:#?}"))
}

#[tokio::test(start_paused = true)]
async fn apply_from_nothing_follows_the_graph_and_prints_each_resource_event() {
    let r = rendered("dev");
    let fake = FakeCloudFormation::new();
    let (progress, out) = plain();
    let prompter = ScriptedPrompter::new(false, &[]);
    let (_tx, rx) = watch::channel(0);
    let report = apply::apply(&fake, &r, &opts(None), &progress, &prompter, rx)
        .await
        .expect("apply");
    let text = out.text();
    assert_eq!(report.status, ApplyStatus::Applied, "{text}");
    assert_eq!(Outcome::from(report.status).code(), 0);
    assert!(prompter.asked().is_empty(), "--yes asks nothing");
    for s in &r.stacks {
        assert_eq!(
            fake.status(&s.stack_name).as_deref(),
            Some("CREATE_COMPLETE"),
            "{}",
            s.id
        );
        let tags = fake.tags(&s.stack_name);
        assert_eq!(tags.get("ManagedBy").map(String::as_str), Some("mangactl"));
        assert_eq!(tags.get("Environment").map(String::as_str), Some("dev"));
        assert_eq!(tags.get("Stack").map(String::as_str), Some(s.id.name()));
    }
    assert!(
        text.contains("Apply complete: 8 stacks deployed, 0 unchanged, 0 not deployed"),
        "{text}"
    );

    // A stack starts only after every stack it imports from has completed.
    let calls = fake.calls();
    for (id, deps) in &r.graph.depends_on {
        for d in deps {
            assert!(
                calls_index(&calls, &format!("CreateChangeSet {} CREATE", name(&r, *id)))
                    > calls_index(&calls, &format!("ExecuteChangeSet {}", name(&r, *d))),
                "{id} planned before {d} ran"
            );
        }
    }
    // Dev asks for no termination protection.
    assert!(!calls
        .iter()
        .any(|c| c.starts_with("UpdateTerminationProtection")));
    // This run's change sets were all executed (none left behind).
    assert_eq!(fake.change_set_count(), 0);

    // Plain progress: one line per stack event, in order, never redrawn.
    let edge = r
        .stacks
        .iter()
        .find(|s| s.id == StackId::Edge)
        .expect("edge");
    let resources: Vec<(String, String)> = edge.template.to_value()["Resources"]
        .as_object()
        .expect("resources")
        .iter()
        .map(|(k, v)| (k.clone(), v["Type"].as_str().expect("type").to_owned()))
        .collect();
    assert!(
        resources.len() >= 3,
        "edge has at least three resources: {resources:?}"
    );
    let lines = stack_lines(&text, StackId::Edge);
    let cs = &report.plan.change_set_name;
    let mut expected = vec![
        format!(
            "edge          change set ready: {} changes",
            resources.len()
        ),
        format!("edge          creating (change set {cs})"),
        "edge          CREATE_IN_PROGRESS         stack: User Initiated".to_owned(),
    ];
    // Two resources in progress at a time: each start after the first
    // completes the one before it (the fake's pacing).
    for (n, (id, ty)) in resources.iter().enumerate() {
        expected.push(format!(
            "edge          CREATE_IN_PROGRESS         {id} {ty}"
        ));
        if n >= 1 {
            let (done, done_ty) = &resources[n - 1];
            expected.push(format!(
                "edge          CREATE_COMPLETE            {done} {done_ty}"
            ));
        }
    }
    if let Some((last, last_ty)) = resources.last() {
        expected.push(format!(
            "edge          CREATE_COMPLETE            {last} {last_ty}"
        ));
    }
    expected.push("edge          CREATE_COMPLETE            stack".to_owned());
    expected.push("edge          CREATE_COMPLETE".to_owned());
    assert_eq!(lines, expected, "{text}");
    // Event lines carry the event's own time.
    assert!(
        text.lines()
            .any(|l| l.starts_with("2024-05-01T12:") && l.contains(" edge ")),
        "{text}"
    );
    // The outputs of every stack are collected.
    assert!(report.outputs[&StackId::Service].contains_key("AlbDnsName"));
}

#[tokio::test(start_paused = true)]
async fn a_failed_resource_is_reported_with_its_reason_and_its_dependents_are_skipped() {
    let r = rendered("dev");
    assert!(
        has_resource(&r, StackId::Memory, "ConversationTable")
            && has_resource(&r, StackId::Memory, "DaxCluster")
    );
    let fake = FakeCloudFormation::new();
    let reason = "Resource handler returned message: \"Subnet group mangaassist-dev-dax is in an invalid state (Service: Dax, Status Code: 400, Request ID: 6a1ef7c2)\" (HandlerErrorCode: InvalidRequest)";
    fake.script(
        &name(&r, StackId::Memory),
        Behavior::FailResource {
            logical_id: "DaxCluster".into(),
            reason: reason.into(),
        },
    );
    let (progress, out) = plain();
    let (_tx, rx) = watch::channel(0);
    let report = apply::apply(
        &fake,
        &r,
        &opts(None),
        &progress,
        &ScriptedPrompter::new(false, &[]),
        rx,
    )
    .await
    .expect("apply");
    let text = out.text();
    assert_eq!(report.status, ApplyStatus::Failed, "{text}");
    assert_eq!(Outcome::from(report.status).code(), 1);

    match &report.results[&StackId::Memory] {
        StackResult::Failed { status, failures } => {
            assert_eq!(status, "ROLLBACK_COMPLETE");
            assert_eq!(
                failures.len(),
                1,
                "the cancellation echo is not a failure: {failures:?}"
            );
            assert_eq!(failures[0].logical_id, "DaxCluster");
            assert_eq!(failures[0].status, "CREATE_FAILED");
            assert_eq!(failures[0].reason, reason);
        }
        other => panic!("memory: {other:?}"),
    }
    assert_eq!(
        report.results[&StackId::Service],
        StackResult::Skipped {
            because: StackId::Memory
        }
    );
    assert!(matches!(
        report.results[&StackId::Edge],
        StackResult::Skipped { .. }
    ));
    assert!(matches!(
        report.results[&StackId::Observability],
        StackResult::Skipped { .. }
    ));
    for ok in [
        StackId::Network,
        StackId::Intent,
        StackId::Cache,
        StackId::Search,
    ] {
        assert!(
            matches!(report.results[&ok], StackResult::Done { .. }),
            "{ok}: {:?}",
            report.results[&ok]
        );
    }
    assert_eq!(
        fake.status(&name(&r, StackId::Service)),
        None,
        "service never started"
    );

    // The summary names the root cause once, not the echo.
    let summary = text.split("\nFailed:\n").nth(1).expect("a failure summary");
    assert!(summary.starts_with(&format!("  memory (ROLLBACK_COMPLETE):\n    DaxCluster AWS::DAX::Cluster CREATE_FAILED: {reason}\n")), "{summary}");
    assert!(!summary.contains("cancelled"), "{summary}");
    assert!(
        summary.contains("Skipped service: it depends on memory, which did not deploy."),
        "{summary}"
    );
    assert!(
        summary.contains("Apply FAILED: 4 stacks deployed, 0 unchanged, 4 not deployed"),
        "{summary}"
    );

    // The stack's own lines, in order: the failure, the echo, the rollback.
    let lines = stack_lines(&text, StackId::Memory);
    let tail: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .skip_while(|l| !l.contains("CREATE_FAILED"))
        .collect();
    assert_eq!(
        tail,
        vec![
            format!("memory        CREATE_FAILED              DaxCluster AWS::DAX::Cluster: {reason}").as_str(),
            "memory        CREATE_FAILED              ConversationTable AWS::DynamoDB::Table: Resource creation cancelled",
            "memory        ROLLBACK_IN_PROGRESS       stack: The following resource(s) failed to create: [DaxCluster]. Rollback requested by user.",
            "memory        DELETE_COMPLETE            ConversationTable AWS::DynamoDB::Table",
            "memory        DELETE_COMPLETE            DaxCluster AWS::DAX::Cluster",
            "memory        ROLLBACK_COMPLETE          stack",
            format!("memory        ROLLBACK_COMPLETE: DaxCluster {reason}").as_str(),
        ],
        "{text}"
    );
}

fn replacement_change_set() -> ScriptedChangeSet {
    // Shaped like the DescribeChangeSet examples of the CloudFormation API
    // reference: a static Always recreation (Replacement True), a dynamic
    // parameter-driven one (Conditional, with CausingEntity), and a tag
    // change that never recreates.
    let detail = |attribute: &str,
                  name: Option<&str>,
                  rec: &str,
                  eval: &str,
                  source: &str,
                  cause: Option<&str>| ChangeDetail {
        attribute: Some(attribute.into()),
        name: name.map(Into::into),
        requires_recreation: Some(rec.into()),
        evaluation: Some(eval.into()),
        change_source: Some(source.into()),
        causing_entity: cause.map(Into::into),
        ..ChangeDetail::default()
    };
    ScriptedChangeSet {
        status: "CREATE_COMPLETE".into(),
        status_reason: None,
        changes: vec![
            ResourceChange {
                action: Action::Modify,
                logical_id: "ConversationTable".into(),
                physical_id: Some("mangaassist-dev-conversations".into()),
                resource_type: "AWS::DynamoDB::Table".into(),
                replacement: Some(Replacement::True),
                scope: vec!["Properties".into()],
                details: vec![detail(
                    "Properties",
                    Some("KeySchema"),
                    "Always",
                    "Static",
                    "DirectModification",
                    None,
                )],
            },
            ResourceChange {
                action: Action::Modify,
                logical_id: "DaxCluster".into(),
                physical_id: Some("mangaassist-dev-dax".into()),
                resource_type: "AWS::DAX::Cluster".into(),
                replacement: Some(Replacement::Conditional),
                scope: vec!["Properties".into()],
                details: vec![
                    detail(
                        "Properties",
                        Some("NodeType"),
                        "Conditionally",
                        "Dynamic",
                        "ParameterReference",
                        Some("DaxNodeType"),
                    ),
                    detail(
                        "Properties",
                        Some("Description"),
                        "Never",
                        "Static",
                        "DirectModification",
                        None,
                    ),
                ],
            },
            ResourceChange {
                action: Action::Modify,
                logical_id: "DaxRole".into(),
                physical_id: Some("mangaassist-dev-DaxRole-1ABCDEF".into()),
                resource_type: "AWS::IAM::Role".into(),
                replacement: Some(Replacement::False),
                scope: vec!["Tags".into()],
                details: vec![detail(
                    "Tags",
                    None,
                    "Never",
                    "Static",
                    "DirectModification",
                    None,
                )],
            },
        ],
    }
}

#[tokio::test(start_paused = true)]
async fn plan_flags_replacements_with_their_causes_and_data_loss_and_cleans_up() {
    let r = rendered("dev");
    let fake = FakeCloudFormation::new();
    seed_all(&fake, &r, false);
    fake.script_change_set(&name(&r, StackId::Memory), replacement_change_set());
    // CloudFormation's other wording of an empty change set.
    fake.script_change_set(
        &name(&r, StackId::Cache),
        ScriptedChangeSet {
            status: "FAILED".into(),
            status_reason: Some("No updates are to be performed.".into()),
            changes: vec![],
        },
    );
    let popts = PlanOptions {
        only: None,
        change_set_name: "mangactl-plan-test".into(),
        concurrency: 4,
        backoff: Backoff::default(),
        revert_drift: false,
    };
    let p = plan::plan(&fake, &r, &popts).await.expect("plan");
    plan::discard(&fake, &p).await;
    assert_eq!(
        fake.change_set_count(),
        0,
        "plan deletes the change sets it made"
    );
    assert_eq!(Outcome::from(&p).code(), 2);
    // memory replaces its table and DAX cluster, so the outputs that read
    // them may change, and the stacks consuming those outputs follow.
    assert_eq!(p.summary.stacks_changed, 3);
    assert_eq!(p.summary.stacks_unchanged, 5);
    for consumer in [StackId::Service, StackId::Observability] {
        let follows = &p.stack(consumer).expect("consumer").follows;
        assert!(
            follows.iter().any(|f| f.stack == StackId::Memory
                && f.output == "TableName"
                && f.how == "may change"),
            "{consumer}: {follows:?}"
        );
    }
    assert_eq!(p.summary.replace, 2);
    assert_eq!(
        p.summary.data_loss,
        vec!["memory/ConversationTable".to_owned()]
    );
    assert_eq!(
        p.stack(StackId::Cache).map(|s| &s.action),
        Some(&PlanAction::Unchanged)
    );

    let text = plan::render_text(&p);
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let has = |l: &str| lines.iter().any(|x| x == l);
    assert!(
        has("memory mangaassist-dev-memory update (3 changes)"),
        "{text}"
    );
    assert!(
        has("~ ConversationTable AWS::DynamoDB::Table REPLACE (KeySchema) !! DATA LOSS"),
        "{text}"
    );
    assert!(
        has("~ DaxCluster AWS::DAX::Cluster MAY REPLACE (NodeType (from DaxNodeType))"),
        "{text}"
    );
    assert!(has("~ DaxRole AWS::IAM::Role (Tags)"), "{text}");
    assert!(has("cache mangaassist-dev-cache no changes"), "{text}");
    assert!(
        has("!! DATA LOSS: memory/ConversationTable (AWS::DynamoDB::Table) will be REPLACED (caused by KeySchema); the data it holds does not carry over."),
        "{text}"
    );
    assert!(has("Plan: 0 to add, 3 to change (2 replacements), 0 to remove; 3 stacks to change, 5 unchanged."), "{text}");
    assert!(
        has("~ parameter MemoryTableName follows memory.TableName (may change by this apply); used by Dashboard, MemoryReadBudgetAlarm"),
        "{text}"
    );

    let json = serde_json::to_value(&p).expect("json");
    let memory = json["stacks"]
        .as_array()
        .expect("stacks")
        .iter()
        .find(|s| s["stack"] == "memory")
        .expect("memory");
    assert_eq!(memory["action"]["kind"], "update");
    assert_eq!(memory["changes"][0]["replacement"], "True");
    assert_eq!(memory["changes"][0]["data_loss"], true);
}

#[tokio::test(start_paused = true)]
async fn prod_data_loss_needs_the_typed_name_even_with_yes() {
    let r = rendered("prod");
    let fake = FakeCloudFormation::new();
    seed_all(&fake, &r, true);
    let memory = name(&r, StackId::Memory);
    fake.script_change_set(&memory, replacement_change_set());
    let (progress, _out) = plain();
    let (_tx, rx) = watch::channel(0);
    let err = apply::apply(
        &fake,
        &r,
        &opts(None),
        &progress,
        &ScriptedPrompter::new(false, &[]),
        rx.clone(),
    )
    .await
    .expect_err("refused");
    assert!(matches!(err, DeployError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("--confirm-env prod"), "{err}");
    assert_eq!(
        fake.change_set_count(),
        0,
        "the refused run leaves no change sets"
    );
    assert!(!fake
        .calls()
        .iter()
        .any(|c| c.starts_with("ExecuteChangeSet")));

    // On a terminal the name is asked for; the wrong name changes nothing.
    fake.script_change_set(&memory, replacement_change_set());
    let prompter = ScriptedPrompter::new(true, &["staging"]);
    let report = apply::apply(&fake, &r, &opts(None), &progress, &prompter, rx.clone())
        .await
        .expect("apply");
    assert_eq!(report.status, ApplyStatus::Declined);
    assert_eq!(Outcome::from(report.status).code(), 1);
    assert_eq!(prompter.asked().len(), 1, "--yes skips the y/N question");
    assert!(
        prompter.asked()[0].contains("Type `prod`"),
        "{:?}",
        prompter.asked()
    );

    fake.script_change_set(&memory, replacement_change_set());
    let prompter = ScriptedPrompter::new(true, &["prod"]);
    let report = apply::apply(&fake, &r, &opts(None), &progress, &prompter, rx)
        .await
        .expect("apply");
    assert_eq!(report.status, ApplyStatus::Applied);
    assert_eq!(fake.status(&memory).as_deref(), Some("UPDATE_COMPLETE"));
}

#[tokio::test(start_paused = true)]
async fn rollback_complete_is_deleted_and_recreated_only_after_confirmation() {
    let r = rendered("dev");
    let intent = name(&r, StackId::Intent);
    let seed = || Seed {
        name: intent.clone(),
        status: "ROLLBACK_COMPLETE".into(),
        status_reason: None,
        template: None,
        parameters: Default::default(),
        termination_protection: false,
        events: vec![
            SeedEvent::new(
                &intent,
                STACK,
                "CREATE_IN_PROGRESS",
                Some("User Initiated"),
                None,
            ),
            SeedEvent::new(
                "Endpoint",
                "AWS::SageMaker::Endpoint",
                "CREATE_FAILED",
                Some("Quota exceeded"),
                None,
            ),
            SeedEvent::new(&intent, STACK, "ROLLBACK_COMPLETE", None, None),
        ],
    };
    let only = opts(Some(StackId::Intent));
    let interactive = ApplyOptions {
        yes: false,
        ..only.clone()
    };

    // Declined: nothing is deleted.
    let fake = FakeCloudFormation::new();
    fake.seed_stack(seed());
    let (progress, out) = plain();
    let (_tx, rx) = watch::channel(0);
    let prompter = ScriptedPrompter::new(true, &["n"]);
    let report = apply::apply(&fake, &r, &interactive, &progress, &prompter, rx.clone())
        .await
        .expect("apply");
    assert_eq!(report.status, ApplyStatus::Declined);
    assert!(
        out.text()
            .contains("ROLLBACK_COMPLETE after a failed first create: DELETE and create again"),
        "{}",
        out.text()
    );
    assert_eq!(fake.status(&intent).as_deref(), Some("ROLLBACK_COMPLETE"));
    assert!(!fake.calls().iter().any(|c| c.starts_with("DeleteStack")));

    // Confirmed: deleted, then created from a fresh change set.
    let fake = FakeCloudFormation::new();
    fake.seed_stack(seed());
    let (progress, out) = plain();
    let prompter = ScriptedPrompter::new(true, &["y"]);
    let report = apply::apply(&fake, &r, &interactive, &progress, &prompter, rx)
        .await
        .expect("apply");
    assert_eq!(report.status, ApplyStatus::Applied, "{}", out.text());
    assert_eq!(prompter.asked().len(), 1);
    assert_eq!(
        fake.calls(),
        vec![
            format!("DeleteStack {intent}"),
            format!("CreateChangeSet {intent} CREATE"),
            format!("ExecuteChangeSet {intent}")
        ]
    );
    assert_eq!(fake.status(&intent).as_deref(), Some("CREATE_COMPLETE"));
    let lines = stack_lines(&out.text(), StackId::Intent);
    assert_eq!(
        lines[0],
        "intent        deleting the ROLLBACK_COMPLETE stack before creating it again"
    );
    assert_eq!(
        lines[1],
        "intent        DELETE_IN_PROGRESS         stack: User Initiated"
    );
    assert_eq!(lines[2], "intent        DELETE_COMPLETE            stack");
    assert_eq!(
        lines[3],
        "intent        change set ready: 6 changes".replace(
            '6',
            &r.manifest.stacks[&StackId::Intent]
                .resource_count
                .to_string()
        )
    );
}

#[tokio::test(start_paused = true)]
async fn update_rollback_failed_is_continued_then_updated() {
    let r = rendered("dev");
    let intent = name(&r, StackId::Intent);
    // Deployed earlier without one of today's resources, then stuck.
    let mut old: serde_json::Value =
        serde_json::from_str(&body(&r, StackId::Intent)).expect("json");
    let resources = old["Resources"].as_object_mut().expect("resources");
    let dropped = resources.keys().next_back().expect("a resource").clone();
    resources.remove(&dropped);
    let fake = FakeCloudFormation::new();
    fake.seed_stack(Seed {
        name: intent.clone(),
        status: "UPDATE_ROLLBACK_FAILED".into(),
        status_reason: Some("The following resource(s) failed to update: [Endpoint].".into()),
        template: Some(old.to_string()),
        parameters: Default::default(),
        termination_protection: false,
        events: vec![
            SeedEvent::new(
                "Endpoint",
                "AWS::SageMaker::Endpoint",
                "UPDATE_FAILED",
                Some("Endpoint is being modified"),
                None,
            ),
            SeedEvent::new(&intent, STACK, "UPDATE_ROLLBACK_FAILED", None, None),
        ],
    });
    let (progress, out) = plain();
    let (_tx, rx) = watch::channel(0);
    let report = apply::apply(
        &fake,
        &r,
        &opts(Some(StackId::Intent)),
        &progress,
        &ScriptedPrompter::new(false, &[]),
        rx,
    )
    .await
    .expect("apply");
    let text = out.text();
    assert_eq!(report.status, ApplyStatus::Applied, "{text}");
    assert!(
        text.contains("UPDATE_ROLLBACK_FAILED: continue-update-rollback first, then update"),
        "{text}"
    );
    assert_eq!(
        fake.calls(),
        vec![
            format!("ContinueUpdateRollback {intent}"),
            format!("CreateChangeSet {intent} UPDATE"),
            format!("ExecuteChangeSet {intent}")
        ]
    );
    assert_eq!(fake.status(&intent).as_deref(), Some("UPDATE_COMPLETE"));
    let lines = stack_lines(&text, StackId::Intent);
    assert!(
        lines.contains(&"intent        UPDATE_ROLLBACK_COMPLETE   stack".to_owned()),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"intent        change set ready: 1 change".to_owned()),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("CREATE_COMPLETE") && l.contains(&dropped)),
        "{lines:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stack_in_progress_is_refused_with_who_and_since_when() {
    let r = rendered("dev");
    let fake = FakeCloudFormation::new();
    seed_all(&fake, &r, false);
    let service = name(&r, StackId::Service);
    let token = "Console-UpdateStack-7f59c3cf-00d2-40c7-b2ff-e75db0987002";
    fake.seed_stack(Seed {
        name: service.clone(),
        status: "UPDATE_IN_PROGRESS".into(),
        status_reason: None,
        template: Some(body(&r, StackId::Service)),
        parameters: Default::default(),
        termination_protection: false,
        events: vec![
            SeedEvent::new(
                &service,
                STACK,
                "UPDATE_IN_PROGRESS",
                Some("User Initiated"),
                Some(token),
            ),
            SeedEvent::new(
                "TaskDefinition",
                "AWS::ECS::TaskDefinition",
                "UPDATE_IN_PROGRESS",
                None,
                Some(token),
            ),
        ],
    });
    let (progress, out) = plain();
    let (_tx, rx) = watch::channel(0);
    let report = apply::apply(
        &fake,
        &r,
        &opts(None),
        &progress,
        &ScriptedPrompter::new(false, &[]),
        rx,
    )
    .await
    .expect("apply");
    let text = out.text();
    assert_eq!(report.status, ApplyStatus::Blocked, "{text}");
    assert_eq!(Outcome::from(report.status).code(), 1);
    let line = text
        .lines()
        .find(|l| l.starts_with("service "))
        .expect("service line");
    assert!(
        line.contains("BUSY: UPDATE_IN_PROGRESS since 2024-05-01T12:00:"),
        "{line}"
    );
    assert!(
        line.contains(&format!(
            "by {token}, User Initiated; wait for it to finish"
        )),
        "{line}"
    );
    assert!(
        !fake
            .calls()
            .iter()
            .any(|c| c.starts_with("ExecuteChangeSet")),
        "nothing runs"
    );
    assert_eq!(fake.change_set_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn ctrl_c_cancels_an_update_in_progress_and_starts_nothing_else() {
    let r = rendered("dev");
    let fake = Arc::new(FakeCloudFormation::new());
    seed_all(&fake, &r, false);
    let intent = name(&r, StackId::Intent);
    let mut old: serde_json::Value =
        serde_json::from_str(&body(&r, StackId::Intent)).expect("json");
    let resources = old["Resources"].as_object_mut().expect("resources");
    let first = resources.keys().next().expect("a resource").clone();
    resources[&first]["Metadata"] = serde_json::json!({"Old": true});
    fake.seed_stack(Seed {
        name: intent.clone(),
        status: "UPDATE_COMPLETE".into(),
        status_reason: None,
        template: Some(old.to_string()),
        parameters: Default::default(),
        termination_protection: false,
        events: vec![],
    });
    fake.script(&intent, Behavior::Hang);
    let (progress, out) = plain();
    let (tx, rx) = watch::channel(0);
    let watcher = {
        let fake = Arc::clone(&fake);
        let intent = intent.clone();
        tokio::spawn(async move {
            while fake.status(&intent).as_deref() != Some("UPDATE_IN_PROGRESS") {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            let _ = tx.send(1);
            tx
        })
    };
    let report = apply::apply(
        fake.as_ref(),
        &r,
        &opts(None),
        &progress,
        &ScriptedPrompter::new(false, &[]),
        rx,
    )
    .await
    .expect("apply");
    let _tx = watcher.await.expect("watcher");
    let text = out.text();
    assert_eq!(report.status, ApplyStatus::Interrupted, "{text}");
    assert_eq!(Outcome::from(report.status).code(), 3);
    assert!(
        fake.calls()
            .contains(&format!("CancelUpdateStack {intent}")),
        "{:?}",
        fake.calls()
    );
    assert_eq!(
        fake.status(&intent).as_deref(),
        Some("UPDATE_ROLLBACK_COMPLETE")
    );
    assert!(
        matches!(&report.results[&StackId::Intent], StackResult::Interrupted { detail } if detail.contains("UPDATE_ROLLBACK_COMPLETE"))
    );
    assert!(text.contains("Ctrl-C: no further stacks start"), "{text}");
    let lines = stack_lines(&text, StackId::Intent);
    assert!(
        lines.contains(
            &"intent        Ctrl-C: cancelling the update (CloudFormation rolls it back)"
                .to_owned()
        ),
        "{lines:#?}"
    );
    assert!(
        lines.contains(
            &"intent        UPDATE_ROLLBACK_IN_PROGRESS stack: Stack update cancelled".to_owned()
        ),
        "{lines:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn destroy_refuses_protected_stacks_then_deletes_in_reverse_order_keeping_retained_data() {
    let r = rendered("prod");
    let fake = FakeCloudFormation::new();
    seed_all(&fake, &r, true);
    let (progress, out) = plain();
    let (_tx, rx) = watch::channel(0);
    let base = DestroyOptions {
        only: None,
        yes: true,
        confirm_env: Some("prod".into()),
        disable_termination_protection: false,
        concurrency: 4,
        backoff: Backoff::default(),
    };
    let err = destroy::destroy(
        &fake,
        &r,
        &base,
        &progress,
        &ScriptedPrompter::new(false, &[]),
        rx.clone(),
    )
    .await
    .expect_err("refused");
    assert!(
        err.to_string()
            .contains("termination protection is on for network, intent"),
        "{err}"
    );
    assert!(
        err.to_string().contains("--disable-termination-protection"),
        "{err}"
    );
    assert!(
        fake.calls().is_empty(),
        "nothing touched: {:?}",
        fake.calls()
    );

    // Prod without the typed name is refused even with --yes.
    let no_name = DestroyOptions {
        confirm_env: None,
        disable_termination_protection: true,
        ..base.clone()
    };
    let err = destroy::destroy(
        &fake,
        &r,
        &no_name,
        &progress,
        &ScriptedPrompter::new(false, &[]),
        rx.clone(),
    )
    .await
    .expect_err("refused");
    assert!(err.to_string().contains("--confirm-env prod"), "{err}");

    // --stack memory while service still references it.
    let one = DestroyOptions {
        only: Some(StackId::Memory),
        disable_termination_protection: true,
        ..base.clone()
    };
    let err = destroy::destroy(
        &fake,
        &r,
        &one,
        &progress,
        &ScriptedPrompter::new(false, &[]),
        rx.clone(),
    )
    .await
    .expect_err("refused");
    assert!(
        err.to_string()
            .contains("memory is referenced by service, edge, observability, which still exist"),
        "{err}"
    );

    let all = DestroyOptions {
        disable_termination_protection: true,
        ..base
    };
    let report = destroy::destroy(
        &fake,
        &r,
        &all,
        &progress,
        &ScriptedPrompter::new(false, &[]),
        rx,
    )
    .await
    .expect("destroy");
    let text = out.text();
    assert_eq!(report.status, DestroyStatus::Destroyed, "{text}");
    assert_eq!(Outcome::from(report.status).code(), 0);
    assert!(report.results.values().all(|x| *x == DeleteResult::Deleted));
    for s in &r.stacks {
        assert_eq!(fake.status(&s.stack_name), None, "{} deleted", s.id);
    }
    // Every stack goes after all stacks importing from it.
    let calls = fake.calls();
    for (id, deps) in &r.graph.depends_on {
        for d in deps {
            assert!(
                calls_index(&calls, &format!("DeleteStack {}", name(&r, *d)))
                    > calls_index(&calls, &format!("DeleteStack {}", name(&r, *id))),
                "{d} deleted before {id}"
            );
        }
    }
    assert!(
        text.contains("kept: memory/ConversationTable (AWS::DynamoDB::Table, kept in the account)"),
        "{text}"
    );
    assert!(
        text.contains(
            "kept: cache/Redis (AWS::ElastiCache::ReplicationGroup, a final snapshot is kept)"
        ),
        "{text}"
    );
    assert!(
        text.contains("termination protection turned off first: network"),
        "{text}"
    );
    assert!(
        text.contains("Destroy complete: 8 stacks deleted"),
        "{text}"
    );
    assert!(
        text.contains("kept: service/AccessLogBucket (AWS::S3::Bucket, kept in the account)"),
        "{text}"
    );
    // The table, the Redis snapshot and the two log buckets (ALB, CloudFront).
    assert_eq!(report.kept.len(), 4, "{:?}", report.kept);
}
