//! Story embedding → scenario scores → verdict.
//!
//! A scenario's score is the mean cosine similarity of the story to its `top_k` closest
//! prototypes. Top-k mean sits between the two obvious choices: `max` lets one odd prototype
//! decide, while a centroid blurs a scenario's varied phrasings (a "lost the tender" story and a
//! "client went another way" story point in different directions) into one average that fits
//! neither well. The best-scoring scenario wins, except that a named scenario scoring below
//! `min_score`, or beating `other` by less than `min_margin`, yields `other`. A softmax over
//! the scores at `temperature` gives the confidence.

use crate::embed::cosine;
use crate::taxonomy::Taxonomy;

/// The classifier's decision for one story. Scenario references are indexes into
/// `Taxonomy::scenarios`.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub category: usize,
    /// Softmax probability of `category` over all scenarios.
    pub confidence: f32,
    /// The highest-scoring scenario other than `category`.
    pub runner_up: usize,
    /// Score of `category` minus score of `runner_up` (negative when the `other` rule overrode
    /// a higher-scoring named scenario).
    pub margin: f32,
    /// One score per scenario, in taxonomy order.
    pub scores: Vec<f32>,
}

pub struct Classifier {
    taxonomy: Taxonomy,
    /// Per scenario, the embeddings of its prototypes.
    prototypes: Vec<Vec<Vec<f32>>>,
    other: usize,
}

impl Classifier {
    /// A classifier over the embeddings of each scenario's prototypes (one list per scenario,
    /// in taxonomy order).
    pub fn new(taxonomy: Taxonomy, prototypes: Vec<Vec<Vec<f32>>>) -> Classifier {
        let other = taxonomy.other_index();
        Classifier {
            taxonomy,
            prototypes,
            other,
        }
    }

    pub fn taxonomy(&self) -> &Taxonomy {
        &self.taxonomy
    }

    /// Per-scenario scores for one story embedding.
    pub fn scores(&self, embedding: &[f32]) -> Vec<f32> {
        let k = self.taxonomy.classifier.top_k;
        self.prototypes
            .iter()
            .map(|protos| {
                let mut sims: Vec<f32> = protos.iter().map(|p| cosine(embedding, p)).collect();
                sims.sort_by(|a, b| b.total_cmp(a));
                let top = &sims[..k.min(sims.len())];
                top.iter().sum::<f32>() / top.len() as f32
            })
            .collect()
    }

    pub fn classify(&self, embedding: &[f32]) -> Verdict {
        decide(
            self.scores(embedding),
            self.other,
            &self.taxonomy.classifier,
        )
    }
}

/// Applies the decision rule to per-scenario scores.
pub fn decide(
    scores: Vec<f32>,
    other: usize,
    settings: &crate::taxonomy::ClassifierSettings,
) -> Verdict {
    let best = argmax(&scores, None);
    let category = if best != other
        && (scores[best] < settings.min_score || scores[best] - scores[other] < settings.min_margin)
    {
        other
    } else {
        best
    };
    let runner_up = argmax(&scores, Some(category));
    let confidence = softmax(&scores, settings.temperature)[category];
    Verdict {
        category,
        confidence,
        runner_up,
        margin: scores[category] - scores[runner_up],
        scores,
    }
}

/// Index of the largest score, skipping `except`; the first one wins ties.
fn argmax(scores: &[f32], except: Option<usize>) -> usize {
    let mut best: Option<usize> = None;
    for (i, &s) in scores.iter().enumerate() {
        if Some(i) == except {
            continue;
        }
        if best.is_none_or(|b| s > scores[b]) {
            best = Some(i);
        }
    }
    best.unwrap_or(0)
}

pub fn softmax(scores: &[f32], temperature: f32) -> Vec<f32> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = scores
        .iter()
        .map(|s| ((s - max) / temperature).exp())
        .collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taxonomy::ClassifierSettings;

    fn settings(min_score: f32, min_margin: f32) -> ClassifierSettings {
        ClassifierSettings {
            top_k: 1,
            temperature: 0.05,
            min_score,
            min_margin,
        }
    }

    #[test]
    fn best_scenario_wins_when_strong() {
        let v = decide(vec![0.6, 0.4, 0.3], 2, &settings(0.3, 0.0));
        assert_eq!((v.category, v.runner_up), (0, 1));
        assert!((v.margin - 0.2).abs() < 1e-6);
        assert!(v.confidence > 0.9);
    }

    #[test]
    fn weak_best_becomes_other() {
        let v = decide(vec![0.25, 0.2, 0.1], 2, &settings(0.3, 0.0));
        assert_eq!(v.category, 2);
        assert_eq!(v.runner_up, 0);
        assert!(v.margin < 0.0);
    }

    #[test]
    fn close_to_other_becomes_other() {
        let v = decide(vec![0.50, 0.2, 0.48], 2, &settings(0.3, 0.05));
        assert_eq!(v.category, 2);
        let v = decide(vec![0.50, 0.2, 0.40], 2, &settings(0.3, 0.05));
        assert_eq!(v.category, 0);
    }

    #[test]
    fn softmax_sums_to_one_and_orders() {
        let p = softmax(&[0.5, 0.4, 0.1], 0.1);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[0] > p[1] && p[1] > p[2]);
    }

    #[test]
    fn top_k_mean_scores() {
        let t = crate::taxonomy::Taxonomy::builtin();
        let n = t.scenarios.len();
        let mut protos = vec![vec![vec![0.0, 1.0]]; n];
        protos[0] = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![1.0, 1.0]];
        let mut t2 = t.clone();
        t2.classifier.top_k = 2;
        let c = Classifier::new(t2, protos);
        let s = c.scores(&[1.0, 0.0]);
        // Closest two prototypes of scenario 0: cos 1.0 and cos 0.7071.
        assert!((s[0] - (1.0 + std::f32::consts::FRAC_1_SQRT_2) / 2.0).abs() < 1e-5);
        assert!(s[1].abs() < 1e-6);
    }
}
