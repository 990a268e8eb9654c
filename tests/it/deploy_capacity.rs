//! `apply` and the OpenSearch Serverless capacity limits (account settings,
//! not template resources), in-process against the CloudFormation fake and
//! the OpenSearch Serverless fake (`src/fakes/opensearch.rs`, fed with
//! the GetAccountSettings / UpdateAccountSettings shapes of the API
//! reference): set after the search stack, only when they differ, with
//! the plan's maxima (the API has no minimum), and errors naming the
//! operation.

use std::sync::Arc;

use mangactl::aws::opensearch::CapacityLimits;
use mangactl::deploy::apply::{self, ApplyOptions, ApplyReport, ApplyStatus};
use mangactl::deploy::capacity::CapacityOutcome;
use mangactl::deploy::confirm::ScriptedPrompter;
use mangactl::deploy::DeployError;
use mangactl::fakes::cloudformation::{Behavior, FakeCloudFormation};
use mangactl::fakes::opensearch::FakeSearchCapacity;
use mangactl::outcome::Outcome;
use serde_json::json;
use stacks::render::Rendered;
use stacks::stacks::StackId;
use tokio::sync::watch;

use crate::deploy_fake::{name, opts, plain, rendered, seed_all, stack_lines};

fn with_capacity(aoss: &Arc<FakeSearchCapacity>) -> ApplyOptions {
    ApplyOptions {
        search_capacity: Some(aoss.clone()),
        ..opts(None)
    }
}

async fn run(
    cfn: &FakeCloudFormation,
    r: &Rendered,
    aoss: &Arc<FakeSearchCapacity>,
) -> (Result<ApplyReport, DeployError>, String) {
    let (progress, out) = plain();
    let prompter = ScriptedPrompter::new(false, &[]);
    let (_tx, rx) = watch::channel(0);
    let result = apply::apply(cfn, r, &with_capacity(aoss), &progress, &prompter, rx).await;
    (result, out.text())
}

/// prod's plan: search 10-20 OCU, indexing 2-4 OCU (the snapshots pin it).
fn prod_maxima(r: &Rendered) -> (u32, u32) {
    let os = &r.sizing.opensearch;
    assert_eq!(
        (os.search_ocu_max, os.indexing_ocu_max),
        (20, 4),
        "prod sizing changed; update the expected lines below"
    );
    (os.search_ocu_max, os.indexing_ocu_max)
}

#[tokio::test(start_paused = true)]
async fn differing_limits_are_set_to_the_plans_maxima_and_the_change_is_printed() {
    let r = rendered("prod");
    let (search_max, indexing_max) = prod_maxima(&r);
    let cfn = FakeCloudFormation::new();
    seed_all(&cfn, &r, true);
    let aoss = Arc::new(FakeSearchCapacity::with_limits(4, indexing_max));

    let (result, text) = run(&cfn, &r, &aoss).await;
    let report = result.expect("apply");

    assert_eq!(report.status, ApplyStatus::Applied, "{text}");
    assert_eq!(
        aoss.update_requests(),
        vec![json!({ "capacityLimits": {
            "maxSearchCapacityInOCU": search_max,
            "maxIndexingCapacityInOCU": indexing_max,
        }})],
        "one UpdateAccountSettings with the plan's maxima (no minimum exists in the API)"
    );
    assert_eq!(
        aoss.settings(),
        json!({ "accountSettingsDetail": { "capacityLimits": {
            "maxSearchCapacityInOCU": 20, "maxIndexingCapacityInOCU": 4,
        }}})
    );
    let pending = text
        .find("search capacity (account setting, set after the search stack): max search OCU 4 -> 20, max indexing OCU 4 (unchanged)")
        .unwrap_or_else(|| panic!("the pending change is shown before confirming:\n{text}"));
    let done = text
        .find("\nsearch capacity: max search OCU 4 -> 20, max indexing OCU 4 (unchanged)\n")
        .unwrap_or_else(|| panic!("one line says what changed:\n{text}"));
    assert!(pending < done);
    assert_eq!(
        report.search_capacity,
        Some(CapacityOutcome::Updated {
            before: CapacityLimits {
                max_search_ocu: Some(4),
                max_indexing_ocu: Some(4)
            },
            after: CapacityLimits {
                max_search_ocu: Some(20),
                max_indexing_ocu: Some(4)
            },
        })
    );
    assert!(
        !cfn.calls()
            .iter()
            .any(|c| c.starts_with("ExecuteChangeSet")),
        "the stacks were up to date: {:#?}",
        cfn.calls()
    );
}

#[tokio::test(start_paused = true)]
async fn equal_limits_send_no_update() {
    let r = rendered("prod");
    let (search_max, indexing_max) = prod_maxima(&r);
    let cfn = FakeCloudFormation::new();
    seed_all(&cfn, &r, true);
    let aoss = Arc::new(FakeSearchCapacity::with_limits(search_max, indexing_max));

    let (result, text) = run(&cfn, &r, &aoss).await;
    let report = result.expect("apply");

    assert_eq!(report.status, ApplyStatus::NoChanges, "{text}");
    assert_eq!(aoss.calls(), vec!["GetAccountSettings".to_owned()]);
    assert!(aoss.update_requests().is_empty());
    assert!(!text.contains("search capacity"), "{text}");
    assert_eq!(
        report.search_capacity,
        Some(CapacityOutcome::Unchanged {
            limits: CapacityLimits {
                max_search_ocu: Some(20),
                max_indexing_ocu: Some(4)
            }
        })
    );
}

#[tokio::test(start_paused = true)]
async fn from_nothing_the_limits_are_set_after_the_search_stack_completes() {
    let r = rendered("dev");
    let cfn = FakeCloudFormation::new();
    // An account where no limit was ever set: no capacityLimits in the answer.
    let aoss = Arc::new(FakeSearchCapacity::new(
        json!({ "accountSettingsDetail": {} }),
    ));

    let (result, text) = run(&cfn, &r, &aoss).await;
    let report = result.expect("apply");

    assert_eq!(report.status, ApplyStatus::Applied, "{text}");
    let os = &r.sizing.opensearch;
    assert_eq!(
        aoss.update_requests(),
        vec![json!({ "capacityLimits": {
            "maxSearchCapacityInOCU": os.search_ocu_max,
            "maxIndexingCapacityInOCU": os.indexing_ocu_max,
        }})]
    );
    let line = format!(
        "search capacity: max search OCU unset -> {}, max indexing OCU unset -> {}",
        os.search_ocu_max, os.indexing_ocu_max
    );
    let last_search_line = stack_lines(&text, StackId::Search)
        .pop()
        .expect("search stack progress");
    let search_done = text.find(&last_search_line).expect("search line");
    let set = text
        .find(&line)
        .unwrap_or_else(|| panic!("`{line}` in:\n{text}"));
    assert!(
        search_done < set,
        "set after the search stack finished:\n{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_search_stack_leaves_the_limits_alone() {
    let r = rendered("dev");
    let cfn = FakeCloudFormation::new();
    cfn.script(
        &name(&r, StackId::Search),
        Behavior::FailResource {
            logical_id: "Collection".into(),
            reason: "Resource handler returned message: \"Collection quota exceeded\" (HandlerErrorCode: ServiceLimitExceeded)".into(),
        },
    );
    let aoss = Arc::new(FakeSearchCapacity::with_limits(10, 10));

    let (result, text) = run(&cfn, &r, &aoss).await;
    let report = result.expect("apply");

    assert_eq!(report.status, ApplyStatus::Failed, "{text}");
    assert!(aoss.update_requests().is_empty(), "{:?}", aoss.calls());
    assert_eq!(
        report.search_capacity,
        Some(CapacityOutcome::NotApplied {
            reason: "the search stack did not deploy".into()
        })
    );
    assert!(
        text.contains("search capacity not changed (the search stack did not deploy)"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn reading_the_limits_fails_the_apply_before_anything_changes() {
    let r = rendered("dev");
    let cfn = FakeCloudFormation::new();
    let aoss = Arc::new(FakeSearchCapacity::with_limits(10, 10));
    aoss.fail_next(
        "GetAccountSettings",
        "AccessDeniedException",
        "User is not authorized to perform: aoss:GetAccountSettings",
    );

    let (result, text) = run(&cfn, &r, &aoss).await;
    let err = result.expect_err("apply fails");

    assert!(matches!(err, DeployError::Capacity(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("GetAccountSettings") && message.contains("AccessDeniedException"),
        "{message}"
    );
    assert!(
        !cfn.calls()
            .iter()
            .any(|c| c.starts_with("ExecuteChangeSet")),
        "{text}"
    );
    // The plan's change sets are discarded: each stack planned from
    // nothing (an empty REVIEW_IN_PROGRESS shell) is deleted again.
    let calls = cfn.calls();
    for call in calls.iter().filter(|c| c.starts_with("CreateChangeSet ")) {
        let stack = call.split(' ').nth(1).expect("stack in call");
        assert!(
            calls.iter().any(|c| c == &format!("DeleteStack {stack}")
                || c.starts_with(&format!("DeleteChangeSet {stack}"))),
            "{stack} discarded: {calls:#?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn an_update_error_fails_the_apply_naming_the_operation() {
    let r = rendered("prod");
    prod_maxima(&r);
    let cfn = FakeCloudFormation::new();
    seed_all(&cfn, &r, true);
    let aoss = Arc::new(FakeSearchCapacity::with_limits(4, 4));
    aoss.fail_next(
        "UpdateAccountSettings",
        "ValidationException",
        "maxSearchCapacityInOCU exceeds the account's OCU quota",
    );

    let (result, text) = run(&cfn, &r, &aoss).await;
    let report = result.expect("apply returns its report");

    assert_eq!(report.status, ApplyStatus::Failed, "{text}");
    assert_eq!(Outcome::from(report.status).code(), 1);
    assert!(
        text.contains("search capacity NOT set: OpenSearch Serverless UpdateAccountSettings: ValidationException"),
        "{text}"
    );
    assert!(text.contains("Apply FAILED"), "{text}");
}
