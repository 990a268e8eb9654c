//! Scale holds and live drift in `plan` (`src/deploy/holds.rs`), against
//! the fakes: an unexpired record's value goes into the rendering (and an
//! expired one's does not), live capacity that differs is overwritten,
//! reverted or left as it is, and `--revert-drift` asks for a drift-aware
//! change set that shows what it resets.

use mangactl::aws::cloudformation::{PropertyDifference, ResourceDrift};
use mangactl::aws::scale_records::ScaleRecord;
use mangactl::deploy::holds::{self, Fate};
use mangactl::deploy::plan::{self, PlanOptions};
use mangactl::deploy::Backoff;
use mangactl::fakes::cloudformation::DriftScript;
use stacks::stacks::StackId;

use crate::deploy_fake::{apply_yes, name, rendered};
use crate::drift::Live;

fn record(
    stack: StackId,
    logical_id: &str,
    property: &str,
    value: &str,
    until: &str,
) -> ScaleRecord {
    ScaleRecord {
        version: 1,
        component: "cache".into(),
        stack,
        logical_id: logical_id.into(),
        property: property.into(),
        value: value.into(),
        by: "alice".into(),
        at: "2026-12-01T03:12:00Z".into(),
        reason: "INC-7".into(),
        until: until.into(),
    }
}

fn popts(revert_drift: bool) -> PlanOptions {
    PlanOptions {
        only: None,
        change_set_name: "mangactl-plan-test".into(),
        concurrency: 4,
        backoff: Backoff::default(),
        revert_drift,
    }
}

#[tokio::test(start_paused = true)]
async fn an_unexpired_record_holds_its_value_in_the_rendering_an_expired_one_does_not() {
    let mut r = rendered("prod");
    let records = [
        record(
            StackId::Cache,
            "Redis",
            "/ReplicasPerNodeGroup",
            "3",
            "2026-12-08",
        ),
        record(
            StackId::Memory,
            "DaxCluster",
            "/ReplicationFactor",
            "5",
            "2026-11-30",
        ),
        record(
            StackId::Search,
            "AccountSettings",
            "/capacityLimits/maxSearchCapacityInOCU",
            "40",
            "2026-12-08",
        ),
    ];
    let search_before = r.sizing.opensearch.search_ocu_max;
    let held = holds::apply_holds(&mut r, &records, "2026-12-01").expect("holds");
    let what: Vec<(StackId, &str, &str, &str)> = held
        .iter()
        .map(|h| {
            (
                h.stack,
                h.property.as_str(),
                h.rendered.as_str(),
                h.held.as_str(),
            )
        })
        .collect();
    let search_before = search_before.to_string();
    assert_eq!(
        what,
        [
            (StackId::Cache, "/ReplicasPerNodeGroup", "2", "3"),
            (
                StackId::Search,
                "/capacityLimits/maxSearchCapacityInOCU",
                search_before.as_str(),
                "40"
            ),
        ],
        "the expired DAX record holds nothing"
    );
    let cache = r
        .stacks
        .iter()
        .find(|s| s.id == StackId::Cache)
        .expect("cache");
    assert!(
        cache.body.contains("\"ReplicasPerNodeGroup\": 3"),
        "the body the change set sends"
    );
    assert_eq!(r.sizing.opensearch.search_ocu_max, 40);
    let text = holds::render_text(&held, &[]);
    assert!(
        text.contains("= cache/Redis/ReplicasPerNodeGroup stays 3 (renders 2): scaled by alice at 2026-12-01T03:12:00Z (INC-7), until 2026-12-08"),
        "{text}"
    );
}

/// Live drift and what the apply does to it: left alone when the change set
/// does not touch the property, overwritten when it does, reverted with
/// `--revert-drift`; the drift-aware change set lists each reset.
#[tokio::test(start_paused = true)]
async fn plan_says_which_live_drift_the_apply_overwrites_keeps_or_reverts() {
    let r = rendered("prod");
    let fake = mangactl::fakes::cloudformation::FakeCloudFormation::new();
    apply_yes(&fake, &r).await;
    let live = Live::as_rendered(&r, &fake);
    // On-call doubled DAX by hand (rendered 3) without a record.
    live.capacity.edit(|st| {
        for c in st.dax.values_mut() {
            c.total_nodes = 6;
        }
    });
    let p = plan::plan(&fake, &r, &popts(false)).await.expect("plan");
    let drift = holds::live_drift(&fake, live.readers(), &r, &p, false)
        .await
        .expect("live drift");
    plan::discard(&fake, &p).await;
    assert_eq!(drift.len(), 1, "{drift:?}");
    let (stack, list) = &drift[0];
    assert_eq!(*stack, StackId::Memory);
    assert_eq!(list[0].property, "/ReplicationFactor");
    assert_eq!(
        (list[0].live.as_str(), list[0].rendered.as_str()),
        ("6", "3")
    );
    assert_eq!(
        list[0].fate,
        Fate::Kept,
        "nothing in the change set touches it"
    );

    // A record for 4 puts 4 into the template: the change set sets the
    // property, and the live 6 is overwritten.
    let mut held = r.clone();
    holds::apply_holds(
        &mut held,
        &[record(
            StackId::Memory,
            "DaxCluster",
            "/ReplicationFactor",
            "4",
            "2026-12-08",
        )],
        "2026-12-01",
    )
    .expect("holds");
    let p = plan::plan(&fake, &held, &popts(false)).await.expect("plan");
    let drift = holds::live_drift(&fake, live.readers(), &held, &p, false)
        .await
        .expect("live drift");
    plan::discard(&fake, &p).await;
    let d = &drift[0].1[0];
    assert_eq!(
        (d.live.as_str(), d.rendered.as_str(), d.fate),
        ("6", "4", Fate::Overwritten)
    );
    let text = holds::render_text(&[], &drift);
    assert!(
        text.contains("! memory/DaxCluster/ReplicationFactor: live 6, renders 4: OVERWRITTEN by this apply (the change set sets this property)"),
        "{text}"
    );

    // CloudFormation's drift detection found the table's billing mode
    // changed; a drift-aware change set resets it and says so.
    let memory = name(&r, StackId::Memory);
    fake.script_drift(
        &memory,
        DriftScript::Complete(vec![ResourceDrift {
            logical_id: "ConversationTable".into(),
            resource_type: "AWS::DynamoDB::Table".into(),
            status: "MODIFIED".into(),
            differences: vec![PropertyDifference {
                path: "/BillingMode".into(),
                expected: "PAY_PER_REQUEST".into(),
                actual: "PROVISIONED".into(),
                kind: "NOT_EQUAL".into(),
            }],
        }]),
    );
    let standard = plan::plan(&fake, &r, &popts(false)).await.expect("plan");
    plan::discard(&fake, &standard).await;
    assert!(
        standard
            .stack(StackId::Memory)
            .is_some_and(|s| s.changes.is_empty()),
        "a standard change set compares templates only"
    );
    let aware = plan::plan(&fake, &r, &popts(true)).await.expect("plan");
    plan::discard(&fake, &aware).await;
    let m = aware.stack(StackId::Memory).expect("memory");
    let table = m
        .changes
        .iter()
        .find(|c| c.logical_id == "ConversationTable")
        .expect("the drifted table is in the change set");
    assert_eq!(
        table.reverts,
        ["/BillingMode: live PROVISIONED -> PAY_PER_REQUEST"]
    );
    assert!(plan::render_text(&aware)
        .contains("reverts live drift /BillingMode: live PROVISIONED -> PAY_PER_REQUEST"));
    let drift = holds::live_drift(&fake, live.readers(), &r, &aware, true)
        .await
        .expect("live drift");
    assert_eq!(drift[0].1[0].fate, Fate::Reverted, "{drift:?}");
}
