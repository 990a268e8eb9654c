//! Stage 3: intent classification, rules first (PO-02: < 50 ms; in practice µs).
//!
//! Rules: weighted keyword phrases matched with one aho-corasick automaton over the
//! normalised text, plus a `RegexSet` for order numbers, ISBNs and volume references.
//! When the best intent does not win clearly (confidence below
//! `MANGA_RULES_CONFIDENCE`), the [`IntentModel`] decides under the `intent_ml` budget;
//! if it is late or fails, the rules' best guess is used (`intent_model_skipped`).
//! Messages flagged by the input guardrails ([`super::guardrails`]) are out of scope.

use super::guardrails::InputScreen;
use super::Run;
use crate::backends::catalog::{canonical_order_id, normalize};
use crate::backends::filters::volume_number;
use crate::backends::IntentModel;
use crate::domain::{Intent, Tier, Turn};
use crate::metrics::{Degradation, Stage};
use crate::protocol::IntentSource;
use aho_corasick::{AhoCorasick, MatchKind};
use regex::{Regex, RegexSet};
use tokio::time::Instant;

/// Keyword phrases (normalised) with the intent they suggest and how strongly.
const KEYWORDS: &[(&str, Intent, f32)] = &[
    ("hello", Intent::Greeting, 1.0),
    ("hi", Intent::Greeting, 0.6),
    ("hey", Intent::Greeting, 0.6),
    ("good morning", Intent::Greeting, 1.0),
    ("good afternoon", Intent::Greeting, 1.0),
    ("good evening", Intent::Greeting, 1.0),
    ("howdy", Intent::Greeting, 1.0),
    ("greetings", Intent::Greeting, 1.0),
    ("where is my order", Intent::OrderStatus, 1.5),
    ("my order", Intent::OrderStatus, 0.8),
    ("order status", Intent::OrderStatus, 1.2),
    ("track", Intent::OrderStatus, 0.8),
    ("tracking", Intent::OrderStatus, 0.8),
    ("shipped", Intent::OrderStatus, 0.6),
    ("arrive", Intent::OrderStatus, 0.6),
    ("arrived", Intent::OrderStatus, 0.6),
    ("package", Intent::OrderStatus, 0.6),
    ("delivered", Intent::OrderStatus, 0.6),
    ("do you have", Intent::ProductSearch, 0.8),
    ("do you sell", Intent::ProductSearch, 1.0),
    ("do you carry", Intent::ProductSearch, 1.0),
    ("do you stock", Intent::ProductSearch, 1.0),
    ("looking for", Intent::ProductSearch, 0.7),
    ("search", Intent::ProductSearch, 0.8),
    ("find", Intent::ProductSearch, 0.6),
    ("show me", Intent::ProductSearch, 0.7),
    ("manga by", Intent::ProductSearch, 0.8),
    ("manga about", Intent::ProductSearch, 0.7),
    ("recommend", Intent::Recommendation, 1.2),
    ("recommendation", Intent::Recommendation, 1.2),
    ("suggest", Intent::Recommendation, 1.0),
    ("suggestion", Intent::Recommendation, 1.0),
    ("similar to", Intent::Recommendation, 1.0),
    ("something like", Intent::Recommendation, 1.0),
    ("what should i read", Intent::Recommendation, 1.2),
    ("read next", Intent::Recommendation, 1.0),
    ("more like", Intent::Recommendation, 0.8),
    ("how much", Intent::ProductQuestion, 1.0),
    ("price", Intent::ProductQuestion, 1.0),
    ("cost", Intent::ProductQuestion, 0.8),
    ("in stock", Intent::ProductQuestion, 1.0),
    ("how many volumes", Intent::ProductQuestion, 1.2),
    ("who wrote", Intent::ProductQuestion, 1.0),
    ("author of", Intent::ProductQuestion, 1.0),
    ("what is it about", Intent::ProductQuestion, 1.0),
    ("return", Intent::ReturnPolicy, 1.0),
    ("refund", Intent::ReturnPolicy, 1.2),
    ("exchange", Intent::ReturnPolicy, 0.8),
    ("shipping", Intent::ReturnPolicy, 1.0),
    ("ship to", Intent::ReturnPolicy, 0.8),
    ("pre order", Intent::ReturnPolicy, 1.0),
    ("preorder", Intent::ReturnPolicy, 1.0),
    ("payment", Intent::ReturnPolicy, 1.0),
    ("paypal", Intent::ReturnPolicy, 1.0),
    ("credit card", Intent::ReturnPolicy, 0.8),
    ("gift card", Intent::ReturnPolicy, 1.0),
    ("password", Intent::ReturnPolicy, 1.0),
    ("account", Intent::ReturnPolicy, 0.8),
    ("policy", Intent::ReturnPolicy, 1.0),
    ("human", Intent::Escalation, 1.2),
    ("agent", Intent::Escalation, 1.0),
    ("real person", Intent::Escalation, 1.5),
    ("manager", Intent::Escalation, 1.0),
    ("supervisor", Intent::Escalation, 1.2),
    ("complaint", Intent::Escalation, 1.0),
    ("customer service", Intent::Escalation, 1.0),
    ("representative", Intent::Escalation, 1.2),
    ("escalate", Intent::Escalation, 1.5),
    ("weather", Intent::OutOfScope, 1.2),
    ("joke", Intent::OutOfScope, 1.0),
    ("homework", Intent::OutOfScope, 1.0),
    ("bitcoin", Intent::OutOfScope, 1.2),
];

/// Phrases that make a search or recommendation lean on earlier turns.
const FOLLOW_UP: &[&str] = &[
    "that one",
    "the last one",
    "those",
    "like that",
    "more like",
    "another one",
    "same author",
];

/// Structured bits found in the message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entities {
    /// Canonical `MA-123456`.
    pub order_id: Option<String>,
    pub has_isbn: bool,
    pub volume: Option<u32>,
    /// The message refers back to earlier turns.
    pub follow_up: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleOutcome {
    pub best: Option<Intent>,
    pub confidence: f32,
    pub entities: Entities,
}

/// The stage's result, also sent in the `start` frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    pub intent: Intent,
    pub tier: Tier,
    pub source: IntentSource,
    pub confidence: f32,
    pub entities: Entities,
}

#[derive(Debug)]
pub struct IntentRules {
    keywords: AhoCorasick,
    set: RegexSet,
    order_re: Regex,
}

const RE_ORDER: usize = 0;
const RE_ISBN: usize = 1;

impl IntentRules {
    pub fn new() -> Result<IntentRules, Box<dyn std::error::Error + Send + Sync>> {
        let pats: Vec<String> = KEYWORDS.iter().map(|(p, _, _)| normalize(p)).collect();
        let keywords = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&pats)?;
        let order = r"(?i)(?:\bma-?\d{6}|#\d{6}|\border\s+(?:number\s+|no\.?\s*)?\d{6})\b";
        let isbn = r"\b97[89](?:[-\s]?\d){10}\b";
        Ok(IntentRules {
            keywords,
            set: RegexSet::new([order, isbn])?,
            order_re: Regex::new(order)?,
        })
    }

    pub fn evaluate(&self, text: &str, history: &[Turn]) -> RuleOutcome {
        let mut scores = [0.0f32; Intent::ALL.len()];
        let norm = normalize(text);
        let bytes = norm.as_bytes();
        for m in self.keywords.find_iter(&norm) {
            // Whole words only, allowing a plural "s" ("returns", "agents").
            let start_ok = m.start() == 0 || bytes[m.start() - 1] == b' ';
            let end = if bytes.get(m.end()) == Some(&b's') {
                m.end() + 1
            } else {
                m.end()
            };
            let end_ok = end == bytes.len() || bytes[end] == b' ';
            if start_ok && end_ok {
                let (_, intent, w) = KEYWORDS[m.pattern().as_usize()];
                scores[intent.index()] += w;
            }
        }
        let hits = self.set.matches(text);
        let mut entities = Entities::default();
        if hits.matched(RE_ORDER) {
            entities.order_id = self
                .order_re
                .find(text)
                .and_then(|m| canonical_order_id(m.as_str()));
            scores[Intent::OrderStatus.index()] += 2.0;
        }
        if hits.matched(RE_ISBN) {
            entities.has_isbn = true;
            scores[Intent::ProductQuestion.index()] += 2.0;
        }
        entities.volume = volume_number(text);
        if entities.volume.is_some() {
            scores[Intent::ProductQuestion.index()] += 0.5;
        }
        let padded = format!(" {norm} ");
        entities.follow_up =
            !history.is_empty() && FOLLOW_UP.iter().any(|p| padded.contains(&format!(" {p} ")));

        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b)));
        let (s1, s2) = (scores[order[0]], scores[order[1]]);
        if s1 <= 0.0 {
            return RuleOutcome {
                best: None,
                confidence: 0.0,
                entities,
            };
        }
        // Clear winners are confident: one strong phrase (weight ≥ 1) and no competitor
        // gives 0.8; competition or only weak phrases push the message to the model.
        let confidence = ((s1 - s2) / (s1 + 0.25)).clamp(0.0, 1.0);
        RuleOutcome {
            best: Some(Intent::ALL[order[0]]),
            confidence,
            entities,
        }
    }
}

#[allow(clippy::too_many_arguments)] // one call site, reads as the stage's inputs
pub async fn classify(
    rules: &IntentRules,
    model: &dyn IntentModel,
    model_calls: &tokio::sync::Semaphore,
    text: &str,
    screened: InputScreen,
    history: &[Turn],
    threshold: f32,
    run: &mut Run<'_>,
) -> Classified {
    let start = Instant::now();
    let r = rules.evaluate(text, history);
    run.record(Stage::IntentRules, start.elapsed(), false);
    let decide =
        |intent: Intent, source: IntentSource, confidence: f32, entities: Entities| Classified {
            intent,
            tier: intent.tier(entities.follow_up),
            source,
            confidence,
            entities,
        };

    if screened != InputScreen::Clean {
        run.degrade(Degradation::InputBlocked);
        return decide(
            Intent::OutOfScope,
            IntentSource::Guardrails,
            1.0,
            r.entities,
        );
    }
    if let Some(best) = r.best.filter(|_| r.confidence >= threshold) {
        return decide(best, IntentSource::Rules, r.confidence, r.entities);
    }
    // A permit of the task's model-call limit, inside the same deadline: at
    // the limit the rules' best guess answers instead of a queue.
    let call = async {
        let _permit = model_calls.acquire().await.map_err(|_| {
            crate::backends::BackendError::Unavailable("the model-call limit is closed".into())
        })?;
        model.classify(text).await
    };
    match super::timed(run, Stage::IntentMl, call).await {
        Some(Ok(p)) => decide(p.intent, IntentSource::Model, p.confidence, r.entities),
        other => {
            if let Some(Err(e)) = other {
                crate::warn_limited!(error = %e, "intent model failed; using the rules' best guess");
            }
            run.degrade(Degradation::IntentModelSkipped);
            // Without any signal a catalog search is the most useful thing to try.
            let intent = r.best.unwrap_or(Intent::ProductSearch);
            decide(
                intent,
                IntentSource::RulesFallback,
                r.confidence,
                r.entities,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> IntentRules {
        IntentRules::new().expect("rules compile")
    }

    #[test]
    fn confident_rules_and_entities() {
        let r = rules();
        let o = r.evaluate("Where is my order MA-100123?", &[]);
        assert_eq!(o.best, Some(Intent::OrderStatus));
        assert!(o.confidence >= 0.8);
        assert_eq!(o.entities.order_id.as_deref(), Some("MA-100123"));
        let o = r.evaluate("how much is isbn 979-8-9000-0023-1", &[]);
        assert_eq!(o.best, Some(Intent::ProductQuestion));
        assert!(o.entities.has_isbn);
        let o = r.evaluate("price of vol. 12 of berserk", &[]);
        assert_eq!(o.entities.volume, Some(12));
        let o = r.evaluate("I want to talk to a human agent", &[]);
        assert_eq!(o.best, Some(Intent::Escalation));
    }

    #[test]
    fn weak_or_mixed_signals_are_not_confident() {
        let r = rules();
        assert!(r.evaluate("hi", &[]).confidence < 0.8);
        assert_eq!(r.evaluate("tell me a story about dragons", &[]).best, None);
        // "this" must not match "hi": whole words only.
        assert_eq!(r.evaluate("this", &[]).best, None);
    }
}
