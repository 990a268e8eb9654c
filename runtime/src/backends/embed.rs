//! Sentence embeddings behind one trait, [`Embedder`], for the vector half of retrieval
//! ([`super::hybrid`]) and for `manga-runtime index` .
//!
//! Implementations: [`super::minilm::MiniLm`] (all-MiniLM-L6-v2 in process on CPU, 384
//! dimensions, the embedded default) and [`super::aws::titan::TitanEmbedder`] (Amazon
//! Titan Text Embeddings V2 through Bedrock `InvokeModel`, 1024/512/256 dimensions, AWS
//! mode). Vectors are L2-normalised, so a dot product is their cosine similarity.

use super::BackendError;
use async_trait::async_trait;
use std::fmt::Debug;

#[async_trait]
pub trait Embedder: Send + Sync + Debug {
    /// A stable name of the model and its settings (`all-MiniLM-L6-v2`,
    /// `amazon.titan-embed-text-v2:0/1024`): an index built with one model is never
    /// queried with another (the index records it).
    fn model_id(&self) -> String;
    /// Length of every vector.
    fn dimensions(&self) -> usize;
    /// One unit-length vector per text, in order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, BackendError>;
}

/// Scales a vector to unit length (a zero vector stays zero).
pub fn normalize_l2(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x /= norm;
        }
    }
}

/// Dot product (the cosine similarity of unit vectors).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
