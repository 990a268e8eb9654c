//! [`ExtractiveResponder`]: the default [`Llm`]. It is not a language model: it composes
//! the answer from the tool results and retrieved passages in the [`Prompt`] with fixed
//! sentence patterns, cites them as `[n]`, and streams it word by word. Every fact in its
//! output comes from the catalog, FAQ or orders table, so it cannot hallucinate; it also
//! cannot paraphrase. Point `MANGA_LLM=openai` at a real model for that ([`super::openai`]).
//!
//! [`compose`] is also the pipeline's template responder and the fallback answer when an
//! LLM misses its first-token deadline ([`crate::pipeline::respond`]).

use super::{BackendError, Llm, TokenStream};
use crate::domain::{Intent, OrderState, Prompt, Title, ToolResult};
use async_trait::async_trait;
use futures_util::StreamExt;
use std::fmt::Write as _;
use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct ExtractiveResponder {
    /// Pause between words; zero streams as fast as the socket takes it.
    pub word_delay: Duration,
}

impl ExtractiveResponder {
    pub fn new(word_delay: Duration) -> Self {
        ExtractiveResponder { word_delay }
    }
}

#[async_trait]
impl Llm for ExtractiveResponder {
    fn name(&self) -> &'static str {
        "extractive"
    }

    async fn stream(&self, prompt: &Prompt) -> Result<TokenStream, BackendError> {
        let words = split_words(&compose(prompt));
        let delay = self.word_delay;
        let s = futures_util::stream::iter(words).then(move |w| async move {
            if delay.is_zero() {
                // Still yield so a long answer does not monopolise the worker thread.
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(delay).await;
            }
            Ok(w)
        });
        Ok(s.boxed())
    }
}

/// Splits text into words, each keeping the whitespace that follows it, so that
/// concatenating the pieces gives the text back exactly.
pub fn split_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            in_space = true;
        } else if in_space {
            out.push(std::mem::take(&mut cur));
            in_space = false;
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn cite(prompt: &Prompt, id: &str) -> String {
    prompt
        .cite(id)
        .map(|n| format!(" [{n}]"))
        .unwrap_or_default()
}

fn stock_phrase(t: &Title) -> String {
    if t.stock == 0 {
        "currently out of stock".to_string()
    } else {
        format!("{} in stock", t.stock)
    }
}

fn title_line(prompt: &Prompt, t: &Title) -> String {
    format!(
        "- {} by {} ({}; {}, {} volumes), {} per volume, {}{}",
        t.title,
        t.author,
        t.genres.join(", "),
        t.demographic,
        t.volumes,
        t.price(),
        stock_phrase(t),
        cite(prompt, &format!("catalog:{}", t.id))
    )
}

/// The grounded answer for a prompt. Deterministic: same prompt, same text.
pub fn compose(prompt: &Prompt) -> String {
    let mut o = String::new();
    match prompt.intent {
        Intent::Greeting => o.push_str(
            "Hi! I'm MangaAssist. I can find manga in our catalog, recommend a series, tell you \
             prices and stock, check an order (order numbers look like MA-123456), and answer \
             questions about shipping, returns, pre-orders, payment and accounts.",
        ),
        Intent::Escalation => o.push_str(
            "I'm sorry this has been frustrating. I've flagged this conversation for a member of \
             our support team; they will reply here within one business day. If it is about an \
             order, please add the order number so they can start right away.",
        ),
        Intent::OutOfScope => o.push_str(
            "I can only help with shopping for manga: finding titles, recommendations, prices and \
             stock, order status, and store policies such as shipping and returns.",
        ),
        Intent::ReturnPolicy => match prompt
            .passages
            .iter()
            .find(|p| p.source_id.starts_with("faq:"))
        {
            Some(p) => {
                let _ = write!(
                    o,
                    "{}{}",
                    p.text_without_topic(),
                    cite(prompt, &p.source_id)
                );
            }
            None => o.push_str(
                "I couldn't find that in our store policies. Ask me about shipping, returns, \
                 pre-orders, payment or accounts, or ask for a human agent.",
            ),
        },
        Intent::OrderStatus => compose_order(prompt, &mut o),
        Intent::ProductQuestion => compose_product_question(prompt, &mut o),
        Intent::ProductSearch => compose_search(prompt, &mut o),
        Intent::Recommendation => compose_recommendation(prompt, &mut o),
    }
    o
}

fn compose_order(prompt: &Prompt, o: &mut String) {
    for tool in &prompt.tools {
        match tool {
            ToolResult::OrderLookup {
                order_id,
                order: Some(order),
            } => {
                let _ = write!(
                    o,
                    "Order {} was placed on {} and is {}",
                    order.id,
                    order.placed_on,
                    order.state.as_str()
                );
                if let (Some(c), Some(t)) = (&order.carrier, &order.tracking) {
                    let _ = write!(o, " with {c} (tracking {t})");
                }
                o.push('.');
                if let Some(eta) = &order.eta {
                    let _ = write!(o, " Estimated delivery: {eta}.");
                }
                if order.state == OrderState::Cancelled {
                    o.push_str(" If you did not cancel it, ask me for a human agent.");
                }
                let items: Vec<String> = order
                    .lines
                    .iter()
                    .map(|l| format!("{} vol. {} x{}", l.title, l.volume, l.quantity))
                    .collect();
                let _ = write!(
                    o,
                    " Items: {}.{}",
                    items.join(", "),
                    cite(prompt, &format!("order:{order_id}"))
                );
                return;
            }
            ToolResult::OrderLookup {
                order_id,
                order: None,
            } => {
                let _ = write!(
                    o,
                    "I couldn't find order {order_id} on your account. Order numbers look like \
                     MA-123456 and are in your confirmation email; please check the number."
                );
                return;
            }
            ToolResult::OrderNumberMissing => {
                o.push_str(
                    "I can check that for you. What is your order number? It looks like MA-123456 \
                     and is in your confirmation email.",
                );
                return;
            }
            _ => {}
        }
    }
    o.push_str("The order service did not answer in time. Please try again in a moment.");
}

/// The answer about one volume ("one piece volume 3"), if the prompt has one.
fn compose_volume(prompt: &Prompt, o: &mut String) -> bool {
    let Some((t, number, volume)) = prompt.tools.iter().find_map(|t| match t {
        ToolResult::VolumeLookup {
            title,
            number,
            volume,
        } => Some((title, *number, volume)),
        _ => None,
    }) else {
        return false;
    };
    let source = cite(prompt, &format!("catalog:{}", t.id));
    match volume {
        Some(v) if v.stock == 0 => {
            let _ = write!(
                o,
                "{} vol. {} is currently out of stock ({} when available).{} Add it to your \
                 wish list to get a restock alert.",
                t.title,
                v.number,
                v.price(),
                source
            );
        }
        Some(v) => {
            let _ = write!(
                o,
                "Yes: {} vol. {} is in stock, {} copies, at {}.{}",
                t.title,
                v.number,
                v.stock,
                v.price(),
                source
            );
        }
        None => {
            let _ = write!(
                o,
                "{} has {} volumes, so there is no volume {}.{}",
                t.title, t.volumes, number, source
            );
        }
    }
    true
}

fn compose_product_question(prompt: &Prompt, o: &mut String) {
    if compose_volume(prompt, o) {
        return;
    }
    let title = prompt.tools.iter().find_map(|t| match t {
        ToolResult::TitleLookup { title: Some(t) } => Some(t),
        _ => None,
    });
    match title {
        Some(t) => {
            let _ = write!(
                o,
                "{} by {} is a {} series ({}) with {} volumes. Each volume costs {}, and we have {}. {}{}",
                t.title,
                t.author,
                t.demographic,
                t.genres.join(", "),
                t.volumes,
                t.price(),
                stock_phrase(t),
                t.synopsis,
                cite(prompt, &format!("catalog:{}", t.id))
            );
            if t.stock == 0 {
                o.push_str(" Add it to your wish list to get a restock alert.");
            }
        }
        None => {
            let close: Vec<String> = prompt
                .passages
                .iter()
                .filter(|p| p.source_id.starts_with("catalog:"))
                .take(3)
                .map(|p| format!("{}{}", p.title, cite(prompt, &p.source_id)))
                .collect();
            if close.is_empty() {
                o.push_str(
                    "I couldn't tell which title you mean. Could you give me its name or ISBN?",
                );
            } else {
                let _ = write!(
                    o,
                    "I couldn't tell which title you mean. Closest matches: {}.",
                    close.join(", ")
                );
            }
        }
    }
}

fn compose_search(prompt: &Prompt, o: &mut String) {
    if compose_volume(prompt, o) {
        return;
    }
    let mut titles: Vec<&Title> = Vec::new();
    for tool in &prompt.tools {
        if let ToolResult::CatalogSearch { titles: ts, .. } = tool {
            titles.extend(ts.iter());
        }
    }
    if titles.is_empty() {
        let passages: Vec<String> = prompt
            .passages
            .iter()
            .filter(|p| p.source_id.starts_with("catalog:"))
            .take(3)
            .map(|p| format!("- {}{}", p.title, cite(prompt, &p.source_id)))
            .collect();
        if passages.is_empty() {
            o.push_str("I couldn't find a match for that in our catalog. Try a title, an author or a genre.");
        } else {
            let _ = write!(
                o,
                "These catalog entries look related:\n{}",
                passages.join("\n")
            );
        }
        return;
    }
    o.push_str("Here is what I found in our catalog:");
    for t in titles.iter().take(5) {
        o.push('\n');
        o.push_str(&title_line(prompt, t));
    }
}

fn compose_recommendation(prompt: &Prompt, o: &mut String) {
    let rec = prompt.tools.iter().find_map(|t| match t {
        ToolResult::Recommendations { seed, titles } => Some((seed, titles)),
        _ => None,
    });
    let Some((seed, titles)) = rec.filter(|(_, t)| !t.is_empty()) else {
        o.push_str("Tell me a series you enjoyed or a genre you like, and I'll suggest something from our catalog.");
        return;
    };
    match seed {
        Some(s) => {
            let _ = write!(o, "If you enjoyed {}, you might like:", s.title);
        }
        None => o.push_str("You might like:"),
    }
    for t in titles.iter().take(3) {
        let _ = write!(
            o,
            "\n- {} by {} ({}), {}: {}{}",
            t.title,
            t.author,
            t.genres.join(", "),
            t.price(),
            t.synopsis,
            cite(prompt, &format!("catalog:{}", t.id))
        );
    }
}

trait PassageText {
    fn text_without_topic(&self) -> &str;
}

impl PassageText for crate::domain::Passage {
    /// FAQ passages are indexed as "answer (topic)"; the answer alone reads better.
    fn text_without_topic(&self) -> &str {
        match self.text.rfind(" (") {
            Some(i) if self.text.ends_with(')') => &self.text[..i],
            _ => &self.text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_words_round_trips() {
        let text = "Here is  what\nI found: - One Piece [1]";
        let words = split_words(text);
        assert_eq!(words.concat(), text);
        assert_eq!(words[0], "Here ");
        assert_eq!(words.len(), 9);
    }
}
