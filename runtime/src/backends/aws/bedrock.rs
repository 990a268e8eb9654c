//! [`BedrockLlm`]: response generation (PO-01) with Amazon Bedrock's `ConverseStream`
//! (model `MANGA_BEDROCK_MODEL_ID`, or the prompt's tier's model from
//! `MANGA_BEDROCK_TIER_MODELS`: the environment file's per-tier model choice). The grounding is the same as the OpenAI-compatible
//! backend's ([`crate::backends::openai::system_prompt`]): numbered context the model
//! must cite as `[n]`, then the conversation history and the question.
//!
//! Each `contentBlockDelta` text event becomes one token of the [`TokenStream`];
//! `messageStop` ends it, by its `stopReason` (values from the API reference,
//! `MessageStopEvent`): `end_turn`, `stop_sequence` (and `tool_use`, which cannot happen
//! without tools) end the answer; `max_tokens` and `model_context_window_exceeded` end
//! it as [`CutShort::Length`] (`done` says `answer_truncated`); `guardrail_intervened`
//! and `content_filtered` as [`CutShort::Filtered`] (`guardrail_redacted`);
//! `malformed_model_output` and `malformed_tool_use` are failures. An exception event
//! mid-stream (throttling, model stream error) ends it with an error, which the pipeline
//! turns into `llm_error` (or the fallback answer, before the first token). First-token and inter-token deadlines are the
//! pipeline's; dropping the stream drops the HTTP response.

use super::describe;
use crate::backends::openai::system_prompt;
use crate::backends::{BackendError, CutShort, Llm, TokenStream};
use crate::domain::{Prompt, Tier};
use async_trait::async_trait;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ContentBlockDelta, ConversationRole, ConverseStreamOutput,
    InferenceConfiguration, Message, StopReason, SystemContentBlock,
};
use aws_sdk_bedrockruntime::Client;
use futures_util::StreamExt;

#[derive(Debug, thiserror::Error)]
pub enum BedrockError {
    #[error("Bedrock request for {model}: {message}")]
    Request { model: String, message: String },
    #[error("Bedrock ConverseStream {model}: {message}")]
    Call { model: String, message: String },
    #[error("Bedrock stream from {model} failed: {message}")]
    Stream { model: String, message: String },
}

impl From<BedrockError> for BackendError {
    fn from(e: BedrockError) -> Self {
        match e {
            BedrockError::Request { .. } => BackendError::Invalid(e.to_string()),
            BedrockError::Call { .. } | BedrockError::Stream { .. } => {
                BackendError::Unavailable(e.to_string())
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct BedrockLlm {
    client: Client,
    model_id: String,
    /// Tiers answered by another model than `model_id`.
    tier_models: Vec<(Tier, String)>,
    max_tokens: u32,
}

/// Parses `tier=model` pairs, comma-separated (`MANGA_BEDROCK_TIER_MODELS`); empty
/// means none. Only LLM tiers may be named, each once.
pub fn parse_tier_models(s: &str) -> Result<Vec<(Tier, String)>, String> {
    let mut out: Vec<(Tier, String)> = Vec::new();
    for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (tier, model) = pair
            .split_once('=')
            .ok_or_else(|| format!("`{pair}` is not tier=model"))?;
        let tier = Tier::ALL
            .into_iter()
            .filter(|t| *t != Tier::Template)
            .find(|t| t.as_str() == tier.trim())
            .ok_or_else(|| {
                format!(
                    "`{}` is not an LLM tier (simple_llm, standard_llm, complex)",
                    tier.trim()
                )
            })?;
        let model = model.trim();
        if model.is_empty() {
            return Err(format!("`{pair}` names no model"));
        }
        if out.iter().any(|(t, _)| *t == tier) {
            return Err(format!("tier {} is given twice", tier.as_str()));
        }
        out.push((tier, model.to_owned()));
    }
    Ok(out)
}

/// What one stream event means for the token stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Token(String),
    /// Bookkeeping events (message/block start and stop, usage metadata, reasoning).
    Skip,
    /// `messageStop`: the answer is complete.
    End,
    /// `messageStop` with a reason that ended the answer early.
    Cut(CutShort),
    /// `messageStop` saying the model's output was unusable.
    Fail(String),
}

/// Maps one `ConverseStream` event to a [`Step`].
pub fn step(event: &ConverseStreamOutput) -> Step {
    match event {
        ConverseStreamOutput::ContentBlockDelta(e) => match e.delta() {
            Some(ContentBlockDelta::Text(t)) if !t.is_empty() => Step::Token(t.clone()),
            _ => Step::Skip,
        },
        ConverseStreamOutput::MessageStop(e) => match e.stop_reason() {
            StopReason::EndTurn | StopReason::StopSequence | StopReason::ToolUse => Step::End,
            StopReason::MaxTokens | StopReason::ModelContextWindowExceeded => {
                Step::Cut(CutShort::Length)
            }
            StopReason::GuardrailIntervened | StopReason::ContentFiltered => {
                Step::Cut(CutShort::Filtered)
            }
            StopReason::MalformedModelOutput | StopReason::MalformedToolUse => {
                Step::Fail(format!("stopReason {}", e.stop_reason().as_str()))
            }
            // A reason newer than this SDK: what was streamed is kept.
            other => {
                crate::warn_limited!(stop_reason = other.as_str(), "unknown Bedrock stopReason");
                Step::End
            }
        },
        _ => Step::Skip,
    }
}

impl BedrockLlm {
    pub fn new(config: &aws_config::SdkConfig, model_id: &str, max_tokens: u32) -> Self {
        BedrockLlm {
            client: Client::new(config),
            model_id: model_id.to_string(),
            tier_models: Vec::new(),
            max_tokens,
        }
    }

    /// Routes the tiers `spec` names (`tier=model,…`, see [`parse_tier_models`]) to
    /// their models; the others keep the default.
    pub fn with_tier_models(mut self, spec: &str) -> Result<Self, String> {
        self.tier_models = parse_tier_models(spec)?;
        Ok(self)
    }

    /// The model a tier's answers come from.
    pub fn model_for(&self, tier: Tier) -> &str {
        self.tier_models
            .iter()
            .find(|(t, _)| *t == tier)
            .map_or(self.model_id.as_str(), |(_, m)| m.as_str())
    }

    /// History and question as Converse messages (user/assistant alternating, user first
    /// and last, as the API requires; turns without an answer are left out).
    pub fn conversation(prompt: &Prompt) -> Result<Vec<Message>, String> {
        let text = |role: ConversationRole, t: &str| {
            Message::builder()
                .role(role)
                .content(ContentBlock::Text(t.to_string()))
                .build()
                .map_err(|e| e.to_string())
        };
        let mut msgs = Vec::with_capacity(prompt.history.len() * 2 + 1);
        for turn in &prompt.history {
            if turn.user.trim().is_empty() || turn.assistant.trim().is_empty() {
                continue;
            }
            msgs.push(text(ConversationRole::User, &turn.user)?);
            msgs.push(text(ConversationRole::Assistant, &turn.assistant)?);
        }
        msgs.push(text(ConversationRole::User, &prompt.user_text)?);
        Ok(msgs)
    }
}

#[async_trait]
impl Llm for BedrockLlm {
    fn name(&self) -> &'static str {
        "bedrock"
    }

    async fn stream(&self, prompt: &Prompt) -> Result<TokenStream, BackendError> {
        let model = self.model_for(prompt.tier).to_owned();
        let messages = Self::conversation(prompt).map_err(|e| BedrockError::Request {
            model: model.clone(),
            message: e,
        })?;
        let max_tokens = i32::try_from(self.max_tokens).unwrap_or(i32::MAX);
        let out = self
            .client
            .converse_stream()
            .model_id(&model)
            .system(SystemContentBlock::Text(system_prompt(prompt)))
            .set_messages(Some(messages))
            .inference_config(
                InferenceConfiguration::builder()
                    .max_tokens(max_tokens)
                    .temperature(0.2)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| BedrockError::Call {
                model: model.clone(),
                message: describe(&e),
            })?;
        // State: the receiver while the stream is open, `None` after the end or an error.
        let tokens = futures_util::stream::unfold(Some(out.stream), move |rx| {
            let model = model.clone();
            async move {
                let mut rx = rx?;
                loop {
                    match rx.recv().await {
                        Ok(Some(event)) => match step(&event) {
                            Step::Token(t) => return Some((Ok(t), Some(rx))),
                            Step::Skip => {}
                            Step::End => return None,
                            Step::Cut(c) => return Some((Err(BackendError::Cut(c)), None)),
                            Step::Fail(message) => {
                                let err = BedrockError::Stream { model, message };
                                return Some((Err(err.into()), None));
                            }
                        },
                        Ok(None) => return None,
                        Err(e) => {
                            let err = BedrockError::Stream {
                                model,
                                message: describe(&e),
                            };
                            return Some((Err(err.into()), None));
                        }
                    }
                }
            }
        });
        Ok(tokens.boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Intent, Tier, Turn};
    use aws_sdk_bedrockruntime::types::{
        ContentBlockDeltaEvent, ConverseStreamMetadataEvent, MessageStartEvent, MessageStopEvent,
        StopReason,
    };

    fn delta(text: &str) -> ConverseStreamOutput {
        ConverseStreamOutput::ContentBlockDelta(
            ContentBlockDeltaEvent::builder()
                .content_block_index(0)
                .delta(ContentBlockDelta::Text(text.into()))
                .build()
                .expect("delta event"),
        )
    }

    #[test]
    fn text_deltas_are_tokens_and_message_stop_ends() {
        assert_eq!(step(&delta("Hello")), Step::Token("Hello".into()));
        assert_eq!(step(&delta("")), Step::Skip);
        let start = ConverseStreamOutput::MessageStart(
            MessageStartEvent::builder()
                .role(ConversationRole::Assistant)
                .build()
                .expect("start"),
        );
        assert_eq!(step(&start), Step::Skip);
        let meta = ConverseStreamOutput::Metadata(ConverseStreamMetadataEvent::builder().build());
        assert_eq!(step(&meta), Step::Skip);
        let stop = ConverseStreamOutput::MessageStop(
            MessageStopEvent::builder()
                .stop_reason(StopReason::EndTurn)
                .build()
                .expect("stop"),
        );
        assert_eq!(step(&stop), Step::End);
        let stop = |r: StopReason| {
            step(&ConverseStreamOutput::MessageStop(
                MessageStopEvent::builder()
                    .stop_reason(r)
                    .build()
                    .expect("stop"),
            ))
        };
        assert_eq!(stop(StopReason::StopSequence), Step::End);
        assert_eq!(stop(StopReason::MaxTokens), Step::Cut(CutShort::Length));
        assert_eq!(
            stop(StopReason::ModelContextWindowExceeded),
            Step::Cut(CutShort::Length)
        );
        assert_eq!(
            stop(StopReason::GuardrailIntervened),
            Step::Cut(CutShort::Filtered)
        );
        assert_eq!(
            stop(StopReason::ContentFiltered),
            Step::Cut(CutShort::Filtered)
        );
        assert!(
            matches!(stop(StopReason::MalformedModelOutput), Step::Fail(m) if m.contains("malformed_model_output"))
        );
    }

    #[test]
    fn conversation_alternates_and_ends_with_the_question() {
        let turn = |u: &str, a: &str| Turn {
            id: format!("t-{u}"),
            at_us: 0,
            user: u.into(),
            assistant: a.into(),
            intent: Intent::ProductSearch,
            title_ids: vec![],
        };
        let prompt = Prompt {
            intent: Intent::Recommendation,
            tier: Tier::StandardLlm,
            user_text: "more like that".into(),
            history: vec![turn("one piece?", "Yes [1]."), turn("hmm", "")],
            tools: vec![],
            passages: vec![],
            sources: vec![],
        };
        let msgs = BedrockLlm::conversation(&prompt).expect("messages");
        let roles: Vec<&ConversationRole> = msgs.iter().map(Message::role).collect();
        assert_eq!(
            roles,
            [
                &ConversationRole::User,
                &ConversationRole::Assistant,
                &ConversationRole::User
            ]
        );
        assert_eq!(
            msgs[2].content(),
            [ContentBlock::Text("more like that".into())]
        );
    }
}
