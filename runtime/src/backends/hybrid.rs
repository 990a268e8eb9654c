//! The embedded default [`Retriever`]: BM25 ([`super::bm25`]) and exact k-NN over
//! in-memory embeddings ([`super::embed`]) of the same documents ([`super::corpus`]),
//! fused by reciprocal rank fusion, with the question's [`Filters`] applied to both
//! lists before fusion. Built without an embedder it is BM25 alone.
//!
//! Fusion: RRF (Cormack et al., 2009), `score(d) = Σ 1 / (RRF_K + rank)` over the two
//! ranked lists (rank from 1), each cut at [`CANDIDATES`]. Ranks rather than scores,
//! because BM25 scores are unbounded and vary with the query while cosine similarities
//! sit in a narrow band: no normalisation to tune. Measured against BM25 and vectors
//! alone by `tests/it/quality.rs` (figures in runtime/README.md).
//!
//! Document embeddings are computed once per corpus and model and cached on disk
//! ([`EmbeddingCache`]), so start-up and the test suite embed only what changed.

use super::bm25::Bm25Retriever;
use super::corpus::IndexDoc;
use super::embed::{dot, Embedder};
use super::filters::Filters;
use super::{BackendError, Retriever};
use crate::domain::{Corpus, Passage};
use async_trait::async_trait;
use std::path::PathBuf;
use std::sync::Arc;

/// RRF's constant: 60 as in the paper; ranks past the first few weigh little.
pub const RRF_K: f32 = 60.0;
/// How deep each list goes into the fusion.
pub const CANDIDATES: usize = 50;

/// Which ranking answers (the quality test compares all three).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranking {
    Bm25,
    Vector,
    Hybrid,
}

impl Ranking {
    pub fn as_str(self) -> &'static str {
        match self {
            Ranking::Bm25 => "bm25",
            Ranking::Vector => "vector",
            Ranking::Hybrid => "hybrid",
        }
    }
}

/// Document vectors, aligned with [`Bm25Retriever::docs`].
#[derive(Debug, Clone)]
struct Vectors {
    embedder: Arc<dyn Embedder>,
    docs: Vec<Vec<f32>>,
}

#[derive(Debug)]
pub struct HybridRetriever {
    bm25: Bm25Retriever,
    vectors: Option<Vectors>,
}

/// Embeddings of a document set on disk: one file per (model, texts) digest holding the
/// vectors as little-endian f32, so a changed catalog or model never reads stale ones.
#[derive(Debug, Clone)]
pub struct EmbeddingCache {
    pub dir: PathBuf,
}

/// FNV-1a, 64 bits: a cache key, not a security boundary.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

impl EmbeddingCache {
    fn path(&self, model: &str, texts: &[String]) -> PathBuf {
        let mut parts: Vec<&str> = vec![model];
        parts.extend(texts.iter().map(String::as_str));
        self.dir
            .join(format!("embeddings-{:016x}.f32", fnv1a(&parts)))
    }

    fn load(&self, model: &str, texts: &[String], dims: usize) -> Option<Vec<Vec<f32>>> {
        let bytes = std::fs::read(self.path(model, texts)).ok()?;
        if bytes.len() != texts.len() * dims * 4 {
            return None;
        }
        let floats: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Some(floats.chunks_exact(dims).map(<[f32]>::to_vec).collect())
    }

    fn store(&self, model: &str, texts: &[String], vectors: &[Vec<f32>]) {
        let path = self.path(model, texts);
        let bytes: Vec<u8> = vectors
            .iter()
            .flatten()
            .flat_map(|f| f.to_le_bytes())
            .collect();
        // Written aside and renamed, so a concurrent reader never sees half a file.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let done = std::fs::create_dir_all(&self.dir)
            .and_then(|()| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = done {
            tracing::warn!(path = %path.display(), error = %e, "cannot cache the document embeddings");
        }
    }
}

/// The embeddings of `texts`, from the cache when it has them.
pub async fn embed_cached(
    embedder: &dyn Embedder,
    texts: &[String],
    cache: Option<&EmbeddingCache>,
) -> Result<Vec<Vec<f32>>, BackendError> {
    let model = embedder.model_id();
    if let Some(v) = cache.and_then(|c| c.load(&model, texts, embedder.dimensions())) {
        return Ok(v);
    }
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(16) {
        out.extend(embedder.embed(chunk).await?);
    }
    if out.len() != texts.len() || out.iter().any(|v| v.len() != embedder.dimensions()) {
        return Err(BackendError::Invalid(format!(
            "{model} returned {} vectors for {} texts",
            out.len(),
            texts.len()
        )));
    }
    if let Some(c) = cache {
        c.store(&model, texts, &out);
    }
    Ok(out)
}

impl HybridRetriever {
    /// BM25 alone.
    pub fn bm25_only(bm25: Bm25Retriever) -> HybridRetriever {
        HybridRetriever {
            bm25,
            vectors: None,
        }
    }

    /// BM25 and the vectors of the same documents.
    pub async fn build(
        bm25: Bm25Retriever,
        embedder: Arc<dyn Embedder>,
        cache: Option<&EmbeddingCache>,
    ) -> Result<HybridRetriever, BackendError> {
        let texts: Vec<String> = bm25.docs().iter().map(IndexDoc::embedding_text).collect();
        let docs = embed_cached(&*embedder, &texts, cache).await?;
        Ok(HybridRetriever {
            bm25,
            vectors: Some(Vectors { embedder, docs }),
        })
    }

    pub fn has_vectors(&self) -> bool {
        self.vectors.is_some()
    }

    pub fn docs(&self) -> &[IndexDoc] {
        self.bm25.docs()
    }

    /// The query's embedding (`None` without vectors).
    pub async fn embed_query(&self, query: &str) -> Result<Option<Vec<f32>>, BackendError> {
        let Some(v) = &self.vectors else {
            return Ok(None);
        };
        let q = v
            .embedder
            .embed(&[query.to_string()])
            .await?
            .pop()
            .ok_or_else(|| BackendError::Invalid("no query embedding".into()))?;
        Ok(Some(q))
    }

    /// Exact k-NN: cosine similarity to every admitted document.
    fn vector_rank(
        &self,
        docs_vectors: &[Vec<f32>],
        q: &[f32],
        k: usize,
        corpus: Corpus,
        filters: &Filters,
    ) -> Vec<(usize, f32)> {
        let docs = self.bm25.docs();
        let mut scored: Vec<(usize, f32)> = docs_vectors
            .iter()
            .enumerate()
            .filter(|(i, _)| docs[*i].in_corpus(corpus) && docs[*i].admitted_by(filters))
            .map(|(i, d)| (i, dot(q, d)))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(k);
        scored
    }

    /// Document positions and scores by one ranking; `Vector` and `Hybrid` need vectors
    /// (without them they are BM25).
    pub async fn rank(
        &self,
        ranking: Ranking,
        query: &str,
        k: usize,
        corpus: Corpus,
        filters: &Filters,
    ) -> Result<Vec<(usize, f32)>, BackendError> {
        let q = match ranking {
            Ranking::Bm25 => None,
            Ranking::Vector | Ranking::Hybrid => self.embed_query(query).await?,
        };
        self.rank_with(ranking, query, q.as_deref(), k, corpus, filters)
    }

    /// [`Self::rank`] with the query's embedding already computed ([`Self::embed_query`]).
    pub fn rank_with(
        &self,
        ranking: Ranking,
        query: &str,
        query_vector: Option<&[f32]>,
        k: usize,
        corpus: Corpus,
        filters: &Filters,
    ) -> Result<Vec<(usize, f32)>, BackendError> {
        if k == 0 {
            return Ok(Vec::new());
        }
        let (Some(v), Some(q)) = (&self.vectors, query_vector) else {
            return self.bm25.rank(query, k, corpus, filters);
        };
        match ranking {
            Ranking::Bm25 => self.bm25.rank(query, k, corpus, filters),
            Ranking::Vector => Ok(self.vector_rank(&v.docs, q, k, corpus, filters)),
            Ranking::Hybrid => {
                let lexical = self.bm25.rank(query, CANDIDATES, corpus, filters)?;
                let semantic = self.vector_rank(&v.docs, q, CANDIDATES, corpus, filters);
                Ok(fuse(&[&lexical, &semantic], k))
            }
        }
    }
}

/// Reciprocal rank fusion of ranked lists of document positions.
pub fn fuse(lists: &[&[(usize, f32)]], k: usize) -> Vec<(usize, f32)> {
    let mut scores: std::collections::HashMap<usize, f32> = std::collections::HashMap::new();
    for list in lists {
        for (rank, (doc, _)) in list.iter().enumerate() {
            *scores.entry(*doc).or_default() += 1.0 / (RRF_K + rank as f32 + 1.0);
        }
    }
    let mut out: Vec<(usize, f32)> = scores.into_iter().collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out.truncate(k);
    out
}

#[async_trait]
impl Retriever for HybridRetriever {
    async fn retrieve(
        &self,
        query: &str,
        k: usize,
        corpus: Corpus,
        filters: &Filters,
    ) -> Result<Vec<Passage>, BackendError> {
        let docs = self.bm25.docs();
        Ok(self
            .rank(Ranking::Hybrid, query, k, corpus, filters)
            .await?
            .into_iter()
            .map(|(i, s)| docs[i].passage(s))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrf_prefers_documents_both_lists_rank_well() {
        let a = [(1, 9.0), (2, 8.0), (3, 7.0)];
        let b = [(3, 0.9), (1, 0.8), (4, 0.7)];
        let fused = fuse(&[&a, &b], 3);
        assert_eq!(fused[0].0, 1, "{fused:?}");
        assert_eq!(fused[1].0, 3, "{fused:?}");
        assert_eq!(fused.len(), 3);
    }
}
