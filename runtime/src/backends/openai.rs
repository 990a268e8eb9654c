//! [`OpenAiCompatible`]: an [`Llm`] that streams from any server speaking the OpenAI chat
//! completions API (`POST {base}/chat/completions` with `stream: true`, server-sent
//! events), e.g. llama.cpp's `llama-server` or vLLM. Selected with `MANGA_LLM=openai`.
//!
//! The prompt carries the same grounded context the extractive responder uses
//! ([`super::extractive`]), numbered so the model can cite `[n]`. Deadlines are enforced
//! by the pipeline ([`crate::pipeline::respond`]), not here: dropping the stream cancels
//! the request. The reader of the event stream also ends by itself, so it never
//! outlives its use: when the pipeline drops the stream, and when the server sends
//! nothing for [`SSE_READ_TIMEOUT`] (a hung server would otherwise hold the task and
//! its connection for ever). `finish_reason` `length` ends the stream as
//! [`CutShort::Length`], `content_filter` as [`CutShort::Filtered`].

use super::{BackendError, CutShort, Llm, TokenStream};
use crate::domain::{Prompt, ToolResult};
use async_trait::async_trait;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
pub struct OpenAiCompatible {
    client: reqwest::Client,
    base_url: String,
    model: String,
    api_key: Option<String>,
    max_tokens: u32,
}

impl OpenAiCompatible {
    pub fn new(
        base_url: &str,
        model: &str,
        api_key: Option<String>,
        max_tokens: u32,
    ) -> Result<Self, BackendError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| BackendError::Unavailable(e.to_string()))?;
        Ok(OpenAiCompatible {
            client,
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            api_key,
            max_tokens,
        })
    }

    fn request(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.api_key {
            Some(k) => builder.bearer_auth(k),
            None => builder,
        }
    }
}

/// The chat messages for a prompt: instructions and numbered context, then the history,
/// then the question.
pub fn messages(prompt: &Prompt) -> Value {
    let mut msgs = vec![json!({"role": "system", "content": system_prompt(prompt)})];
    for turn in &prompt.history {
        msgs.push(json!({"role": "user", "content": turn.user}));
        msgs.push(json!({"role": "assistant", "content": turn.assistant}));
    }
    msgs.push(json!({"role": "user", "content": prompt.user_text}));
    Value::Array(msgs)
}

/// The system instructions with the numbered context; shared with the Bedrock backend
/// ([`super::aws::bedrock`]) so both models see the same grounding.
pub fn system_prompt(prompt: &Prompt) -> String {
    let mut system = String::from(
        "You are MangaAssist, the shopping assistant of an online manga store. Answer only from \
         the numbered context below; cite it as [n]. If the context does not answer the \
         question, say so and suggest asking for a human agent. Never invent prices, stock or \
         order details. Keep answers under 120 words.\n\nContext:\n",
    );
    for (i, s) in prompt.sources.iter().enumerate() {
        let detail = source_detail(prompt, &s.id).unwrap_or_default();
        let _ = writeln!(system, "[{}] {}: {}", i + 1, s.title, detail);
    }
    for t in &prompt.tools {
        if let ToolResult::OrderNumberMissing = t {
            system.push_str("The customer did not give an order number (format MA-123456).\n");
        }
        if let ToolResult::OrderLookup {
            order_id,
            order: None,
        } = t
        {
            let _ = writeln!(
                system,
                "No order {order_id} exists on this customer's account."
            );
        }
    }
    system
}

fn source_detail(prompt: &Prompt, id: &str) -> Option<String> {
    if let Some(p) = prompt.passages.iter().find(|p| p.source_id == id) {
        return Some(p.text.clone());
    }
    for tool in &prompt.tools {
        match tool {
            ToolResult::OrderLookup { order: Some(o), .. } if id == format!("order:{}", o.id) => {
                return serde_json::to_string(o).ok();
            }
            ToolResult::CatalogSearch { titles, .. }
            | ToolResult::Recommendations { titles, .. } => {
                if let Some(t) = titles.iter().find(|t| id == format!("catalog:{}", t.id)) {
                    return serde_json::to_string(t).ok();
                }
            }
            ToolResult::TitleLookup { title: Some(t) } if id == format!("catalog:{}", t.id) => {
                return serde_json::to_string(t).ok();
            }
            ToolResult::VolumeLookup {
                title,
                number,
                volume,
            } if id == format!("catalog:{}", title.id) => {
                return serde_json::to_string(&serde_json::json!({
                    "series": title,
                    "asked_volume": number,
                    "volume": volume,
                }))
                .ok();
            }
            _ => {}
        }
    }
    None
}

/// Longest silence between two reads of the event stream before the reader gives up
/// (far beyond the pipeline's inter-token deadline, which fires first in a message).
pub const SSE_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// One SSE `data:` payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseData {
    /// `[DONE]`.
    Done,
    /// A chunk: its text (empty for role announcements and plain finish reasons), and
    /// whether its `finish_reason` ended the answer early.
    Chunk { text: String, cut: Option<CutShort> },
}

pub fn parse_sse_data(data: &str) -> Result<SseData, BackendError> {
    if data == "[DONE]" {
        return Ok(SseData::Done);
    }
    let v: Value = serde_json::from_str(data).map_err(|e| BackendError::Invalid(e.to_string()))?;
    if let Some(err) = v.get("error") {
        return Err(BackendError::Unavailable(err.to_string()));
    }
    let choice = &v["choices"][0];
    let cut = match choice["finish_reason"].as_str() {
        Some("length") => Some(CutShort::Length),
        Some("content_filter") => Some(CutShort::Filtered),
        _ => None,
    };
    Ok(SseData::Chunk {
        text: choice["delta"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        cut,
    })
}

#[async_trait]
impl Llm for OpenAiCompatible {
    fn name(&self) -> &'static str {
        "openai"
    }

    async fn stream(&self, prompt: &Prompt) -> Result<TokenStream, BackendError> {
        let body = json!({
            "model": self.model,
            "messages": messages(prompt),
            "stream": true,
            "max_tokens": self.max_tokens,
            "temperature": 0.2,
        });
        let resp = self
            .request(
                self.client
                    .post(format!("{}/chat/completions", self.base_url)),
            )
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| BackendError::Unavailable(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(BackendError::Unavailable(format!("HTTP {}", resp.status())));
        }
        // A small task turns the byte stream into tokens; when the pipeline drops the
        // returned stream, the next send fails and the task drops the HTTP response.
        let (tx, mut rx) = mpsc::channel::<Result<String, BackendError>>(32);
        let mut bytes = resp.bytes_stream();
        tokio::spawn(async move {
            let mut buf: Vec<u8> = Vec::new();
            loop {
                let next = tokio::select! {
                    // The pipeline dropped the stream: stop reading, drop the response.
                    _ = tx.closed() => return,
                    next = tokio::time::timeout(SSE_READ_TIMEOUT, bytes.next()) => next,
                };
                let chunk = match next {
                    Ok(Some(Ok(c))) => c,
                    Ok(None) => return,
                    Ok(Some(Err(e))) => {
                        let _ = tx.send(Err(BackendError::Unavailable(e.to_string()))).await;
                        return;
                    }
                    Err(_) => {
                        let silent = format!(
                            "no data for {} s; the stream is abandoned",
                            SSE_READ_TIMEOUT.as_secs()
                        );
                        let _ = tx.send(Err(BackendError::Unavailable(silent))).await;
                        return;
                    }
                };
                buf.extend_from_slice(&chunk);
                while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=nl).collect();
                    let line = String::from_utf8_lossy(&line);
                    let Some(data) = line.trim_end().strip_prefix("data:") else {
                        continue;
                    };
                    match parse_sse_data(data.trim()) {
                        Ok(SseData::Done) => return,
                        Ok(SseData::Chunk { text, cut }) => {
                            if !text.is_empty() && tx.send(Ok(text)).await.is_err() {
                                return;
                            }
                            if let Some(c) = cut {
                                let _ = tx.send(Err(BackendError::Cut(c))).await;
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    }
                }
            }
        });
        Ok(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed())
    }

    async fn ready(&self) -> Result<(), BackendError> {
        let resp = self
            .request(self.client.get(format!("{}/models", self.base_url)))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map_err(|e| BackendError::Unavailable(e.to_string()))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(BackendError::Unavailable(format!(
                "GET /models: HTTP {}",
                resp.status()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sse_chunks() {
        let chunk = r#"{"choices":[{"delta":{"content":"Hello"},"index":0}]}"#;
        let text = |t: &str| SseData::Chunk {
            text: t.into(),
            cut: None,
        };
        assert_eq!(parse_sse_data(chunk).expect("parse"), text("Hello"));
        assert_eq!(
            parse_sse_data(r#"{"choices":[{"delta":{"role":"assistant"}}]}"#).expect("parse"),
            text("")
        );
        assert_eq!(
            parse_sse_data(r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#).expect("parse"),
            text("")
        );
        assert_eq!(
            parse_sse_data(r#"{"choices":[{"delta":{"content":"x"},"finish_reason":"length"}]}"#)
                .expect("parse"),
            SseData::Chunk {
                text: "x".into(),
                cut: Some(CutShort::Length)
            }
        );
        assert_eq!(
            parse_sse_data(r#"{"choices":[{"delta":{},"finish_reason":"content_filter"}]}"#)
                .expect("parse"),
            SseData::Chunk {
                text: String::new(),
                cut: Some(CutShort::Filtered)
            }
        );
        assert_eq!(parse_sse_data("[DONE]").expect("parse"), SseData::Done);
        assert!(parse_sse_data("not json").is_err());
        assert!(parse_sse_data(r#"{"error":{"message":"overloaded"}}"#).is_err());
    }
}
