//! [`OpenAiCompatible`]: an [`Llm`] that streams from any server speaking the OpenAI chat
//! completions API (`POST {base}/chat/completions` with `stream: true`, server-sent
//! events), e.g. llama.cpp's `llama-server` or vLLM. Selected with `MANGA_LLM=openai`.
//!
//! The prompt carries the same grounded context the extractive responder uses
//! ([`super::extractive`]), numbered so the model can cite `[n]`. Deadlines are enforced
//! by the pipeline ([`crate::pipeline::respond`]), not here: dropping the stream cancels
//! the request.

use super::{BackendError, Llm, TokenStream};
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
            _ => {}
        }
    }
    None
}

/// Parses one SSE `data:` payload; `Ok(None)` for `[DONE]`, `Ok(Some(""))` for chunks
/// without content (role announcements, finish reasons).
pub fn parse_sse_data(data: &str) -> Result<Option<String>, BackendError> {
    if data == "[DONE]" {
        return Ok(None);
    }
    let v: Value = serde_json::from_str(data).map_err(|e| BackendError::Invalid(e.to_string()))?;
    if let Some(err) = v.get("error") {
        return Err(BackendError::Unavailable(err.to_string()));
    }
    Ok(Some(
        v["choices"][0]["delta"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    ))
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
            while let Some(chunk) = bytes.next().await {
                let chunk = match chunk {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Err(BackendError::Unavailable(e.to_string()))).await;
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
                        Ok(None) => return,
                        Ok(Some(t)) if t.is_empty() => {}
                        Ok(Some(t)) => {
                            if tx.send(Ok(t)).await.is_err() {
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
        assert_eq!(
            parse_sse_data(chunk).expect("parse"),
            Some("Hello".to_string())
        );
        assert_eq!(
            parse_sse_data(r#"{"choices":[{"delta":{"role":"assistant"}}]}"#).expect("parse"),
            Some(String::new())
        );
        assert_eq!(parse_sse_data("[DONE]").expect("parse"), None);
        assert!(parse_sse_data("not json").is_err());
        assert!(parse_sse_data(r#"{"error":{"message":"overloaded"}}"#).is_err());
    }
}
