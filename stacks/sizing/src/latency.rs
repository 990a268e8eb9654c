//! The latency contract, defined once for the whole workspace: the budgets
//! of `targets.latency_ms` ([`LatencyBudgets`]) and the stages of a request
//! ([`Stage`]).
//!
//! Everyone reads these two types: the environment parser (`stacks/src/env/`,
//! which deserializes `LatencyBudgets<Spanned<u32>>` and validates it into
//! `LatencyBudgets`), sizing's budget table ([`crate::budget`]), the stacks
//! (the task definition's `MANGA_BUDGETS_JSON`, the observability stack's
//! alarms and dashboard) and the runtime (its per-stage deadlines, metrics
//! and EMF lines, `runtime/src/metrics.rs`). A stage's [`Stage::key`] is the
//! metric and EMF dimension value and the alarm contract; its
//! [`Stage::label`] is what tables and messages print.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

/// Declares [`LatencyBudgets`] and the helpers that walk its fields, so the
/// list of budget fields is written exactly once.
macro_rules! latency_budgets {
    ($( $(#[$doc:meta])* $field:ident, )*) => {
        /// `targets.latency_ms`: p95 budget per stage of the critical path (ms).
        ///
        /// `T` is `u32` everywhere except in the environment parser, which
        /// reads `LatencyBudgets<Spanned<u32>>` to know where each value is.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct LatencyBudgets<T = u32> {
            $( $(#[$doc])* pub $field: T, )*
        }

        impl<T> LatencyBudgets<T> {
            /// Every field as `(name, value)`, in declaration order.
            pub fn fields(&self) -> impl Iterator<Item = (&'static str, &T)> {
                [$( (stringify!($field), &self.$field), )*].into_iter()
            }

            /// The same budgets with `f(name, value)` applied to each field.
            pub fn map<U>(&self, mut f: impl FnMut(&'static str, &T) -> U) -> LatencyBudgets<U> {
                LatencyBudgets { $( $field: f(stringify!($field), &self.$field), )* }
            }
        }
    };
}

latency_budgets! {
    /// End-to-end p95 the whole critical path plus margin must fit.
    end_to_end_p95,
    /// Slack kept out of the stage budgets (the one budget that may be 0).
    margin,
    /// CloudFront and ALB.
    edge,
    /// Authentication and rate limiting.
    auth,
    /// Conversation memory read (DynamoDB, through DAX if needed).
    memory_read,
    /// Rule-based intent classification.
    intent_rules,
    /// ML intent classification (SageMaker) when the rules are not confident.
    intent_ml,
    /// Redis cache hit.
    cache_hit,
    /// Downstream service calls (parallel with retrieval).
    service_calls,
    /// RAG retrieval: embedding plus vector search (parallel with service calls).
    retrieval,
    /// Bedrock time to first token.
    first_token,
    /// Streaming from first to last token.
    streaming,
    /// Guardrails on the response.
    guardrails,
    /// Formatting and delivering the last frame.
    delivery,
    /// Extra gap per streamed chunk (off the critical path).
    stream_jitter,
}

impl<T> LatencyBudgets<T> {
    /// Whether the field `name` must be greater than 0. Only `margin` may
    /// be 0: a zero stage budget would make that stage an instant timeout.
    pub fn must_be_positive(name: &str) -> bool {
        name != "margin"
    }
}

impl LatencyBudgets {
    /// The seed document's budgets (PO-01..PO-08 and its critical-path
    /// breakdown): what the shipped environment files state, and the
    /// runtime's defaults when it runs without one.
    pub const SEED: LatencyBudgets = LatencyBudgets {
        end_to_end_p95: 2000,
        margin: 200,
        edge: 30,
        auth: 20,
        memory_read: 10,
        intent_rules: 50,
        intent_ml: 150,
        cache_hit: 2,
        service_calls: 200,
        retrieval: 200,
        first_token: 400,
        streaming: 985,
        guardrails: 50,
        delivery: 50,
        stream_jitter: 50,
    };

    /// The fields that are 0 but must not be ([`Self::must_be_positive`]).
    pub fn zero_budgets(&self) -> Vec<&'static str> {
        self.fields()
            .filter(|(name, v)| **v == 0 && Self::must_be_positive(name))
            .map(|(name, _)| name)
            .collect()
    }
}

impl Default for LatencyBudgets {
    /// [`LatencyBudgets::SEED`].
    fn default() -> Self {
        LatencyBudgets::SEED
    }
}

/// A stage of the request path: one enumeration for the budget table,
/// the runtime's deadlines and metrics, EMF, alarms and the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// CloudFront and ALB (budgeted and modelled; not measured in-process).
    Edge,
    /// Authentication and rate limiting.
    Auth,
    /// Conversation memory read.
    MemoryRead,
    /// Rule-based intent classification.
    IntentRules,
    /// ML intent classification.
    IntentMl,
    /// Redis cache hit.
    CacheHit,
    /// Downstream service calls.
    ServiceCalls,
    /// RAG retrieval.
    Retrieval,
    /// Bedrock time to first token.
    FirstToken,
    /// First to last token.
    Streaming,
    /// Guardrails.
    Guardrails,
    /// Last frame to the client.
    Delivery,
    /// Extra gap per streamed chunk (not on the critical path).
    StreamJitter,
    /// The whole message as the runtime measures it (budget
    /// `end_to_end_p95`; not a row of the budget table, which derives the
    /// end-to-end figure from the path).
    EndToEnd,
}

impl Stage {
    /// Number of stages; arrays indexed by [`Stage::index`] have this length.
    pub const COUNT: usize = 14;

    /// The budget table's rows, in path order.
    pub const BUDGETED: [Stage; 13] = [
        Stage::Edge,
        Stage::Auth,
        Stage::MemoryRead,
        Stage::IntentRules,
        Stage::IntentMl,
        Stage::CacheHit,
        Stage::ServiceCalls,
        Stage::Retrieval,
        Stage::FirstToken,
        Stage::Streaming,
        Stage::Guardrails,
        Stage::Delivery,
        Stage::StreamJitter,
    ];

    /// What the runtime measures in-process (every stage but the edge), in
    /// the order its metrics list them.
    pub const MEASURED: [Stage; 13] = [
        Stage::Auth,
        Stage::MemoryRead,
        Stage::IntentRules,
        Stage::IntentMl,
        Stage::CacheHit,
        Stage::ServiceCalls,
        Stage::Retrieval,
        Stage::FirstToken,
        Stage::Streaming,
        Stage::StreamJitter,
        Stage::Guardrails,
        Stage::Delivery,
        Stage::EndToEnd,
    ];

    /// The stage's key: metric label, EMF `Stage` dimension and alarm
    /// contract (`memory_read`). Equal to its budget's field name, except
    /// `end_to_end` (budget `end_to_end_p95`).
    pub fn key(self) -> &'static str {
        match self {
            Stage::Edge => "edge",
            Stage::Auth => "auth",
            Stage::MemoryRead => "memory_read",
            Stage::IntentRules => "intent_rules",
            Stage::IntentMl => "intent_ml",
            Stage::CacheHit => "cache_hit",
            Stage::ServiceCalls => "service_calls",
            Stage::Retrieval => "retrieval",
            Stage::FirstToken => "first_token",
            Stage::Streaming => "streaming",
            Stage::Guardrails => "guardrails",
            Stage::Delivery => "delivery",
            Stage::StreamJitter => "stream_jitter",
            Stage::EndToEnd => "end_to_end",
        }
    }

    /// The stage as tables and messages print it (`memory read`).
    pub fn label(self) -> &'static str {
        match self {
            Stage::Edge => "edge",
            Stage::Auth => "auth",
            Stage::MemoryRead => "memory read",
            Stage::IntentRules => "intent rules",
            Stage::IntentMl => "intent ml",
            Stage::CacheHit => "cache hit",
            Stage::ServiceCalls => "service calls",
            Stage::Retrieval => "retrieval",
            Stage::FirstToken => "llm first token",
            Stage::Streaming => "streaming",
            Stage::Guardrails => "guardrails",
            Stage::Delivery => "delivery",
            Stage::StreamJitter => "stream jitter",
            Stage::EndToEnd => "end to end",
        }
    }

    /// The stage's budget field in `b`: the one map from stages to budgets.
    pub fn budget_mut<T>(self, b: &mut LatencyBudgets<T>) -> &mut T {
        match self {
            Stage::Edge => &mut b.edge,
            Stage::Auth => &mut b.auth,
            Stage::MemoryRead => &mut b.memory_read,
            Stage::IntentRules => &mut b.intent_rules,
            Stage::IntentMl => &mut b.intent_ml,
            Stage::CacheHit => &mut b.cache_hit,
            Stage::ServiceCalls => &mut b.service_calls,
            Stage::Retrieval => &mut b.retrieval,
            Stage::FirstToken => &mut b.first_token,
            Stage::Streaming => &mut b.streaming,
            Stage::Guardrails => &mut b.guardrails,
            Stage::Delivery => &mut b.delivery,
            Stage::StreamJitter => &mut b.stream_jitter,
            Stage::EndToEnd => &mut b.end_to_end_p95,
        }
    }

    /// The stage's budget in milliseconds.
    pub fn budget_ms(self, b: &LatencyBudgets) -> u32 {
        // A copy of fifteen integers, so `budget_mut` stays the only map.
        let mut copy = *b;
        *self.budget_mut(&mut copy)
    }

    /// The stage's budget as a deadline.
    pub fn budget(self, b: &LatencyBudgets) -> Duration {
        Duration::from_millis(self.budget_ms(b).into())
    }

    /// Position in arrays of [`Stage::COUNT`] slots.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Serializes the stage as its [`label`](Stage::label) (for tables that
    /// people read, e.g. `mangactl size --output json`).
    pub fn serialize_label<S: Serializer>(stage: &Stage, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(stage.label())
    }
}

impl fmt::Display for Stage {
    /// The label.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl Serialize for Stage {
    /// The key.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.key())
    }
}

impl Stage {
    /// The stage whose [`key`](Stage::key) is `key` (every budgeted stage and
    /// `end_to_end`).
    pub fn from_key(key: &str) -> Option<Stage> {
        Stage::BUDGETED
            .into_iter()
            .chain([Stage::EndToEnd])
            .find(|s| s.key() == key)
    }
}

impl<'de> Deserialize<'de> for Stage {
    /// From the key.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Stage, D::Error> {
        let key = String::deserialize(d)?;
        Stage::from_key(&key)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown stage `{key}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stage_has_a_distinct_budget_and_its_key_names_it() {
        let mut b = LatencyBudgets::SEED.map(|_, _| 0u32);
        for (n, stage) in [Stage::BUDGETED.as_slice(), &[Stage::EndToEnd]]
            .concat()
            .into_iter()
            .enumerate()
        {
            *stage.budget_mut(&mut b) = n as u32 + 1;
        }
        let fields: Vec<(&str, u32)> = b.fields().map(|(k, v)| (k, *v)).collect();
        // Only `margin` is no stage's budget.
        assert_eq!(fields.iter().filter(|(_, v)| *v == 0).count(), 1);
        assert_eq!(b.margin, 0);
        for stage in Stage::BUDGETED {
            let key = stage.key();
            assert_eq!(
                fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v),
                Some(stage.budget_ms(&b)),
                "{key}"
            );
        }
        assert_eq!(Stage::EndToEnd.budget_ms(&b), b.end_to_end_p95);
        assert_eq!(Stage::MemoryRead.to_string(), "memory read");
        assert_eq!(
            serde_json::to_string(&Stage::MemoryRead).ok().as_deref(),
            Some("\"memory_read\"")
        );
        let indices: std::collections::BTreeSet<usize> =
            [Stage::BUDGETED.as_slice(), &Stage::MEASURED]
                .concat()
                .iter()
                .map(|s| s.index())
                .collect();
        assert_eq!(indices.len(), Stage::COUNT);
        assert!(indices.iter().all(|i| *i < Stage::COUNT));
    }

    #[test]
    fn only_a_zero_margin_is_allowed() {
        let mut b = LatencyBudgets::SEED;
        b.margin = 0;
        assert!(b.zero_budgets().is_empty());
        b.cache_hit = 0;
        b.end_to_end_p95 = 0;
        assert_eq!(b.zero_budgets(), ["end_to_end_p95", "cache_hit"]);
    }
}
