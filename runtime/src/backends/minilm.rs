//! [`MiniLmEmbedder`]: the embedded [`Embedder`], all-MiniLM-L6-v2 through the
//! `manga-minilm` crate (tokenizer and BERT forward pass, optimised in debug builds too),
//! and where its weights are found ([`default_model_dir`]).

use super::embed::Embedder;
use super::BackendError;
use async_trait::async_trait;
pub use manga_minilm::{shared, MiniLm, ModelError, HIDDEN, MAX_TOKENS, MODEL_ID};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// [`MiniLm`] as an [`Embedder`]: inference runs on the blocking pool, so a message's
/// embedding never stalls the async workers.
#[derive(Debug, Clone)]
pub struct MiniLmEmbedder(pub Arc<MiniLm>);

#[async_trait]
impl Embedder for MiniLmEmbedder {
    fn model_id(&self) -> String {
        MODEL_ID.to_string()
    }
    fn dimensions(&self) -> usize {
        HIDDEN
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, BackendError> {
        let model = Arc::clone(&self.0);
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || texts.iter().map(|t| model.embed_one(t)).collect())
            .await
            .map_err(|e| BackendError::Unavailable(format!("embedding task: {e}")))
    }
}

/// Where the model is looked for: `MANGA_EMBED_MODEL_DIR`, else
/// `<workspace>/.venv/models/all-MiniLM-L6-v2` (where `scripts/install-test-tools` puts
/// it) when that exists.
pub fn default_model_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("MANGA_EMBED_MODEL_DIR") {
        return Some(PathBuf::from(d));
    }
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/models/all-MiniLM-L6-v2");
    d.join("model.safetensors").exists().then_some(d)
}
