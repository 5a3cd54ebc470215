//! Fitting the confidence temperature (by log-loss) and the `other` rule (by macro-F1) on
//! labelled stories, and measuring calibration (expected calibration error, reliability).

use crate::classify::decide;
use crate::eval::evaluate;
use crate::taxonomy::ClassifierSettings;
use crate::vector::softmax;

/// Mean negative log-likelihood of the gold labels under softmax(raw / t).
fn log_loss(raw: &[Vec<f32>], gold: &[usize], t: f32) -> f64 {
    let total: f64 = raw
        .iter()
        .zip(gold)
        .map(|(r, &g)| -(softmax(r, t)[g].max(1e-12) as f64).ln())
        .sum();
    total / raw.len().max(1) as f64
}

/// The temperature with the lowest log-loss, searched on a log grid from 0.001 to 10.
pub fn fit_temperature(raw: &[Vec<f32>], gold: &[usize]) -> f32 {
    let mut best = (f64::INFINITY, 1.0f32);
    for i in 0..=400 {
        let t = 10f32.powf(-3.0 + 4.0 * i as f32 / 400.0);
        let l = log_loss(raw, gold, t);
        if l < best.0 {
            best = (l, t);
        }
    }
    best.1
}

/// The `other` rule (min_score, min_margin) with the best macro-F1 on zero-shot scores (with
/// each story's relevance, which `min_relevance` judges as it stands); ties go to the rule
/// that overrides fewest stories (the smallest thresholds).
pub fn fit_other_rule(
    scores: &[Vec<f32>],
    relevance: &[f32],
    gold: &[usize],
    other: usize,
    base: &ClassifierSettings,
    labels: &[String],
) -> (f32, f32) {
    assert!(scores.len() == gold.len() && relevance.len() == gold.len());
    let mut best = (f64::NEG_INFINITY, 0.0f32, 0.0f32);
    for si in 0..=30 {
        let min_score = -0.10 + 0.01 * si as f32;
        for mi in 0..=20 {
            let min_margin = -0.05 + 0.005 * mi as f32;
            let s = ClassifierSettings {
                min_score,
                min_margin,
                ..*base
            };
            let pairs: Vec<(usize, usize)> = scores
                .iter()
                .zip(relevance)
                .zip(gold)
                .map(|((sc, &r), &g)| (g, decide(sc.clone(), other, &s, r).category))
                .collect();
            let f1 = evaluate(labels, &pairs).macro_f1;
            if f1 > best.0 + 1e-9 {
                best = (f1, min_score, min_margin);
            }
        }
    }
    (best.1, best.2)
}

/// Platt scaling of the winner's probability: (slope, bias) minimising the log-loss of
/// `sigmoid(slope * logit(p) + bias)` against whether the winner was right. Gradient descent
/// from (1, 0), so the fit is deterministic.
pub fn fit_platt(confidence: &[f32], correct: &[bool]) -> (f32, f32) {
    let xs: Vec<f64> = confidence
        .iter()
        .map(|&p| {
            let p = (p as f64).clamp(1e-6, 1.0 - 1e-6);
            (p / (1.0 - p)).ln()
        })
        .collect();
    let n = xs.len().max(1) as f64;
    let (mut a, mut b) = (1.0f64, 0.0f64);
    for _ in 0..5000 {
        let (mut ga, mut gb) = (0.0, 0.0);
        for (x, &y) in xs.iter().zip(correct) {
            let p = 1.0 / (1.0 + (-(a * x + b)).exp());
            let g = p - if y { 1.0 } else { 0.0 };
            ga += g * x;
            gb += g;
        }
        a -= 0.1 * ga / n;
        b -= 0.1 * gb / n;
    }
    (a as f32, b as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A story that reads like no prototype is `other` under every rule searched, so the fit
    /// judges the rules on the rest. Story 1 is such a story; scored as it stands, it would
    /// call for a margin of 0.025 to send it to `other`.
    #[test]
    fn the_other_rule_is_fitted_with_the_relevance_rule_in_place() {
        let base = ClassifierSettings {
            min_relevance: 0.25,
            ..ClassifierSettings::default()
        };
        let labels: Vec<String> = ["a", "other"].map(String::from).to_vec();
        let scores = vec![vec![0.5, 0.1], vec![0.30, 0.28], vec![0.30, 0.27]];
        let gold = [0, 1, 0];
        let fit =
            |relevance: [f32; 3]| fit_other_rule(&scores, &relevance, &gold, 1, &base, &labels);
        assert_eq!(fit([0.5, 0.1, 0.5]), (-0.10, -0.05));
        let (_, margin) = fit([0.5; 3]);
        assert!((margin - 0.025).abs() < 1e-6, "{margin}");
    }

    #[test]
    fn temperature_fit_softens_overconfident_scores() {
        // Scores that rank right 70% of the time but are far apart: a small temperature is
        // overconfident, the fitted one must be larger and have lower log-loss.
        let raw: Vec<Vec<f32>> = (0..10)
            .map(|i| {
                if i < 7 {
                    vec![0.5, 0.3]
                } else {
                    vec![0.3, 0.5]
                }
            })
            .collect();
        let gold = vec![0usize; 10];
        let t = fit_temperature(&raw, &gold);
        assert!(t > 0.1 && log_loss(&raw, &gold, t) < log_loss(&raw, &gold, 0.01));
        // The best temperature makes the winner's probability the accuracy, 0.7.
        let p = softmax(&raw[0], t)[0];
        assert!((p - 0.7).abs() < 0.02, "{p}");
    }
}
