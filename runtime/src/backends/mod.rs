//! The traits the pipeline ([`crate::pipeline`]) depends on, and their implementations.
//!
//! Embedded (default, no cloud): [`memory_store`] (LRU+TTL sessions), [`moka_cache`]
//! (response cache), [`classifier`] (hashed n-gram logistic regression), [`catalog`]
//! (services over the bundled catalog and generated orders), [`bm25`] (tantivy
//! retrieval), [`extractive`] (grounded extractive responder). Remote: [`openai`]
//! (OpenAI-compatible streaming chat completions).
//!
//! AWS ([`aws`], `MANGA_BACKEND=aws`): DynamoDB sessions, ElastiCache Redis cache,
//! SageMaker intent endpoint, OpenSearch Serverless retrieval, Bedrock LLM — the same
//! traits; the pipeline only sees `Arc<dyn Trait>`.

pub mod aws;
pub mod bm25;
pub mod catalog;
pub mod classifier;
pub mod corpus;
pub mod embed;
pub mod extractive;
pub mod filters;
pub mod hybrid;
pub mod memory_store;
pub mod minilm;
pub mod moka_cache;
pub mod openai;
pub mod simulated;

use crate::domain::{
    Corpus, Intent, Order, Passage, Prompt, Scope, SourceRef, Title, Turn, Volume,
};
use async_trait::async_trait;
use filters::Filters;
use futures_util::stream::BoxStream;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;

/// Failure of a backend call. The pipeline never fails a message because of these: it
/// degrades (see [`crate::metrics::Degradation`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    #[error("backend returned an invalid response: {0}")]
    Invalid(String),
    /// The model ended the answer early for a reason it reported (Bedrock
    /// `stopReason`, OpenAI `finish_reason`); what was streamed stands.
    #[error("the model cut the answer short: {0:?}")]
    Cut(CutShort),
}

/// Why a model ended an answer early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutShort {
    /// The token limit or the context window was reached.
    Length,
    /// A content filter or guardrail of the model provider stopped it.
    Filtered,
}

/// Which way a session store served a call: its usual path, or its fallback (the
/// DAX store going to DynamoDB directly while the cluster is unreachable). The
/// pipeline reports a fallback in `done.degraded` as `memory_fallback`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Served {
    #[default]
    Primary,
    Fallback,
}

/// Conversation memory (PO-04): last N turns per session key.
#[async_trait]
pub trait SessionStore: Send + Sync + Debug {
    /// The most recent `max_turns` turns, oldest first.
    async fn load(&self, key: &str, max_turns: usize) -> Result<Vec<Turn>, BackendError>;
    async fn append(&self, key: &str, turn: Turn) -> Result<(), BackendError>;
    /// [`SessionStore::load`], saying which way it was served (what the pipeline
    /// calls). A store with a fallback path overrides this and `append_served`;
    /// the others keep these defaults (always [`Served::Primary`]).
    async fn load_served(
        &self,
        key: &str,
        max_turns: usize,
    ) -> Result<(Vec<Turn>, Served), BackendError> {
        Ok((self.load(key, max_turns).await?, Served::Primary))
    }
    /// [`SessionStore::append`], saying which way it was served.
    async fn append_served(&self, key: &str, turn: Turn) -> Result<Served, BackendError> {
        self.append(key, turn).await.map(|()| Served::Primary)
    }
    async fn ready(&self) -> Result<(), BackendError> {
        Ok(())
    }
}

/// An intent prediction with the model's probability for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    pub intent: Intent,
    pub confidence: f32,
}

/// ML intent classifier (PO-02), consulted when the rules are not confident.
#[async_trait]
pub trait IntentModel: Send + Sync + Debug {
    async fn classify(&self, text: &str) -> Result<Prediction, BackendError>;
    async fn ready(&self) -> Result<(), BackendError> {
        Ok(())
    }
}

/// A cached answer (template and FAQ answers only; see [`crate::domain::Intent::cacheable`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedAnswer {
    pub text: String,
    pub sources: Vec<SourceRef>,
}

/// Response cache (PO-05), keyed by intent and normalised question.
#[async_trait]
pub trait ResponseCache: Send + Sync + Debug {
    async fn get(&self, key: &str) -> Result<Option<CachedAnswer>, BackendError>;
    async fn put(&self, key: &str, answer: CachedAnswer) -> Result<(), BackendError>;
    async fn ready(&self) -> Result<(), BackendError> {
        Ok(())
    }
}

/// Recommendations with the title they were derived from, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    pub seed: Option<Title>,
    pub titles: Vec<Title>,
}

/// Commerce services: catalog search, price/stock, order status, recommendations.
#[async_trait]
pub trait Services: Send + Sync + Debug {
    async fn search_catalog(&self, query: &str, limit: usize) -> Result<Vec<Title>, BackendError>;
    /// The title a question is about (by name or ISBN), with price and stock.
    async fn lookup_title(&self, query: &str) -> Result<Option<Title>, BackendError>;
    /// The title a question is about and one of its volumes, with that volume's price
    /// and stock; the volume is `None` when the series has no such volume.
    async fn lookup_volume(
        &self,
        query: &str,
        number: u32,
    ) -> Result<Option<(Title, Option<Volume>)>, BackendError>;
    /// The order, if it exists and `scope` may read it: another customer's
    /// order is `None`, exactly like one that does not exist, so order
    /// numbers cannot be probed.
    async fn order_status(
        &self,
        order_id: &str,
        scope: Scope<'_>,
    ) -> Result<Option<Order>, BackendError>;
    /// `seen` are catalog ids from the conversation, most relevant first; the first is
    /// the seed when the query names no title and asks for no kind of title (no genre,
    /// demographic or price constraint: what was asked comes before history), and all
    /// are excluded.
    async fn recommend(
        &self,
        query: &str,
        seen: &[String],
        limit: usize,
    ) -> Result<Recommendation, BackendError>;
    async fn ready(&self) -> Result<(), BackendError> {
        Ok(())
    }
}

/// Passage retrieval (PO-03) over the catalog and FAQ. `filters` (parsed from the
/// question, [`filters::FilterParser`]) are constraints: no passage they reject is
/// returned.
#[async_trait]
pub trait Retriever: Send + Sync + Debug {
    async fn retrieve(
        &self,
        query: &str,
        k: usize,
        corpus: Corpus,
        filters: &Filters,
    ) -> Result<Vec<Passage>, BackendError>;
    async fn ready(&self) -> Result<(), BackendError> {
        Ok(())
    }
}

/// A stream of text pieces (tokens or words) from a responder.
pub type TokenStream = BoxStream<'static, Result<String, BackendError>>;

/// Response generation (PO-01). Implementations stream; the pipeline enforces the
/// first-token and inter-token deadlines around them.
#[async_trait]
pub trait Llm: Send + Sync + Debug {
    /// A short name for logs and `/readyz`.
    fn name(&self) -> &'static str;
    async fn stream(&self, prompt: &Prompt) -> Result<TokenStream, BackendError>;
    async fn ready(&self) -> Result<(), BackendError> {
        Ok(())
    }
}
