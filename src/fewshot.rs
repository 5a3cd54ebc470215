//! Few-shot learning from a user's own labelled stories: a softmax-regression head that also
//! learns where in a story to look.
//!
//! Chosen by measurement (5-fold cross-validation on labelled stories, docs/src/few-shot.md):
//! adding examples to the prototype lists and keeping the top-k rule scored worse than
//! zero-shot, and a regression on the embeddings alone scored worse still. A softmax regression
//! over the story's centred, unit-length embedding plus its zero-shot top-k scores (one per
//! scenario, times [`SCORE_SCALE`]) matched zero-shot; what lifted it above is a third feature
//! block, an *attention pooling* of the model's last hidden states: one learned query vector
//! weighs each token by `softmax(query · token)`, and the weighted mean (unit length) joins the
//! features. The mean pooling the model was trained with weighs "I wasn't passed over" as
//! much as the sentence that says what went wrong; the query learns from the examples which
//! tokens carry the verdict. It starts at zero, where attention is the plain mean.
//!
//! The head is fitted on the prototypes (each scored leave-one-out, so it is not its own
//! nearest neighbour) and the user's examples together, by full-batch Adam from zero weights,
//! so it is deterministic: the same data always gives the same head, on any thread count.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::vector::{dot, normalise, softmax};

/// Weight of the zero-shot scores among the features.
pub const SCORE_SCALE: f32 = 10.0;
/// L2 penalties (added to the weighted mean log-loss as `L2 · Σ θ²`) on the weights and
/// bias, and on the query. Chosen by 5-fold cross-validation on real_dev (seeds 42, 1 and 2)
/// and checked on the development set (docs/src/dev/few-shot-research.md): on real stories a
/// freer head (3·10⁻⁴, as chosen earlier on the synthetic development set alone) learns the
/// examples' wording and scores below zero-shot (0.719 against 0.783); held closer to the
/// zero-shot scores it scores 0.807, and 0.890 on the development set.
const L2: f32 = 5e-3;
const QUERY_L2: f32 = 5e-3;
const LEARNING_RATE: f32 = 0.01;
const EPOCHS: usize = 300;
/// Rows per gradient task: fixed, so the sum's order, and the head, never depend on threads.
const ROWS_PER_TASK: usize = 32;

/// A fitted head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// `weights[class][feature]`; features are [`features`]' layout.
    pub weights: Vec<Vec<f32>>,
    pub bias: Vec<f32>,
    /// The attention query over the model's last hidden states (one per token dimension).
    pub query: Vec<f32>,
    /// Softmax temperature applied to the logits (1 until calibrated).
    pub temperature: f32,
}

/// One window's attention-pooled hidden states: the softmax-weighted mean of its tokens and
/// the log of the softmax's normaliser, so the windows of a long story combine exactly as if
/// the softmax had run over all their tokens at once ([`combine_attended`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Attended {
    pub mean: Vec<f32>,
    pub log_mass: f32,
}

/// Attention-pools `[len, dim]` hidden states with `query`. Every window holds at least its
/// `[CLS]` and `[SEP]` tokens, so `states` is never empty.
pub fn attend(states: &[f32], query: &[f32]) -> Attended {
    let dim = query.len();
    debug_assert!(dim > 0 && states.len() >= dim, "attention over no tokens");
    let scores: Vec<f32> = states.chunks_exact(dim).map(|t| dot(t, query)).collect();
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
    let mass: f32 = weights.iter().sum();
    let mut mean = vec![0f32; dim];
    for (token, w) in states.chunks_exact(dim).zip(&weights) {
        for (m, x) in mean.iter_mut().zip(token) {
            *m += x * (w / mass);
        }
    }
    Attended {
        mean,
        log_mass: max + mass.ln(),
    }
}

/// The attention-pooled vector of a story from its windows' parts, at unit length.
pub fn combine_attended(parts: &[Attended]) -> Vec<f32> {
    let dim = parts.first().map_or(0, |p| p.mean.len());
    let max = parts
        .iter()
        .map(|p| p.log_mass)
        .fold(f32::NEG_INFINITY, f32::max);
    let mut v = vec![0f32; dim];
    for p in parts {
        let w = (p.log_mass - max).exp();
        for (acc, x) in v.iter_mut().zip(&p.mean) {
            *acc += w * x;
        }
    }
    normalise(&mut v);
    v
}

/// The head's features: prepared embedding, the scaled similarity scores, then the
/// attention-pooled vector.
pub fn features(prepared: &[f32], sims: &[f32], attended: &[f32]) -> Vec<f32> {
    let mut x = fixed_features(prepared, sims);
    x.extend_from_slice(attended);
    x
}

impl Head {
    /// Whether the head's shapes suit a model of width `dim` and a taxonomy of `classes`
    /// scenarios (features: embedding, one score per scenario, attention-pooled vector).
    pub fn fits(&self, dim: usize, classes: usize) -> bool {
        self.query.len() == dim
            && self.bias.len() == classes
            && self.weights.len() == classes
            && self.weights.iter().all(|w| w.len() == 2 * dim + classes)
    }

    /// The story's attention-pooled vector under this head's query.
    pub fn attend(&self, states: &[f32]) -> Vec<f32> {
        combine_attended(&[attend(states, &self.query)])
    }

    /// Logits for a prepared (centred, unit-length) embedding, its similarity scores and its
    /// attention-pooled vector.
    pub fn logits(&self, prepared: &[f32], sims: &[f32], attended: &[f32]) -> Vec<f32> {
        let x = features(prepared, sims, attended);
        self.weights
            .iter()
            .zip(&self.bias)
            .map(|(w, b)| dot(w, &x) + b)
            .collect()
    }

    pub fn probabilities(&self, prepared: &[f32], sims: &[f32], attended: &[f32]) -> Vec<f32> {
        softmax(&self.logits(prepared, sims, attended), self.temperature)
    }
}

/// One training row: the fixed features (prepared embedding and zero-shot scores), the
/// story's last hidden states, its scenario and its weight.
pub struct Row<'a> {
    pub fixed: Vec<f32>,
    pub states: &'a [f32],
    pub label: usize,
    pub weight: f32,
}

/// Parameters, or their gradients, laid out as one vector: weights (class-major over the
/// features), bias, query.
struct Layout {
    classes: usize,
    fixed: usize,
    dim: usize,
}

impl Layout {
    fn features(&self) -> usize {
        self.fixed + self.dim
    }
    fn len(&self) -> usize {
        self.classes * self.features() + self.classes + self.dim
    }
    fn weights<'a>(&self, theta: &'a [f32], class: usize) -> &'a [f32] {
        let f = self.features();
        &theta[class * f..(class + 1) * f]
    }
    fn bias(&self) -> std::ops::Range<usize> {
        let w = self.classes * self.features();
        w..w + self.classes
    }
    fn query(&self) -> std::ops::Range<usize> {
        let q = self.classes * self.features() + self.classes;
        q..q + self.dim
    }
}

/// Adds one row's gradient of `weight · log-loss` to `grad`.
fn row_gradient(layout: &Layout, theta: &[f32], row: &Row, grad: &mut [f32]) {
    let (dim, f) = (layout.dim, layout.features());
    let query = &theta[layout.query()];
    let tokens = row.states.len() / dim;
    let scores: Vec<f32> = row
        .states
        .chunks_exact(dim)
        .map(|t| dot(t, query))
        .collect();
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut alpha: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
    let mass: f32 = alpha.iter().sum();
    alpha.iter_mut().for_each(|a| *a /= mass);
    let mut pooled = vec![0f32; dim];
    for (token, a) in row.states.chunks_exact(dim).zip(&alpha) {
        for (p, x) in pooled.iter_mut().zip(token) {
            *p += a * x;
        }
    }
    let norm = dot(&pooled, &pooled).sqrt().max(1e-12);
    let unit: Vec<f32> = pooled.iter().map(|p| p / norm).collect();
    let x: Vec<f32> = row.fixed.iter().chain(&unit).copied().collect();
    let bias = &theta[layout.bias()];
    let logits: Vec<f32> = (0..layout.classes)
        .map(|c| dot(layout.weights(theta, c), &x) + bias[c])
        .collect();
    let probs = softmax(&logits, 1.0);
    // Back through the logits, the unit-length scaling (only the part of the gradient across
    // `unit` survives it), the pooled sum and the attention softmax.
    let mut d_unit = vec![0f32; dim];
    for (c, p) in probs.iter().enumerate() {
        let g = row.weight * (p - if c == row.label { 1.0 } else { 0.0 });
        for (acc, xi) in grad[c * f..(c + 1) * f].iter_mut().zip(&x) {
            *acc += g * xi;
        }
        grad[layout.bias().start + c] += g;
        for (d, w) in d_unit
            .iter_mut()
            .zip(&layout.weights(theta, c)[layout.fixed..])
        {
            *d += g * w;
        }
    }
    let along = dot(&unit, &d_unit);
    let d_pooled: Vec<f32> = d_unit
        .iter()
        .zip(&unit)
        .map(|(d, u)| (d - u * along) / norm)
        .collect();
    let d_alpha: Vec<f32> = row
        .states
        .chunks_exact(dim)
        .map(|t| dot(t, &d_pooled))
        .collect();
    let mean_d = dot(&alpha, &d_alpha);
    let d_query = &mut grad[layout.query()];
    for t in 0..tokens {
        let ds = alpha[t] * (d_alpha[t] - mean_d);
        for (acc, x) in d_query.iter_mut().zip(&row.states[t * dim..(t + 1) * dim]) {
            *acc += ds * x;
        }
    }
}

/// Fits the head on `rows` (weights are normalised to sum to 1) with full-batch Adam.
pub fn fit(mut rows: Vec<Row>, classes: usize, dim: usize) -> Head {
    let fixed = rows.first().map_or(0, |r| r.fixed.len());
    let layout = Layout {
        classes,
        fixed,
        dim,
    };
    let total: f32 = rows.iter().map(|r| r.weight).sum::<f32>().max(1e-12);
    rows.iter_mut().for_each(|r| r.weight /= total);
    let n = layout.len();
    let mut theta = vec![0f32; n];
    let (mut m, mut v) = (vec![0f32; n], vec![0f32; n]);
    let (beta1, beta2, eps) = (0.9f32, 0.999f32, 1e-8f32);
    for step in 1..=EPOCHS {
        let parts: Vec<Vec<f32>> = rows
            .par_chunks(ROWS_PER_TASK)
            .map(|chunk| {
                let mut g = vec![0f32; n];
                for row in chunk {
                    row_gradient(&layout, &theta, row, &mut g);
                }
                g
            })
            .collect();
        let mut grad = vec![0f32; n];
        for part in &parts {
            for (acc, g) in grad.iter_mut().zip(part) {
                *acc += g;
            }
        }
        let (c1, c2) = (1.0 - beta1.powi(step as i32), 1.0 - beta2.powi(step as i32));
        for i in 0..n {
            let l2 = if layout.query().contains(&i) {
                QUERY_L2
            } else {
                L2
            };
            let g = grad[i] + 2.0 * l2 * theta[i];
            m[i] = beta1 * m[i] + (1.0 - beta1) * g;
            v[i] = beta2 * v[i] + (1.0 - beta2) * g * g;
            theta[i] -= LEARNING_RATE * (m[i] / c1) / ((v[i] / c2).sqrt() + eps);
        }
    }
    debug_assert!(theta.iter().all(|v| v.is_finite()), "the fit diverged");
    Head {
        weights: (0..classes)
            .map(|c| layout.weights(&theta, c).to_vec())
            .collect(),
        bias: theta[layout.bias()].to_vec(),
        query: theta[layout.query()].to_vec(),
        temperature: 1.0,
    }
}

/// The weight of one user example relative to one prototype, given how many prototypes and
/// examples its scenario has: at least 2, and enough that the scenario's examples together
/// weigh at least half as much as its prototypes, so a handful of examples can still teach the
/// head something the prototypes do not say. Counting per scenario keeps a few examples of one
/// scenario from tilting the head towards it everywhere: eight examples of one scenario cost
/// 1.8 points of development-set macro-F1 when weighed against all the prototypes, 0.8 this way.
/// (With 160 examples beside 405 prototypes, cross-validation of the earlier head, without
/// attention, scored weight 2 above 1, 4 and 8.)
pub fn example_weight(prototypes: usize, examples: usize) -> f32 {
    if examples == 0 {
        return 1.0;
    }
    (0.5 * prototypes as f32 / examples as f32).max(2.0)
}

/// A labelled story as training sees it: raw embedding (as the encoder returns it), last
/// hidden states and scenario index.
pub struct TrainingExample<'a> {
    pub embedding: &'a [f32],
    pub states: &'a [f32],
    /// Its sentences' embeddings, when it was read by sentence.
    pub sentences: Option<&'a [Vec<f32>]>,
    pub label: usize,
}

/// The features every row starts with: the prepared embedding and the scaled zero-shot scores.
pub fn fixed_features(prepared: &[f32], sims: &[f32]) -> Vec<f32> {
    prepared
        .iter()
        .copied()
        .chain(sims.iter().map(|s| s * SCORE_SCALE))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random numbers in [-1, 1).
    fn noise(seed: u64, n: usize) -> Vec<f32> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    #[test]
    fn a_zero_query_attends_like_mean_pooling() {
        let states = noise(1, 7 * 16);
        let got = combine_attended(&[attend(&states, &[0.0; 16])]);
        let want = crate::embed::pool(&states, 16, crate::embed::Pooling::Mean);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn windows_combine_as_one_softmax_over_all_their_tokens() {
        let (dim, query) = (8, noise(2, 8));
        let states = noise(3, 10 * dim);
        let whole = combine_attended(&[attend(&states, &query)]);
        let (a, b) = states.split_at(4 * dim);
        let parts = combine_attended(&[attend(a, &query), attend(b, &query)]);
        for (w, p) in whole.iter().zip(&parts) {
            assert!((w - p).abs() < 1e-6, "{whole:?} vs {parts:?}");
        }
    }

    #[test]
    fn the_gradient_matches_finite_differences() {
        let layout = Layout {
            classes: 3,
            fixed: 5,
            dim: 6,
        };
        let row = Row {
            fixed: noise(4, 5),
            states: &noise(5, 9 * 6),
            label: 1,
            weight: 0.7,
        };
        let theta: Vec<f32> = noise(6, layout.len()).iter().map(|v| v * 0.5).collect();
        let loss = |theta: &[f32]| -> f64 {
            let head = Head {
                weights: (0..3).map(|c| layout.weights(theta, c).to_vec()).collect(),
                bias: theta[layout.bias()].to_vec(),
                query: theta[layout.query()].to_vec(),
                temperature: 1.0,
            };
            let attended = head.attend(row.states);
            let mut x = row.fixed.clone();
            x.extend_from_slice(&attended);
            let logits: Vec<f64> = (0..3)
                .map(|c| {
                    head.weights[c]
                        .iter()
                        .zip(&x)
                        .map(|(w, x)| (w * x) as f64)
                        .sum::<f64>()
                        + head.bias[c] as f64
                })
                .collect();
            let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = logits.iter().map(|z| (z - max).exp()).sum();
            row.weight as f64 * (max + sum.ln() - logits[row.label])
        };
        let mut grad = vec![0f32; layout.len()];
        row_gradient(&layout, &theta, &row, &mut grad);
        let h = 1e-2f32;
        for i in 0..layout.len() {
            let (mut up, mut down) = (theta.clone(), theta.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (loss(&up) - loss(&down)) / (2.0 * h as f64);
            assert!(
                (numeric - grad[i] as f64).abs() < 2e-3,
                "parameter {i}: analytic {} numeric {numeric}",
                grad[i]
            );
        }
    }

    /// Two classes whose stories carry their class on dimension 0 twice: strongly in a marked
    /// token (dimension 1), and almost as strongly with the opposite sign in an unmarked one
    /// (dimension 2), so the mean keeps only a faint trace of it. Story `i` is class `i % 2`.
    fn marked_stories() -> Vec<Vec<f32>> {
        let dim = 8;
        (0..40)
            .map(|i| {
                let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
                let mut states: Vec<f32> = noise(100 + i as u64, 5 * dim)
                    .iter()
                    .map(|v| v * 0.1)
                    .collect();
                states[dim] += sign;
                states[dim + 1] += 1.0;
                states[3 * dim] -= 0.8 * sign;
                states[3 * dim + 2] += 1.0;
                states
            })
            .collect()
    }

    fn rows(stories: &[Vec<f32>]) -> Vec<Row<'_>> {
        stories
            .iter()
            .enumerate()
            .map(|(i, states)| Row {
                fixed: vec![0.0; 2],
                states,
                label: i % 2,
                weight: 1.0,
            })
            .collect()
    }

    #[test]
    fn the_query_learns_which_token_decides() {
        let stories = marked_stories();
        let head = fit(rows(&stories), 2, 8);
        assert!(
            head.query[1] > head.query[2],
            "query {:?} should favour the marked token",
            head.query
        );
        for (i, s) in stories.iter().enumerate() {
            let attended = head.attend(s);
            let mean = crate::embed::pool(s, 8, crate::embed::Pooling::Mean);
            assert!(
                attended[0].abs() > 2.0 * mean[0].abs(),
                "story {i}: attention should bring out the class: {attended:?} vs {mean:?}"
            );
            let probs = head.probabilities(&[], &[0.0; 2], &attended);
            assert!(probs[i % 2] > 0.5, "story {i}: {probs:?}");
        }
    }

    #[test]
    fn examples_are_weighed_against_their_own_scenario() {
        // Eight examples beside 124 prototypes: together half as heavy as those prototypes.
        assert_eq!(example_weight(124, 8), 7.75);
        // Many examples: never below twice a prototype.
        assert_eq!(example_weight(124, 40), 2.0);
    }

    #[test]
    fn a_head_fits_only_its_own_shapes() {
        // Features: the embedding, one score per scenario, the attention-pooled vector.
        let real = Head {
            weights: vec![vec![0.0; 2 * 8 + 3]; 3],
            bias: vec![0.0; 3],
            query: vec![0.0; 8],
            temperature: 1.0,
        };
        assert!(real.fits(8, 3));
        assert!(!real.fits(9, 3));
        assert!(!real.fits(8, 4));
    }

    #[test]
    fn fitting_does_not_depend_on_the_thread_count() {
        let stories = marked_stories();
        let fit_on = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| fit(rows(&stories), 2, 8))
        };
        assert_eq!(fit_on(1), fit_on(3));
    }
}
