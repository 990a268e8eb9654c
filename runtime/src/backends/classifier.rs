//! Embedded [`IntentModel`]: multinomial logistic regression over hashed word uni/bigrams
//! and character 3–5-grams, trained at start-up on `runtime/data/intents/train.tsv`
//! (a few hundred examples train in well under a second). Stands in for the SageMaker
//! intent endpoint (PO-02). Evaluated on `heldout.tsv` by [`IntentClassifier::evaluate`];
//! the pipeline consults it only when the rules in [`crate::pipeline::intent`] are not
//! confident.
//!
//! Deterministic: fixed hashing (FNV-1a), fixed shuffling seed, no threads.

use super::{BackendError, IntentModel, Prediction};
use crate::domain::Intent;
use async_trait::async_trait;

const DIM_BITS: u32 = 17;
const DIM: usize = 1 << DIM_BITS;
const CLASSES: usize = Intent::ALL.len();

/// Training hyper-parameters; the defaults were chosen on the training set only
/// (held-out accuracy is reported, never tuned on).
#[derive(Debug, Clone, Copy)]
pub struct TrainOptions {
    pub epochs: usize,
    pub learning_rate: f32,
    pub l2: f32,
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: 40,
            learning_rate: 0.5,
            l2: 1e-6,
            seed: 0x6d61_6e67_6121,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    pub correct: usize,
    pub total: usize,
}

impl Evaluation {
    pub fn accuracy(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.correct as f64 / self.total as f64
        }
    }
}

pub struct IntentClassifier {
    /// Row-major: `weights[class * DIM + feature]`.
    weights: Vec<f32>,
    bias: [f32; CLASSES],
}

impl std::fmt::Debug for IntentClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntentClassifier")
            .field("dim", &DIM)
            .field("classes", &CLASSES)
            .finish()
    }
}

impl IntentClassifier {
    pub fn train(examples: &[(Intent, String)], opts: TrainOptions) -> IntentClassifier {
        let mut model = IntentClassifier {
            weights: vec![0.0; CLASSES * DIM],
            bias: [0.0; CLASSES],
        };
        let data: Vec<(usize, Vec<(usize, f32)>)> = examples
            .iter()
            .map(|(i, t)| (i.index(), features(t)))
            .collect();
        let mut order: Vec<usize> = (0..data.len()).collect();
        let mut rng = SplitMix64(opts.seed);
        for epoch in 0..opts.epochs {
            shuffle(&mut order, &mut rng);
            // 1/sqrt decay: large steps early, fine adjustments late.
            let lr = opts.learning_rate / (1.0 + epoch as f32).sqrt();
            for &idx in &order {
                let (label, feats) = &data[idx];
                let probs = model.probabilities(feats);
                for (c, p) in probs.iter().enumerate() {
                    let grad = p - if c == *label { 1.0 } else { 0.0 };
                    let row = &mut model.weights[c * DIM..(c + 1) * DIM];
                    for &(f, v) in feats {
                        row[f] -= lr * (grad * v + opts.l2 * row[f]);
                    }
                    model.bias[c] -= lr * grad;
                }
            }
        }
        model
    }

    fn probabilities(&self, feats: &[(usize, f32)]) -> [f32; CLASSES] {
        let mut logits = self.bias;
        for (c, logit) in logits.iter_mut().enumerate() {
            let row = &self.weights[c * DIM..(c + 1) * DIM];
            *logit += feats.iter().map(|&(f, v)| row[f] * v).sum::<f32>();
        }
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for l in logits.iter_mut() {
            *l = (*l - max).exp();
            sum += *l;
        }
        for l in logits.iter_mut() {
            *l /= sum;
        }
        logits
    }

    pub fn predict(&self, text: &str) -> Prediction {
        let probs = self.probabilities(&features(text));
        let (best, p) = probs
            .iter()
            .enumerate()
            .fold(
                (0, f32::NEG_INFINITY),
                |acc, (i, &p)| if p > acc.1 { (i, p) } else { acc },
            );
        Prediction {
            intent: Intent::ALL[best],
            confidence: p,
        }
    }

    pub fn evaluate(&self, examples: &[(Intent, String)]) -> Evaluation {
        let correct = examples
            .iter()
            .filter(|(i, t)| self.predict(t).intent == *i)
            .count();
        Evaluation {
            correct,
            total: examples.len(),
        }
    }
}

#[async_trait]
impl IntentModel for IntentClassifier {
    async fn classify(&self, text: &str) -> Result<Prediction, BackendError> {
        Ok(self.predict(text))
    }
}

/// Lower-cases, maps digits to `0` (so every order number looks alike) and splits on
/// anything that is not a letter, digit or apostrophe.
fn words(text: &str) -> Vec<String> {
    let norm: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                '0'
            } else if c.is_alphanumeric() || c == '\'' {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect();
    norm.split_whitespace().map(str::to_string).collect()
}

/// Sparse, L2-normalised hashed feature vector.
fn features(text: &str) -> Vec<(usize, f32)> {
    let ws = words(text);
    let mut idx: Vec<usize> = Vec::with_capacity(ws.len() * 12);
    for (i, w) in ws.iter().enumerate() {
        idx.push(hash(b"w", w.as_bytes()));
        if let Some(next) = ws.get(i + 1) {
            idx.push(hash2(b"b", w.as_bytes(), next.as_bytes()));
        }
        let padded: Vec<char> = std::iter::once(' ')
            .chain(w.chars())
            .chain(std::iter::once(' '))
            .collect();
        for n in 3..=5 {
            for gram in padded.windows(n) {
                let s: String = gram.iter().collect();
                idx.push(hash(b"c", s.as_bytes()));
            }
        }
    }
    if idx.is_empty() {
        idx.push(hash(b"e", b""));
    }
    idx.sort_unstable();
    let mut out: Vec<(usize, f32)> = Vec::with_capacity(idx.len());
    for f in idx {
        match out.last_mut() {
            Some((last, v)) if *last == f => *v += 1.0,
            _ => out.push((f, 1.0)),
        }
    }
    let norm = out.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
    for (_, v) in out.iter_mut() {
        *v /= norm;
    }
    out
}

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn hash(kind: &[u8], s: &[u8]) -> usize {
    (fnv(fnv(0xcbf2_9ce4_8422_2325, kind), s) & (DIM as u64 - 1)) as usize
}

fn hash2(kind: &[u8], a: &[u8], b: &[u8]) -> usize {
    let h = fnv(fnv(fnv(0xcbf2_9ce4_8422_2325, kind), a), b" ");
    (fnv(h, b) & (DIM as u64 - 1)) as usize
}

/// Tiny deterministic PRNG for shuffling (SplitMix64); no `rand` dependency needed.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

fn shuffle(v: &mut [usize], rng: &mut SplitMix64) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_folded_so_order_numbers_share_features() {
        assert_eq!(features("order MA-104233"), features("order MA-100001"));
        assert_ne!(features("order MA-104233"), features("refund MA-104233"));
    }

    #[test]
    fn learns_a_separable_toy_problem() {
        let ex: Vec<(Intent, String)> = [
            (Intent::Greeting, "hello there"),
            (Intent::Greeting, "hi friend"),
            (Intent::Escalation, "human agent please"),
            (Intent::Escalation, "talk to a person"),
        ]
        .into_iter()
        .map(|(i, t)| (i, t.to_string()))
        .collect();
        let m = IntentClassifier::train(&ex, TrainOptions::default());
        assert_eq!(m.evaluate(&ex).correct, 4);
        assert_eq!(m.predict("hello").intent, Intent::Greeting);
        assert_eq!(m.predict("a human person").intent, Intent::Escalation);
    }
}
