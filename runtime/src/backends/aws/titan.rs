//! [`TitanEmbedder`]: the AWS-mode [`Embedder`], Amazon Titan Text Embeddings V2
//! (`amazon.titan-embed-text-v2:0`) through Bedrock `InvokeModel`, one call per text
//! (the model takes one `inputText` a request).
//!
//! Request and response documents as the model parameters page gives them
//! (<https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html>):
//! request `{"inputText": string, "dimensions": 1024 | 512 | 256, "normalize": bool}`
//! (dimensions default 1024, normalize default true), response
//! `{"embedding": [float…], "inputTextTokenCount": int, …}`. The vector is asked for
//! normalised and normalised again here, so the dot product is a cosine whatever the
//! service did. Its dimensions differ from the local model's (384): an index records the
//! model it was built with ([`Embedder::model_id`]).

use super::describe;
use crate::backends::embed::{normalize_l2, Embedder};
use crate::backends::BackendError;
use async_trait::async_trait;
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::Client;
use serde_json::{json, Value};

pub const TITAN_V2: &str = "amazon.titan-embed-text-v2:0";
/// The output sizes the model accepts (model parameters page above).
pub const TITAN_V2_DIMENSIONS: [usize; 3] = [1024, 512, 256];

#[derive(Debug, thiserror::Error)]
pub enum TitanError {
    #[error("Titan embeddings: {0} dimensions is not one of 1024, 512, 256")]
    Dimensions(usize),
}

#[derive(Debug, Clone)]
pub struct TitanEmbedder {
    client: Client,
    model_id: String,
    dimensions: usize,
}

impl TitanEmbedder {
    pub fn new(
        config: &aws_config::SdkConfig,
        model_id: &str,
        dimensions: usize,
    ) -> Result<TitanEmbedder, TitanError> {
        if !TITAN_V2_DIMENSIONS.contains(&dimensions) {
            return Err(TitanError::Dimensions(dimensions));
        }
        Ok(TitanEmbedder {
            client: Client::new(config),
            model_id: model_id.to_string(),
            dimensions,
        })
    }

    /// The InvokeModel body for one text.
    pub fn request(&self, text: &str) -> Value {
        json!({ "inputText": text, "dimensions": self.dimensions, "normalize": true })
    }

    async fn embed_one(&self, text: &str) -> Result<Vec<f32>, BackendError> {
        let body = self.request(text).to_string().into_bytes();
        let out = self
            .client
            .invoke_model()
            .model_id(&self.model_id)
            .content_type("application/json")
            .accept("application/json")
            .body(Blob::new(body))
            .send()
            .await
            .map_err(|e| {
                BackendError::Unavailable(format!(
                    "Bedrock InvokeModel {}: {}",
                    self.model_id,
                    describe(&e)
                ))
            })?;
        let v: Value = serde_json::from_slice(out.body().as_ref())
            .map_err(|e| BackendError::Invalid(format!("Titan response: {e}")))?;
        let mut vector: Vec<f32> = v["embedding"]
            .as_array()
            .ok_or_else(|| BackendError::Invalid("Titan response without embedding".into()))?
            .iter()
            .map(|x| x.as_f64().map(|f| f as f32))
            .collect::<Option<_>>()
            .ok_or_else(|| BackendError::Invalid("Titan embedding with a non-number".into()))?;
        if vector.len() != self.dimensions {
            return Err(BackendError::Invalid(format!(
                "Titan returned {} dimensions, asked for {}",
                vector.len(),
                self.dimensions
            )));
        }
        normalize_l2(&mut vector);
        Ok(vector)
    }
}

#[async_trait]
impl Embedder for TitanEmbedder {
    fn model_id(&self) -> String {
        format!("{}/{}", self.model_id, self.dimensions)
    }
    fn dimensions(&self) -> usize {
        self.dimensions
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, BackendError> {
        let mut out = Vec::with_capacity(texts.len());
        for t in texts {
            out.push(self.embed_one(t).await?);
        }
        Ok(out)
    }
}
