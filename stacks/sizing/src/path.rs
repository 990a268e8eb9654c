//! The request path as latency distributions, and the end-to-end p95 of
//! their composition: the one place the crate turns per-stage figures into
//! an end-to-end figure.
//!
//! Quantiles do not add. Two stages that each take ~0 ms 96% of the time and
//! 13 ms 4% of the time have a p95 of ~0 ms each, but their sum exceeds 13 ms
//! 7.8% of the time, so its p95 is 13 ms. Likewise the p95 of the max of two
//! parallel branches is above the max of their p95s, and a branch that 4% of
//! messages take (a DAX miss, the ML intent model) moves the end-to-end p95
//! although it is below every stage's p95. So each stage is a distribution
//! ([`Dist`]): a point mass, a log-normal fitted to two figures, a shifted
//! exponential, a mixture of branches with their probabilities, a sum of
//! parts or a max of parallel branches. The path (`budget.rs` builds it from
//! the stages `lib.rs` models) is composed by a seeded Monte Carlo
//! ([`compose`]): [`SAMPLES`] draws per stage from a SplitMix64 counter
//! generator with a fixed seed, so the same input gives the same figures.
//!
//! Neighbours: [`crate::erlang`] has the queue formulas whose waits enter
//! here as [`Dist::queue_wait`]; [`crate::budget`] checks the result against
//! the budgets; the resources (`resources/*.rs`) size capacity with the
//! analytic per-stage figures.
//!
//! Sampling uses common random numbers: every leaf of the stage trees reads
//! its own stream (its position in the traversal), so changing one stage's
//! parameters leaves the draws of every other stage as they were, and a
//! slower stage never yields a faster modelled path.

use std::sync::OnceLock;

/// Monte Carlo draws per stage. The empirical p95 of 8,192 draws has a
/// standard error of √(0.95 · 0.05 / 8,192) ≈ 0.24 percentile points, about
/// 3 ms on the seed's path (whose density near its p95 is ~0.0009 per ms),
/// against a 200 ms margin. More draws would cost the debug-build test suite
/// (the property tests size ~1,000 environments) more than they add.
pub const SAMPLES: usize = 8_192;

/// The generator's fixed seed.
pub const SEED: u64 = 0x6d61_6e67_615f_7039;

/// z of the 95th percentile of the standard normal, Φ⁻¹(0.95).
pub const Z95: f64 = 1.644_853_626_951_472_2;

/// A latency distribution in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub enum Dist {
    /// Always the same value (possibly infinite: an unstable queue).
    Point(f64),
    /// ln X ~ N(mu, sigma²).
    LogNormal {
        /// Mean of ln X.
        mu: f64,
        /// Standard deviation of ln X.
        sigma: f64,
    },
    /// shift + Exp(mean).
    ShiftedExp {
        /// The minimum.
        shift: f64,
        /// Mean of the exponential part.
        mean: f64,
    },
    /// One branch per message, with its probability (probabilities sum to 1).
    Mixture(Vec<(f64, Dist)>),
    /// Parts in series, independent.
    Sum(Vec<Dist>),
    /// Parallel branches: the message waits for the slowest.
    Max(Vec<Dist>),
}

impl Dist {
    /// A log-normal with this median and p95. Falls back to a point mass at
    /// the p95 when the figures do not describe a spread (p95 ≤ median).
    pub fn lognormal_median_p95(median: f64, p95: f64) -> Dist {
        if !(median > 0.0 && p95 > median && p95.is_finite()) {
            return Dist::Point(p95.max(0.0));
        }
        Dist::LogNormal {
            mu: median.ln(),
            sigma: (p95 / median).ln() / Z95,
        }
    }

    /// A log-normal with this p95 and shape σ (for figures known only by
    /// their p95; σ is an assumption, `path.lognormal_sigma`).
    pub fn lognormal_p95_sigma(p95: f64, sigma: f64) -> Dist {
        if !(p95 > 0.0 && p95.is_finite() && sigma > 0.0) {
            return Dist::Point(p95.max(0.0));
        }
        Dist::LogNormal {
            mu: p95.ln() - Z95 * sigma,
            sigma,
        }
    }

    /// A log-normal with this mean and p95: from ln p95 = μ + zσ and
    /// ln mean = μ + σ²/2, σ is the smaller root of σ²/2 − zσ + ln(p95/mean)
    /// = 0. A ratio p95/mean above e^(z²/2) ≈ 3.87 has no such log-normal;
    /// σ is capped at z there (the heaviest tail the two figures allow). A
    /// p95 at or below the mean is taken as a point mass at the p95.
    pub fn lognormal_mean_p95(mean: f64, p95: f64) -> Dist {
        match lognormal_sigma_from_mean_p95(mean, p95) {
            Some(sigma) => Dist::LogNormal {
                mu: p95.ln() - Z95 * sigma,
                sigma,
            },
            None => Dist::Point(p95.max(0.0)),
        }
    }

    /// An exponential with this mean.
    pub fn exponential(mean: f64) -> Dist {
        Dist::ShiftedExp {
            shift: 0.0,
            mean: mean.max(0.0),
        }
    }

    /// A queue wait: 0 with probability 1 − `prob_wait`, otherwise
    /// exponential with mean `mean_if_waiting` (the M/M/c wait, or its
    /// Allen–Cunneen M/G/c approximation). An infinite mean (unstable queue)
    /// is a point mass at infinity.
    pub fn queue_wait(prob_wait: f64, mean_if_waiting: f64) -> Dist {
        if !mean_if_waiting.is_finite() {
            return Dist::Point(f64::INFINITY);
        }
        let p = prob_wait.clamp(0.0, 1.0);
        if p <= 0.0 || mean_if_waiting <= 0.0 {
            return Dist::Point(0.0);
        }
        Dist::Mixture(vec![
            (1.0 - p, Dist::Point(0.0)),
            (p, Dist::exponential(mean_if_waiting)),
        ])
    }

    /// `self` with probability `p`, 0 ms otherwise (a stage only some
    /// messages run).
    pub fn sometimes(self, p: f64) -> Dist {
        let p = p.clamp(0.0, 1.0);
        if p >= 1.0 {
            self
        } else if p <= 0.0 {
            Dist::Point(0.0)
        } else {
            Dist::Mixture(vec![(1.0 - p, Dist::Point(0.0)), (p, self)])
        }
    }

    /// The mean (exact).
    pub fn mean(&self) -> f64 {
        match self {
            Dist::Point(v) => *v,
            Dist::LogNormal { mu, sigma } => (mu + sigma * sigma / 2.0).exp(),
            Dist::ShiftedExp { shift, mean } => shift + mean,
            Dist::Mixture(b) => b.iter().map(|(p, d)| p * d.mean()).sum(),
            Dist::Sum(parts) => parts.iter().map(Dist::mean).sum(),
            // No closed form in general; the Monte Carlo one.
            Dist::Max(_) => {
                let s = self.samples();
                s.iter().sum::<f64>() / s.len() as f64
            }
        }
    }

    /// The `q` quantile in closed form, where there is one (point,
    /// log-normal, shifted exponential).
    pub fn exact_quantile(&self, q: f64) -> Option<f64> {
        match self {
            Dist::Point(v) => Some(*v),
            Dist::LogNormal { mu, sigma } => Some((mu + sigma * normal_quantile(q)).exp()),
            Dist::ShiftedExp { shift, mean } => Some(shift - mean * (1.0 - q).ln()),
            _ => None,
        }
    }

    /// The `q` quantile: exact where there is a closed form, otherwise the
    /// empirical quantile of [`SAMPLES`] seeded draws.
    pub fn quantile(&self, q: f64) -> f64 {
        self.exact_quantile(q)
            .unwrap_or_else(|| empirical_quantile(&mut self.samples(), q))
    }

    /// [`SAMPLES`] seeded draws.
    pub fn samples(&self) -> Vec<f64> {
        let mut out = vec![0.0; SAMPLES];
        self.fill(&mut out, &mut 0);
        out
    }

    /// Fills `out` with draws; `stream` numbers the leaves in traversal
    /// order so each reads its own random stream.
    fn fill(&self, out: &mut [f64], stream: &mut u64) {
        out.fill(0.0);
        self.add_into(out, stream);
    }

    /// Adds draws to `out` (index loops: this is the hot path of a debug
    /// build's test suite).
    fn add_into(&self, out: &mut [f64], stream: &mut u64) {
        let n = out.len();
        match self {
            Dist::Point(v) => {
                for o in out.iter_mut() {
                    *o += *v;
                }
            }
            Dist::LogNormal { mu, sigma } => {
                let t = table(next(stream));
                let z = &t.normal[..n];
                for i in 0..n {
                    out[i] += (mu + sigma * f64::from(z[i])).exp();
                }
            }
            Dist::ShiftedExp { shift, mean } => {
                let t = table(next(stream));
                let e = &t.exponential[..n];
                for i in 0..n {
                    out[i] += shift + mean * f64::from(e[i]);
                }
            }
            Dist::Sum(parts) => {
                for p in parts {
                    p.add_into(out, stream);
                }
            }
            Dist::Max(parts) => {
                let mut acc = vec![f64::NEG_INFINITY; n];
                let mut tmp = vec![0.0; n];
                for p in parts {
                    p.fill(&mut tmp, stream);
                    for i in 0..n {
                        if tmp[i] > acc[i] {
                            acc[i] = tmp[i];
                        }
                    }
                }
                for i in 0..n {
                    if acc[i].is_finite() || acc[i] > 0.0 {
                        out[i] += acc[i];
                    }
                }
            }
            Dist::Mixture(branches) => {
                // Every branch is drawn for every sample, so the streams a
                // branch reads do not depend on which branches were chosen.
                let t = table(next(stream));
                let u = &t.uniform[..n];
                let total: f64 = branches.iter().map(|(p, _)| p.max(0.0)).sum();
                let mut lo = 0.0;
                let mut col = vec![0.0; n];
                for (p, d) in branches {
                    let hi = lo + p.max(0.0) / total;
                    let (a, b) = (lo as f32, hi as f32);
                    let last = hi >= 1.0 - 1e-12;
                    if let Dist::Point(v) = d {
                        for i in 0..n {
                            if u[i] >= a && (u[i] < b || last) {
                                out[i] += *v;
                            }
                        }
                    } else {
                        d.fill(&mut col, stream);
                        for i in 0..n {
                            if u[i] >= a && (u[i] < b || last) {
                                out[i] += col[i];
                            }
                        }
                    }
                    lo = hi;
                }
            }
        }
    }
}

fn next(stream: &mut u64) -> u64 {
    let s = *stream;
    *stream += 1;
    s
}

/// The σ of the log-normal with this mean and p95 (see
/// [`Dist::lognormal_mean_p95`]); `None` when p95 ≤ mean or either is not
/// positive and finite.
pub fn lognormal_sigma_from_mean_p95(mean: f64, p95: f64) -> Option<f64> {
    if !(mean > 0.0 && p95 > mean && p95.is_finite()) {
        return None;
    }
    let disc = Z95 * Z95 - 2.0 * (p95 / mean).ln();
    Some(Z95 - disc.max(0.0).sqrt())
}

/// Squared coefficient of variation of a log-normal service time with this
/// mean and p95: C² = e^(σ²) − 1 (0 when the figures describe no spread).
/// Feeds the Allen–Cunneen M/G/c wait ([`crate::erlang::allen_cunneen`]).
pub fn lognormal_cv2(mean: f64, p95: f64) -> f64 {
    lognormal_sigma_from_mean_p95(mean, p95).map_or(0.0, |s| (s * s).exp() - 1.0)
}

/// The empirical `q` quantile of `samples` (the smallest value with at least
/// a share `q` of samples at or below it); reorders `samples`.
pub fn empirical_quantile(samples: &mut [f64], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let n = samples.len();
    // ceil(q·n) − 1, clamped; q·n is at most n, well inside f64's exact range.
    let k = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
    select(samples, k)
}

/// The `k`-th smallest of `v` (0-based), by Hoare's quickselect with a
/// median-of-three pivot; reorders `v`. Written with plain index loops
/// because the standard library's generic selection is several times slower
/// in a debug build. NaN is never produced by the samplers; infinities sort
/// as usual.
fn select(v: &mut [f64], k: usize) -> f64 {
    let (mut lo, mut hi) = (0usize, v.len() - 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        // Median of three as the pivot value.
        let (a, b, c) = (v[lo], v[mid], v[hi]);
        let pivot = if (a <= b) == (b <= c) {
            b
        } else if (b <= a) == (a <= c) {
            a
        } else {
            c
        };
        let (mut i, mut j) = (lo, hi);
        loop {
            while v[i] < pivot {
                i += 1;
            }
            while v[j] > pivot {
                j -= 1;
            }
            if i >= j {
                break;
            }
            v.swap(i, j);
            i += 1;
            j -= 1;
        }
        // v[lo..=j] ≤ pivot ≤ v[j+1..=hi].
        if k <= j {
            hi = j;
        } else {
            lo = j + 1;
        }
    }
    v[k]
}

/// SplitMix64's output function (Steele, Lea and Flood, "Fast splittable
/// pseudorandom number generators", OOPSLA 2014): a bijective mix of a
/// 64-bit counter.
fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64 increment (the golden-ratio gamma).
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// Draw `i` of stream `s`, uniform in (0, 1): SplitMix64 at counter
/// `SEED + (s·2³² + i + 1)·γ`, the same sequence a SplitMix64 generator
/// seeded for stream `s` yields, but addressable by index.
pub(crate) fn uniform(s: u64, i: u64) -> f64 {
    let counter = (s << 32).wrapping_add(i).wrapping_add(1);
    let x = splitmix64(SEED.wrapping_add(counter.wrapping_mul(GAMMA)));
    // The top 53 bits, offset by half a step: never 0, never 1.
    ((x >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
}

/// Draws of one stream: uniforms, standard exponentials −ln(1 − u) of the
/// same uniforms, and standard normals (Box–Muller on two further uniform
/// sequences, z = √(−2 ln u₁) · cos(2π u₂)), stored as f32 (24 bits are
/// ample for a Monte Carlo quantile and halve the tables).
struct Stream {
    uniform: Vec<f32>,
    exponential: Vec<f32>,
    normal: Vec<f32>,
}

fn stream_draws(s: u64) -> Stream {
    let n = SAMPLES as u64;
    let (a, b) = (s + (1 << 20), s + (2 << 20));
    Stream {
        uniform: (0..n).map(|i| uniform(s, i) as f32).collect(),
        exponential: (0..n)
            .map(|i| (-(1.0 - uniform(s, i)).ln()) as f32)
            .collect(),
        normal: (0..n)
            .map(|i| {
                let (u1, u2) = (uniform(a, i), uniform(b, i));
                ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
            })
            .collect(),
    }
}

/// Streams tabulated once per process (3 × 40 × 8,192 f32, 3.9 MB); a path needs about 30 (leaves and
/// mixtures of the stage trees), later ones are drawn on demand.
const TABLED_STREAMS: u64 = 40;

/// The draws of stream `s`.
fn table(s: u64) -> std::borrow::Cow<'static, Stream> {
    static TABLE: OnceLock<Vec<Stream>> = OnceLock::new();
    if s < TABLED_STREAMS {
        let t = TABLE.get_or_init(|| (0..TABLED_STREAMS).map(stream_draws).collect());
        if let Some(col) = t.get(s as usize) {
            return std::borrow::Cow::Borrowed(col);
        }
    }
    std::borrow::Cow::Owned(stream_draws(s))
}

impl Clone for Stream {
    fn clone(&self) -> Self {
        Stream {
            uniform: self.uniform.clone(),
            exponential: self.exponential.clone(),
            normal: self.normal.clone(),
        }
    }
}

/// Φ⁻¹(q) by Acklam's rational approximation (relative error below
/// 1.2 × 10⁻⁹), refined by one Halley step on erfc.
pub fn normal_quantile(q: f64) -> f64 {
    if q <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if q >= 1.0 {
        return f64::INFINITY;
    }
    if (q - 0.95).abs() < 1e-15 {
        return Z95;
    }
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |p: f64| {
        let r = (-2.0 * p.ln()).sqrt();
        (((((C[0] * r + C[1]) * r + C[2]) * r + C[3]) * r + C[4]) * r + C[5])
            / ((((D[0] * r + D[1]) * r + D[2]) * r + D[3]) * r + 1.0)
    };
    if q < 0.02425 {
        tail(q)
    } else if q > 1.0 - 0.02425 {
        -tail(1.0 - q)
    } else {
        let r = q - 0.5;
        let s = r * r;
        (((((A[0] * s + A[1]) * s + A[2]) * s + A[3]) * s + A[4]) * s + A[5]) * r
            / (((((B[0] * s + B[1]) * s + B[2]) * s + B[3]) * s + B[4]) * s + 1.0)
    }
}

/// First stream of the per-stage gates (whether a message runs a stage).
const GATE_STREAMS: u64 = 1 << 16;

/// The composed path's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct PathFigures {
    /// Median of the whole path, ms.
    pub p50_ms: f64,
    /// 95th percentile of the whole path, ms.
    pub p95_ms: f64,
    /// 99th percentile of the whole path, ms.
    pub p99_ms: f64,
    /// Each stage's own p95 in the order given, ms (exact where the stage
    /// has a closed form, otherwise from the same draws as the path).
    pub stage_p95_ms: Vec<f64>,
}

/// One stage of the path as [`compose`] takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct PathStage {
    /// The stage's own latency distribution (for its row's p95).
    pub dist: Dist,
    /// Share of messages that run the stage (1 for most; the ML intent
    /// stage's share; 0 for stages off the path).
    pub share: f64,
    /// Stages with the same `Some(group)` run in parallel (the message waits
    /// for the slowest); `None` runs in series.
    pub parallel_group: Option<u32>,
}

/// Composes the path: the sum of the serial stages and, per parallel group,
/// the max of its stages, each stage taking part with its share, by seeded
/// Monte Carlo over [`SAMPLES`] draws.
pub fn compose(stages: &[PathStage]) -> PathFigures {
    let (mut total, stage_p95_ms) = compose_samples(stages);
    let p50_ms = empirical_quantile(&mut total, 0.50);
    let p95_ms = empirical_quantile(&mut total, 0.95);
    let p99_ms = empirical_quantile(&mut total, 0.99);
    PathFigures {
        p50_ms,
        p95_ms,
        p99_ms,
        stage_p95_ms,
    }
}

/// [`compose`]'s draws of the whole path ([`SAMPLES`] of them, draw `i` of
/// every call using the same leaf streams, so two paths that differ in one
/// stage differ draw by draw only there) and each stage's own p95.
pub fn compose_samples(stages: &[PathStage]) -> (Vec<f64>, Vec<f64>) {
    let mut stream = 0;
    let mut total = vec![0.0; SAMPLES];
    let mut groups: Vec<(u32, Vec<f64>)> = Vec::new();
    let mut stage_p95_ms = Vec::with_capacity(stages.len());
    let mut col = vec![0.0; SAMPLES];
    for (k, st) in stages.iter().enumerate() {
        let share = st.share.clamp(0.0, 1.0);
        let exact = st.dist.exact_quantile(0.95);
        if share <= 0.0 {
            // Off the path: its row only. The streams it would read are
            // skipped so the other stages' stay put.
            let mut skip = stream;
            if exact.is_none() {
                st.dist.fill(&mut col, &mut skip);
            } else {
                st.dist.fill(&mut col[..0], &mut skip);
            }
            stream = skip;
            stage_p95_ms.push(exact.unwrap_or_else(|| empirical_quantile(&mut col, 0.95)));
            continue;
        }
        let stream_before = stream;
        st.dist.fill(&mut col, &mut stream);
        // Whether this message runs the stage: a stream of its own per
        // stage, outside the leaves' range.
        if share < 1.0 {
            let s = GATE_STREAMS + k as u64;
            for (i, c) in col.iter_mut().enumerate() {
                if uniform(s, i as u64) >= share {
                    *c = 0.0;
                }
            }
        }
        let target = match st.parallel_group {
            None => &mut total,
            Some(g) => {
                let idx = match groups.iter().position(|(k, _)| *k == g) {
                    Some(i) => i,
                    None => {
                        groups.push((g, vec![0.0; SAMPLES]));
                        groups.len() - 1
                    }
                };
                &mut groups[idx].1
            }
        };
        if st.parallel_group.is_some() {
            for i in 0..SAMPLES {
                if col[i] > target[i] {
                    target[i] = col[i];
                }
            }
        } else {
            for i in 0..SAMPLES {
                target[i] += col[i];
            }
        }
        // A gated stage's row is the stage for the messages that run it.
        stage_p95_ms.push(exact.unwrap_or_else(|| {
            if share < 1.0 {
                let mut again = vec![0.0; SAMPLES];
                let mut s = stream_before;
                st.dist.fill(&mut again, &mut s);
                empirical_quantile(&mut again, 0.95)
            } else {
                empirical_quantile(&mut col, 0.95)
            }
        }));
    }
    for (_, g) in &groups {
        for (t, v) in total.iter_mut().zip(g) {
            *t += v;
        }
    }
    (total, stage_p95_ms)
}

/// Stream of the draw-by-draw choice among the paths of a [`mixture_quantile`].
const MIXTURE_STREAM: u64 = GATE_STREAMS - 1;

/// The `q` quantile over messages of a mixture of paths: draw `i` takes path `k`'s
/// draw `i` with probability `weights[k]` (its own uniform stream, outside
/// the leaves' and gates' ranges). Weights need not sum to 1; zero-weight
/// paths never occur.
pub fn mixture_quantile(paths: &[(f64, &[f64])], q: f64) -> f64 {
    let total: f64 = paths.iter().map(|(w, _)| w.max(0.0)).sum();
    if total <= 0.0 || paths.is_empty() {
        return f64::NAN;
    }
    let n = paths.iter().map(|(_, s)| s.len()).min().unwrap_or(0);
    let mut mixed = Vec::with_capacity(n);
    for i in 0..n {
        let u = uniform(MIXTURE_STREAM, i as u64) * total;
        let mut acc = 0.0;
        let mut pick = paths.len() - 1;
        for (k, (w, _)) in paths.iter().enumerate() {
            acc += w.max(0.0);
            if u < acc {
                pick = k;
                break;
            }
        }
        mixed.push(paths[pick].1[i]);
    }
    empirical_quantile(&mut mixed, q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, tol: f64) {
        assert!(
            (actual - expected).abs() <= tol,
            "expected {expected} ± {tol}, got {actual}"
        );
    }

    fn serial(dist: Dist) -> PathStage {
        PathStage {
            dist,
            share: 1.0,
            parallel_group: None,
        }
    }

    #[test]
    fn uniforms_are_uniform_and_normals_standard() {
        // Mean 1/2 and variance 1/12 within about 3 standard errors
        // (σ/√n = 0.289/90.5 = 0.0032 for the mean, 0.0008 for the variance).
        // Normals: mean se 0.011, variance se √(2/n) = 0.016.
        let u: Vec<f64> = (0..SAMPLES as u64).map(|i| uniform(3, i)).collect();
        let m = u.iter().sum::<f64>() / u.len() as f64;
        let v = u.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / u.len() as f64;
        close(m, 0.5, 0.01);
        close(v, 1.0 / 12.0, 0.003);
        assert!(u.iter().all(|x| *x > 0.0 && *x < 1.0));
        let z: Vec<f64> = table(5).normal.iter().map(|x| f64::from(*x)).collect();
        let m = z.iter().sum::<f64>() / z.len() as f64;
        let v = z.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / z.len() as f64;
        close(m, 0.0, 0.035);
        close(v, 1.0, 0.05);
        // Φ(1.645) = 0.95: the share of draws below it (se 0.0024).
        let below = z.iter().filter(|x| **x < Z95).count() as f64 / z.len() as f64;
        close(below, 0.95, 0.008);
    }

    #[test]
    fn selection_finds_order_statistics() {
        // 1..=1000 shuffled by a multiplicative step coprime to 1000.
        let mut v: Vec<f64> = (0..1000)
            .map(|i| f64::from((i * 37 + 11) % 1000 + 1))
            .collect();
        assert_eq!(empirical_quantile(&mut v, 0.95), 950.0);
        assert_eq!(empirical_quantile(&mut v, 0.5), 500.0);
        assert_eq!(empirical_quantile(&mut v, 1.0), 1000.0);
        let mut same = vec![3.0; 10];
        assert_eq!(empirical_quantile(&mut same, 0.95), 3.0);
        let mut two = vec![2.0, 1.0];
        assert_eq!(empirical_quantile(&mut two, 0.5), 1.0);
    }

    #[test]
    fn normal_quantiles_match_tables() {
        // Standard normal table values.
        close(normal_quantile(0.5), 0.0, 1e-9);
        close(normal_quantile(0.975), 1.959_964, 1e-6);
        close(normal_quantile(0.99), 2.326_348, 1e-6);
        close(normal_quantile(0.01), -2.326_348, 1e-6);
        close(normal_quantile(0.95), 1.644_854, 1e-6);
    }

    #[test]
    fn lognormal_fits_by_hand() {
        // Mean 20, p95 35: ln 1.75 = 0.5596; σ = 1.6449 − √(2.7055 − 1.1192)
        // = 1.6449 − 1.2595 = 0.3854; C² = e^0.1485 − 1 = 0.1601.
        let s = lognormal_sigma_from_mean_p95(20.0, 35.0).expect("fits");
        close(s, 0.3854, 1e-3);
        close(lognormal_cv2(20.0, 35.0), 0.1601, 1e-3);
        let d = Dist::lognormal_mean_p95(20.0, 35.0);
        close(d.mean(), 20.0, 1e-9);
        close(d.quantile(0.95), 35.0, 1e-9);
        // Median 10, p95 20: σ = ln 2 / 1.6449 = 0.4214; p99 = 10·e^(2.3263·0.4214)
        // = 10·e^0.9803 = 26.65.
        let d = Dist::lognormal_median_p95(10.0, 20.0);
        close(d.quantile(0.99), 26.65, 0.01);
        // The Monte Carlo p95 of a closed-form stage agrees with the closed
        // form: density at 20 is φ(1.645)/(20 · 0.4214) = 0.0122 per unit, so
        // the se is 0.0024/0.0122 = 0.2; allow 0.6.
        close(empirical_quantile(&mut d.samples(), 0.95), 20.0, 0.6);
        // A p95 at the mean is no spread: a point mass.
        assert_eq!(Dist::lognormal_mean_p95(5.0, 5.0), Dist::Point(5.0));
    }

    /// The example: two stages, each ~0 ms 96% of the time and 13 ms
    /// 4% of the time. Each stage's p95 is 0 (96% of its mass is at 0). The
    /// sum is 0 with probability 0.96² = 0.9216, 13 with 2 × 0.96 × 0.04 =
    /// 0.0768 and 26 with 0.0016: it exceeds 0 7.84% of the time (> 5%) and
    /// exceeds 13 only 0.16% of the time, so its p95 is 13 ms. Summing the
    /// stage p95s gives 0.
    #[test]
    fn small_tails_add_up_past_the_p95() {
        let tail = || Dist::Point(13.0).sometimes(0.04);
        let f = compose(&[serial(tail()), serial(tail())]);
        assert_eq!(f.stage_p95_ms, vec![0.0, 0.0]);
        assert_eq!(f.p95_ms, 13.0);
        assert_eq!(f.p50_ms, 0.0);
        // The p99 (above the 99.84th percentile only is 26) is 13 as well.
        assert_eq!(f.p99_ms, 13.0);
    }

    /// Sum of two independent exponentials with rates a = 1/10 and b = 1/20
    /// (per ms), the hypoexponential distribution:
    ///   P(X > t) = (b e^(−a t) − a e^(−b t)) / (b − a)
    ///            = (0.05 e^(−t/10) − 0.1 e^(−t/20)) / (−0.05)
    ///            = 2 e^(−t/20) − e^(−t/10).
    /// With x = e^(−t/20): 2x − x² = 0.05 → x = 1 − √0.95 = 0.025321;
    /// t = −20 ln 0.025321 = 73.52 ms. (The sum of the p95s is
    /// 10 ln 20 + 20 ln 20 = 89.87 ms, 22% above.)
    #[test]
    fn sum_of_exponentials_matches_the_hypoexponential_p95() {
        let f = compose(&[
            serial(Dist::exponential(10.0)),
            serial(Dist::exponential(20.0)),
        ]);
        // Standard error of the empirical p95: √(0.95·0.05/n) / f(t), with
        // density f(73.5) = (e^(−t/20) − e^(−t/10))/10 ≈ 0.0025 per ms,
        // ≈ 0.0024 / 0.0025 = 1.0 ms; allow 3 ms.
        close(f.p95_ms, 73.52, 3.0);
        close(f.stage_p95_ms[0], 10.0 * 20f64.ln(), 1e-9);
        // Median: 2x − x² = 0.5 → x = 1 − √0.5 = 0.29289, t = 24.56 ms
        // (density 0.0207 per ms there: se √(0.25/n)/0.0207 = 0.27 ms).
        close(f.p50_ms, 24.56, 1.0);
    }

    /// Max of two independent exponentials with mean 10 ms: P(max ≤ t) =
    /// (1 − e^(−t/10))² = 0.95 → t = −10 ln(1 − √0.95) = 36.76 ms, while the
    /// max of the p95s is 10 ln 20 = 29.96 ms. (Density at 36.76:
    /// 2 · 0.9747 · 0.0253 / 10 = 0.0049 per ms, se 0.5 ms.)
    #[test]
    fn max_of_parallel_branches_exceeds_the_max_of_their_p95s() {
        let branch = |d| PathStage {
            dist: d,
            share: 1.0,
            parallel_group: Some(1),
        };
        let f = compose(&[
            branch(Dist::exponential(10.0)),
            branch(Dist::exponential(10.0)),
        ]);
        close(f.p95_ms, 36.76, 1.5);
    }

    /// A mixture is sampled with its probabilities: 97% at 1 ms, 3% at 12 ms
    /// has p95 1 and p99 12 (above the 97th percentile everything is 12),
    /// and mean 0.97 + 0.36 = 1.33.
    #[test]
    fn mixtures_keep_their_small_branches() {
        let d = Dist::Mixture(vec![(0.97, Dist::Point(1.0)), (0.03, Dist::Point(12.0))]);
        assert_eq!(d.quantile(0.95), 1.0);
        assert_eq!(d.quantile(0.99), 12.0);
        close(d.mean(), 1.33, 1e-12);
        // se √(0.03 · 0.97 / n) = 0.0019.
        let share = d.samples().iter().filter(|x| **x > 1.0).count() as f64 / SAMPLES as f64;
        close(share, 0.03, 0.006);
    }

    #[test]
    fn composition_is_deterministic_and_leaves_other_streams_alone() {
        let path = |first: f64| {
            compose(&[
                serial(Dist::lognormal_p95_sigma(first, 0.5)),
                serial(Dist::exponential(10.0).sometimes(0.3)),
            ])
        };
        assert_eq!(path(20.0), path(20.0));
        // A slower first stage never gives a faster path (common random numbers).
        let (a, b) = (path(20.0), path(25.0));
        assert!(b.p50_ms >= a.p50_ms && b.p95_ms >= a.p95_ms && b.p99_ms >= a.p99_ms);
    }

    #[test]
    fn queue_wait_has_its_atom_and_tail() {
        // P(wait > 0) = 0.2, exponential mean 5 ms when waiting: P(W > t) =
        // 0.2 e^(−t/5) = 0.05 → t = 5 ln 4 = 6.93 ms. The density there is
        // 0.2/5 · e^(−6.93/5) = 0.01 per ms, so the empirical p95's standard
        // error is √(0.95·0.05/8,192)/0.01 = 0.24 ms; allow 0.75 ms.
        let w = Dist::queue_wait(0.2, 5.0);
        close(w.quantile(0.95), 5.0 * 4f64.ln(), 0.75);
        close(w.mean(), 1.0, 1e-12);
        assert_eq!(Dist::queue_wait(0.0, 5.0), Dist::Point(0.0));
        assert!(Dist::queue_wait(0.5, f64::INFINITY)
            .quantile(0.95)
            .is_infinite());
    }
}
