//! Intent classification accuracy on the held-out set (`data/intents/heldout.tsv`,
//! never used for training). The numbers are printed; run with `--nocapture` to see them.

use crate::support::{classifier, data};
use manga_runtime::domain::Intent;
use manga_runtime::pipeline::intent::IntentRules;

#[test]
fn model_alone_is_accurate_on_held_out_examples() {
    let eval = classifier().evaluate(&data().heldout);
    println!(
        "intent model held-out accuracy: {}/{} = {:.3}",
        eval.correct,
        eval.total,
        eval.accuracy()
    );
    assert!(eval.total >= 100);
    assert!(
        eval.accuracy() >= 0.85,
        "held-out accuracy {:.3}",
        eval.accuracy()
    );
    // Sanity: training accuracy is higher (the model did learn the training set).
    assert!(classifier().evaluate(&data().train).accuracy() >= eval.accuracy());
}

#[test]
fn rules_then_model_as_the_pipeline_runs_it() {
    let rules = IntentRules::new().expect("rules");
    let clf = classifier();
    let mut correct = 0;
    let mut by_rules = 0;
    for (label, text) in &data().heldout {
        let r = rules.evaluate(text, &[]);
        let predicted = match r.best.filter(|_| r.confidence >= 0.8) {
            Some(i) => {
                by_rules += 1;
                i
            }
            None => clf.predict(text).intent,
        };
        if predicted == *label {
            correct += 1;
        }
    }
    let total = data().heldout.len();
    let acc = correct as f64 / total as f64;
    println!(
        "rules+model held-out accuracy: {correct}/{total} = {acc:.3} ({by_rules} decided by rules)"
    );
    assert!(acc >= 0.85, "{acc:.3}");
    assert!(by_rules > 0 && by_rules < total, "both paths are exercised");
}

#[test]
fn every_intent_is_predicted_for_some_held_out_example() {
    let clf = classifier();
    for intent in Intent::ALL {
        assert!(
            data()
                .heldout
                .iter()
                .any(|(l, t)| *l == intent && clf.predict(t).intent == intent),
            "{intent} never predicted correctly"
        );
    }
}
