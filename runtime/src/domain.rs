//! Plain data types shared by the protocol ([`crate::protocol`]), the pipeline stages
//! ([`crate::pipeline`]) and the backends ([`crate::backends`]). No behaviour beyond small
//! helpers lives here, so every layer can depend on it without cycles.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch (0 before it).
pub fn epoch_micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// What the customer wants. The first eight are the set the issue requires; the tier
/// mapping in [`Intent::tier`] decides how expensive the answer may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    Greeting,
    OrderStatus,
    ProductSearch,
    Recommendation,
    ProductQuestion,
    /// Store-policy questions: returns, shipping, pre-orders, payment, accounts (the FAQ).
    ReturnPolicy,
    Escalation,
    OutOfScope,
}

impl Intent {
    pub const ALL: [Intent; 8] = [
        Intent::Greeting,
        Intent::OrderStatus,
        Intent::ProductSearch,
        Intent::Recommendation,
        Intent::ProductQuestion,
        Intent::ReturnPolicy,
        Intent::Escalation,
        Intent::OutOfScope,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Intent::Greeting => "greeting",
            Intent::OrderStatus => "order_status",
            Intent::ProductSearch => "product_search",
            Intent::Recommendation => "recommendation",
            Intent::ProductQuestion => "product_question",
            Intent::ReturnPolicy => "return_policy",
            Intent::Escalation => "escalation",
            Intent::OutOfScope => "out_of_scope",
        }
    }

    pub fn parse(s: &str) -> Option<Intent> {
        Intent::ALL.into_iter().find(|i| i.as_str() == s)
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// The performance tier of the seed document (template/cached, simple LLM, standard
    /// LLM, complex multi-turn). `follow_up` is true when the message leans on earlier
    /// turns ("something like that one"), which makes a recommendation multi-turn.
    pub fn tier(self, follow_up: bool) -> Tier {
        match self {
            Intent::Greeting | Intent::ReturnPolicy | Intent::Escalation | Intent::OutOfScope => {
                Tier::Template
            }
            Intent::OrderStatus | Intent::ProductQuestion => Tier::SimpleLlm,
            Intent::ProductSearch | Intent::Recommendation if follow_up => Tier::Complex,
            Intent::ProductSearch | Intent::Recommendation => Tier::StandardLlm,
        }
    }

    /// Answers that do not depend on who asks and can be served from the response cache.
    pub fn cacheable(self) -> bool {
        matches!(
            self,
            Intent::Greeting | Intent::ReturnPolicy | Intent::OutOfScope
        )
    }
}

impl fmt::Display for Intent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Response tier (seed tier mix 35/25/30/10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Template,
    SimpleLlm,
    StandardLlm,
    Complex,
}

impl Tier {
    pub const ALL: [Tier; 4] = [
        Tier::Template,
        Tier::SimpleLlm,
        Tier::StandardLlm,
        Tier::Complex,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Template => "template",
            Tier::SimpleLlm => "simple_llm",
            Tier::StandardLlm => "standard_llm",
            Tier::Complex => "complex",
        }
    }

    pub fn uses_llm(self) -> bool {
        !matches!(self, Tier::Template)
    }
}

/// One catalog entry (see `runtime/data/catalog.tsv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Title {
    pub id: String,
    pub title: String,
    pub author: String,
    pub genres: Vec<String>,
    pub demographic: String,
    pub volumes: u32,
    pub price_cents: u32,
    pub stock: u32,
    pub synopsis: String,
    /// Synthetic ISBN-13 (979-8 prefix) generated at load time so ISBN look-ups work.
    pub isbn: String,
}

impl Title {
    pub fn price(&self) -> String {
        format!("${}.{:02}", self.price_cents / 100, self.price_cents % 100)
    }
}

/// One volume of a series: its own price and stock (the catalog keeps series rows; the
/// embedded services derive per-volume stock from them deterministically,
/// [`crate::backends::catalog`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    pub number: u32,
    pub price_cents: u32,
    pub stock: u32,
}

impl Volume {
    pub fn price(&self) -> String {
        format!("${}.{:02}", self.price_cents / 100, self.price_cents % 100)
    }
}

/// One FAQ entry (see `runtime/data/faq.tsv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaqEntry {
    pub id: String,
    pub topic: String,
    pub question: String,
    pub answer: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    Processing,
    Shipped,
    OutForDelivery,
    Delivered,
    Cancelled,
}

impl OrderState {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Processing => "processing",
            OrderState::Shipped => "shipped",
            OrderState::OutForDelivery => "out for delivery",
            OrderState::Delivered => "delivered",
            OrderState::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderLine {
    pub title_id: String,
    pub title: String,
    pub volume: u32,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    /// The customer the order belongs to (the token's `sub`).
    pub customer: String,
    pub placed_on: String,
    pub state: OrderState,
    pub lines: Vec<OrderLine>,
    pub carrier: Option<String>,
    pub tracking: Option<String>,
    pub eta: Option<String>,
}

/// Whose per-customer data (orders) a message may read. Built from the
/// connection's principal ([`crate::pipeline::auth::Principal::scope`]), so a
/// customer never sees another customer's order, whatever number they type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// An authenticated customer: their own data only.
    Customer(&'a str),
    /// Auth off (allowed only on a loopback bind): a developer on this
    /// machine, who sees the generated demo data.
    Developer,
}

impl Scope<'_> {
    pub fn may_read(&self, owner: &str) -> bool {
        match self {
            Scope::Customer(id) => *id == owner,
            Scope::Developer => true,
        }
    }
}

/// Which part of the bundled corpus a retrieval searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corpus {
    All,
    Catalog,
    Faq,
}

/// A retrieved passage; `source_id` is `catalog:<id>` or `faq:<id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    pub source_id: String,
    pub title: String,
    pub text: String,
    pub score: f32,
}

/// A citation as sent in the `done` frame; `[n]` in the text refers to the n-th source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    pub id: String,
    pub title: String,
}

/// Results of the service calls made for one message.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolResult {
    CatalogSearch {
        query: String,
        titles: Vec<Title>,
    },
    TitleLookup {
        title: Option<Title>,
    },
    /// A volume of a title the question names ("one piece volume 3"); `volume` is
    /// `None` when the series has no volume `number`.
    VolumeLookup {
        title: Title,
        number: u32,
        volume: Option<Volume>,
    },
    OrderLookup {
        order_id: String,
        order: Option<Order>,
    },
    /// The message mentioned no order number.
    OrderNumberMissing,
    Recommendations {
        seed: Option<Title>,
        titles: Vec<Title>,
    },
}

/// One remembered exchange of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// The message id the turn answered: unique per message across tasks, so
    /// a store that sees the same id twice (a retried write) keeps one turn.
    #[serde(default)]
    pub id: String,
    /// When the message was received, in microseconds since the Unix epoch
    /// (0 = unknown): the DynamoDB store's sort key, so a retried save
    /// writes the same item.
    #[serde(default)]
    pub at_us: u64,
    pub user: String,
    pub assistant: String,
    pub intent: Intent,
    /// Catalog ids mentioned in the answer, so "more like that" can find them.
    pub title_ids: Vec<String>,
}

/// Everything a responder may use. Built by [`crate::pipeline::respond`].
#[derive(Debug, Clone)]
pub struct Prompt {
    pub intent: Intent,
    /// The response tier (an LLM backend may size or route the answer by it).
    pub tier: Tier,
    pub user_text: String,
    pub history: Vec<Turn>,
    pub tools: Vec<ToolResult>,
    pub passages: Vec<Passage>,
    /// Citation list; `[n]` refers to `sources[n-1]`.
    pub sources: Vec<SourceRef>,
}

impl Prompt {
    /// 1-based citation number of a source id, if it is in the list.
    pub fn cite(&self, id: &str) -> Option<usize> {
        self.sources.iter().position(|s| s.id == id).map(|i| i + 1)
    }
}
