//! Story embedding → scenario scores → verdict.
//!
//! A scenario's score is the mean cosine similarity of the story to its `top_k` closest
//! prototypes. Top-k mean sits between the two obvious choices: `max` lets one odd prototype
//! decide, while a centroid blurs a scenario's varied phrasings (a "lost the tender" story and a
//! "client went another way" story point in different directions) into one average that fits
//! neither well. The best-scoring scenario wins, except that a story that reads like no
//! prototype at all (`min_relevance`), a named scenario scoring below `min_score`, or one
//! beating `other` by less than `min_margin`, yields `other`. A softmax over the scores at
//! `temperature` gives the confidence.

use crate::fewshot::{example_weight, fit, fixed_features, Head, Row, TrainingExample};
use crate::taxonomy::Taxonomy;
use crate::vector::{dot, normalise, softmax};

/// `also` names the best named scenario other than the category when the category is a named
/// scenario too, that second scenario scores at least [`ALSO_MIN_SCORE`] (a typical winning
/// score) and trails the category by at most [`ALSO_MAX_GAP`]. With a few-shot head, whose
/// scores are probabilities, the second scenario needs [`ALSO_MIN_PROBABILITY`] instead.
pub const ALSO_MIN_SCORE: f32 = 0.25;
pub const ALSO_MAX_GAP: f32 = 0.08;
pub const ALSO_MIN_PROBABILITY: f32 = 0.3;

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
    /// A second named scenario the story clearly carries too (see [`ALSO_MIN_SCORE`]).
    pub also: Option<usize>,
    /// The closest prototype or example, with its similarity (for `--explain`).
    pub nearest: Option<Nearest>,
    /// The story's [`Classifier::relevance`] (for `--explain`).
    pub relevance: f32,
    /// The story reads like none of the prototypes (its relevance is below `min_relevance`),
    /// so it is `other` whatever its scores.
    pub off_topic: bool,
    /// Which of the story's sentences (numbered from 0 as [`crate::sentences::split`] cuts
    /// them) reads most like the verdict's scenario. None when the story was not read by
    /// sentence, is off-topic, or was sent to `other` by a rule past a higher-scoring scenario.
    pub evidence: Option<usize>,
}

/// The reference story closest to a classified story.
#[derive(Debug, Clone, PartialEq)]
pub struct Nearest {
    /// `<scenario>#<n>` for the n-th prototype (from 1), `example:<id>` for a user example.
    pub id: String,
    /// Cosine similarity in the classifier's (centred) space.
    pub similarity: f32,
}

/// A labelled user example kept for explanations.
#[derive(Debug, Clone)]
pub struct Example {
    pub id: String,
    pub label: usize,
    /// Centred and unit-length, like the prototypes.
    pub embedding: Vec<f32>,
}

#[derive(Clone)]
pub struct Classifier {
    taxonomy: Taxonomy,
    /// Per scenario, the embeddings of its prototypes (centred and re-normalised when the
    /// taxonomy asks for centring).
    prototypes: Vec<Vec<Vec<f32>>>,
    /// Mean of all prototype embeddings, subtracted from every embedding when centring.
    center: Option<Vec<f32>>,
    /// Every prototype as the model gave it, unit-length and not centred, for
    /// [`Classifier::relevance`].
    uncentred: Vec<Vec<f32>>,
    other: usize,
    head: Option<Head>,
    examples: Vec<Example>,
}

impl Classifier {
    /// A classifier over the embeddings of each scenario's prototypes (one list per scenario,
    /// in taxonomy order).
    pub fn new(taxonomy: Taxonomy, prototypes: Vec<Vec<Vec<f32>>>) -> Classifier {
        let other = taxonomy.other_index();
        let center = taxonomy.classifier.center.then(|| {
            let all: Vec<&Vec<f32>> = prototypes.iter().flatten().collect();
            let dim = all.first().map_or(0, |v| v.len());
            let mut mean = vec![0f32; dim];
            for v in &all {
                for (m, x) in mean.iter_mut().zip(v.iter()) {
                    *m += x / all.len() as f32;
                }
            }
            mean
        });
        let mut c = Classifier {
            taxonomy,
            prototypes: Vec::new(),
            center,
            uncentred: prototypes
                .iter()
                .flatten()
                .map(|p| {
                    let mut p = p.clone();
                    normalise(&mut p);
                    p
                })
                .collect(),
            other,
            head: None,
            examples: Vec::new(),
        };
        c.prototypes = prototypes
            .iter()
            .map(|ps| ps.iter().map(|p| c.comparable(p)).collect())
            .collect();
        c
    }

    pub fn taxonomy(&self) -> &Taxonomy {
        &self.taxonomy
    }

    pub fn taxonomy_mut(&mut self) -> &mut Taxonomy {
        &mut self.taxonomy
    }

    /// A story embedding as the classifier compares it: centred and unit-length.
    pub fn comparable(&self, embedding: &[f32]) -> Vec<f32> {
        let mut v = self.centred(embedding);
        normalise(&mut v);
        v
    }

    /// The embedding minus the prototype mean (unchanged without centring).
    pub fn centred(&self, embedding: &[f32]) -> Vec<f32> {
        match &self.center {
            Some(c) => embedding.iter().zip(c).map(|(x, m)| x - m).collect(),
            None => embedding.to_vec(),
        }
    }

    /// How much a story reads like the prototypes at all: its mean cosine to its `top_k`
    /// closest prototypes, of any scenario, before centring. Centring removes the direction
    /// every career story shares, which is just what sets "hello" or a recipe apart.
    pub fn relevance(&self, embedding: &[f32]) -> f32 {
        let mut v = embedding.to_vec();
        normalise(&mut v);
        let sims = self.uncentred.iter().map(|p| dot(&v, p)).collect();
        top_k_mean(sims, self.taxonomy.classifier.top_k)
    }

    /// Prepared prototype embeddings, per scenario.
    pub fn prototypes(&self) -> &[Vec<Vec<f32>>] {
        &self.prototypes
    }

    pub fn head(&self) -> Option<&Head> {
        self.head.as_ref()
    }

    /// Replaces the few-shot head (None: zero-shot).
    pub fn set_head(&mut self, head: Option<Head>) {
        self.head = head;
    }

    /// Labelled examples searched by explanations (embeddings as `failup embed` gives them).
    pub fn set_examples(&mut self, examples: Vec<(String, usize, Vec<f32>)>) {
        self.examples = examples
            .into_iter()
            .map(|(id, label, e)| Example {
                id,
                label,
                embedding: self.comparable(&e),
            })
            .collect();
    }

    /// Whether a story embedding (as `failup embed` gives it) is one of the labelled examples:
    /// the same text gives cosine 1 in the same precision and above 0.99 in another.
    pub fn is_an_example(&self, embedding: &[f32]) -> bool {
        let v = self.comparable(embedding);
        self.examples.iter().any(|e| dot(&v, &e.embedding) > 0.99)
    }

    /// Similarity of a prepared embedding to every prototype, per scenario. Both sides are
    /// unit-length, so the dot product is the cosine.
    fn prototype_similarities(&self, prepared: &[f32]) -> Vec<Vec<f32>> {
        self.prototypes
            .iter()
            .map(|protos| protos.iter().map(|p| dot(prepared, p)).collect())
            .collect()
    }

    /// Per-scenario top-k means of prototype similarities.
    fn top_k_means(&self, sims: Vec<Vec<f32>>) -> Vec<f32> {
        let k = self.taxonomy.classifier.top_k;
        sims.into_iter().map(|s| top_k_mean(s, k)).collect()
    }

    /// Per-scenario top-k mean similarities for a prepared embedding, leaving out prototype
    /// `skip` = (scenario, index) (for leave-one-out scoring of the prototypes themselves).
    pub fn similarity_scores(&self, prepared: &[f32], skip: Option<(usize, usize)>) -> Vec<f32> {
        self.top_k_means(self.similarities_without(prepared, skip))
    }

    /// [`Classifier::prototype_similarities`] leaving out prototype `skip`, if any.
    fn similarities_without(
        &self,
        prepared: &[f32],
        skip: Option<(usize, usize)>,
    ) -> Vec<Vec<f32>> {
        let mut sims = self.prototype_similarities(prepared);
        if let Some((si, pi)) = skip {
            sims[si].swap_remove(pi);
        }
        sims
    }

    /// True when a story's scores read its sentences (`sentence_weight` above 0), so the
    /// encoder should embed them.
    pub fn reads_sentences(&self) -> bool {
        self.taxonomy.classifier.sentence_weight > 0.0
    }

    /// Zero-shot scores of a prepared story: its top-k mean similarities, blended with the soft
    /// maximum over its sentences of each sentence's own top-k mean (see
    /// [`crate::taxonomy::ClassifierSettings::sentence_weight`]). `sentences` are raw sentence
    /// embeddings; without them the story counts as its own one sentence. `skip` as for
    /// [`Classifier::similarity_scores`].
    pub fn zero_shot_scores(
        &self,
        prepared: &[f32],
        sentences: Option<&[Vec<f32>]>,
        skip: Option<(usize, usize)>,
    ) -> Vec<f32> {
        self.blend(self.similarities_without(prepared, skip), sentences, skip)
    }

    /// The zero-shot scores from a story's prototype similarities `sims` (without prototype
    /// `skip`) and its sentences.
    fn blend(
        &self,
        sims: Vec<Vec<f32>>,
        sentences: Option<&[Vec<f32>]>,
        skip: Option<(usize, usize)>,
    ) -> Vec<f32> {
        self.blend_keeping_sentences(sims, sentences, skip).0
    }

    /// [`Classifier::blend`], with each sentence's own scores (empty when the sentence
    /// reading is off or the story came without its sentences).
    fn blend_keeping_sentences(
        &self,
        sims: Vec<Vec<f32>>,
        sentences: Option<&[Vec<f32>]>,
        skip: Option<(usize, usize)>,
    ) -> (Vec<f32>, Vec<Vec<f32>>) {
        let c = &self.taxonomy.classifier;
        let w = c.sentence_weight;
        let unit_scores = |u: &[Vec<f32>]| -> Vec<f32> {
            u.iter()
                .map(|s| top_k_mean(s.clone(), c.sentence_top_k))
                .collect()
        };
        let per_unit: Vec<Vec<f32>> = match sentences {
            _ if w == 0.0 => Vec::new(),
            Some(s) if !s.is_empty() => s
                .iter()
                .map(|e| unit_scores(&self.similarities_without(&self.comparable(e), skip)))
                .collect(),
            // Without its sentences the story is its own one sentence.
            _ => vec![unit_scores(&sims)],
        };
        let whole = self.top_k_means(sims);
        if w == 0.0 {
            return (whole, Vec::new());
        }
        let scores = whole
            .iter()
            .enumerate()
            .map(|(j, &score)| {
                let pooled = soft_max(per_unit.iter().map(|u| u[j]), c.sentence_temperature);
                (1.0 - w) * score + w * pooled
            })
            .collect();
        match sentences {
            Some(s) if !s.is_empty() => (scores, per_unit),
            // The story stood in for its own one sentence: there is no sentence to name.
            _ => (scores, Vec::new()),
        }
    }

    /// The few-shot head's attention query, when a head is set: the encoder pools each
    /// story's hidden states with it (see [`crate::fewshot`]).
    pub fn query(&self) -> Option<&[f32]> {
        self.head.as_ref().map(|h| h.query.as_slice())
    }

    /// Per-scenario scores for one story: the zero-shot scores, or the few-shot head's logits
    /// when a head is set. `attended` is the story's attention-pooled vector under
    /// [`Classifier::query`]; `sentences` its sentences' embeddings, when it was read by
    /// sentence.
    ///
    /// # Panics
    /// With a head set and `attended` missing: the pipeline pools with the head's query
    /// whenever there is a head, so that would be a bug.
    pub fn raw_scores(
        &self,
        embedding: &[f32],
        attended: Option<&[f32]>,
        sentences: Option<&[Vec<f32>]>,
    ) -> Vec<f32> {
        let prepared = self.comparable(embedding);
        let sims = self.zero_shot_scores(&prepared, sentences, None);
        match &self.head {
            None => sims,
            Some(h) => h.logits(&prepared, &sims, Self::attended(attended)),
        }
    }

    fn attended(attended: Option<&[f32]>) -> &[f32] {
        attended.expect("a few-shot head needs the story's attention-pooled vector")
    }

    /// The closest prototype or example to a prepared embedding, given its prototype
    /// similarities; the first one wins ties.
    fn nearest(&self, prepared: &[f32], sims: &[Vec<f32>]) -> Option<Nearest> {
        enum Source<'a> {
            Prototype(usize, usize),
            Example(&'a str),
        }
        let prototypes = sims.iter().enumerate().flat_map(|(si, row)| {
            row.iter()
                .enumerate()
                .map(move |(pi, &s)| (s, Source::Prototype(si, pi)))
        });
        let examples = self
            .examples
            .iter()
            .map(|e| (dot(prepared, &e.embedding), Source::Example(&e.id)));
        let mut best: Option<(f32, Source)> = None;
        for (s, source) in prototypes.chain(examples) {
            if best.as_ref().is_none_or(|b| s > b.0) {
                best = Some((s, source));
            }
        }
        best.map(|(similarity, source)| Nearest {
            id: match source {
                Source::Prototype(si, pi) => {
                    format!("{}#{}", self.taxonomy.scenarios[si].id, pi + 1)
                }
                Source::Example(id) => format!("example:{id}"),
            },
            similarity,
        })
    }

    /// The verdict for one story embedding; `attended` and `sentences` as for
    /// [`Classifier::raw_scores`].
    pub fn classify(
        &self,
        embedding: &[f32],
        attended: Option<&[f32]>,
        sentences: Option<&[Vec<f32>]>,
    ) -> Verdict {
        let prepared = self.comparable(embedding);
        let sims = self.prototype_similarities(&prepared);
        let nearest = self.nearest(&prepared, &sims);
        let (scores, per_sentence) = self.blend_keeping_sentences(sims, sentences, None);
        let settings = &self.taxonomy.classifier;
        let relevance = self.relevance(embedding);
        let mut v = match &self.head {
            None => decide(scores, self.other, settings, relevance),
            Some(h) => decide_probabilities(
                h.probabilities(&prepared, &scores, Self::attended(attended)),
                self.other,
                settings,
                relevance,
            ),
        };
        v.nearest = nearest;
        // A story sent to `other` by a rule, past a higher score, rests on no sentence of its.
        v.evidence = match v.off_topic || v.margin < 0.0 {
            true => None,
            false => strongest(&per_sentence, v.category),
        };
        v
    }

    /// Fits a head for `classifier` on its own prototypes (scored leave-one-out; their hidden
    /// states per scenario in `prototype_states`) and the labelled `examples`.
    pub fn train_head(
        &self,
        prototype_states: &[Vec<Vec<f32>>],
        examples: &[TrainingExample],
    ) -> Head {
        let classifier = self;
        let mut rows = Vec::new();
        for (si, (protos, states)) in classifier
            .prototypes()
            .iter()
            .zip(prototype_states)
            .enumerate()
        {
            for (pi, (p, s)) in protos.iter().zip(states).enumerate() {
                let sims = classifier.zero_shot_scores(p, None, Some((si, pi)));
                rows.push(Row {
                    fixed: fixed_features(p, &sims),
                    states: s,
                    label: si,
                    weight: 1.0,
                });
            }
        }
        let mut per_scenario = vec![0usize; classifier.prototypes().len()];
        for e in examples {
            per_scenario[e.label] += 1;
        }
        for e in examples {
            let weight = example_weight(
                classifier.prototypes()[e.label].len(),
                per_scenario[e.label],
            );
            let p = classifier.comparable(e.embedding);
            let sims = classifier.zero_shot_scores(&p, e.sentences, None);
            rows.push(Row {
                fixed: fixed_features(&p, &sims),
                states: e.states,
                label: e.label,
                weight,
            });
        }
        let dim = classifier
            .prototypes()
            .iter()
            .flatten()
            .next()
            .map_or(0, Vec::len);
        fit(rows, classifier.taxonomy().scenarios.len(), dim)
    }
}

/// Mean of the `k` largest values (all of them when there are fewer), summed largest first so
/// the result does not depend on the prototypes' order.
fn top_k_mean(mut sims: Vec<f32>, k: usize) -> f32 {
    let k = k.min(sims.len());
    if k == 0 {
        return 0.0;
    }
    if k < sims.len() {
        sims.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    }
    let top = &mut sims[..k];
    top.sort_by(|a, b| b.total_cmp(a));
    top.iter().sum::<f32>() / k as f32
}

/// Which of the sentences (each a row of per-scenario scores) scores highest for `scenario`;
/// the first one wins ties.
fn strongest(per_sentence: &[Vec<f32>], scenario: usize) -> Option<usize> {
    let column: Vec<f32> = per_sentence.iter().map(|u| u[scenario]).collect();
    (!column.is_empty()).then(|| argmax(&column, None))
}

/// `T · ln(mean(exp(x / T)))`: the largest value for a small `T`, the mean for a large one;
/// computed from the largest value so no exponential overflows, and as `exp(d) - 1` and
/// `ln(1 + m)` in f64 so a large `T` still gives the mean (plain `exp` rounds each tiny `d`
/// to 1, which gave the maximum).
fn soft_max(values: impl Iterator<Item = f32> + Clone, t: f32) -> f32 {
    let top = values.clone().fold(f32::NEG_INFINITY, f32::max);
    let t = f64::from(t);
    let (sum, n) = values.fold((0.0f64, 0usize), |(sum, n), x| {
        (sum + (f64::from(x - top) / t).exp_m1(), n + 1)
    });
    (f64::from(top) + t * (sum / n as f64).ln_1p()) as f32
}

/// Applies the decision rule to per-scenario scores of a story with `relevance` (see
/// [`Classifier::relevance`]).
pub fn decide(
    scores: Vec<f32>,
    other: usize,
    settings: &crate::taxonomy::ClassifierSettings,
    relevance: f32,
) -> Verdict {
    let best = argmax(&scores, None);
    let off_topic = relevance < settings.min_relevance;
    let category = if best != other
        && (off_topic
            || scores[best] < settings.min_score
            || scores[best] - scores[other] < settings.min_margin)
    {
        other
    } else {
        best
    };
    let runner_up = argmax(&scores, Some(category));
    let probs = softmax(&scores, settings.temperature);
    let also = second_named(&scores, category, other)
        .filter(|&s| scores[s] >= ALSO_MIN_SCORE && scores[category] - scores[s] <= ALSO_MAX_GAP);
    finish(scores, probs, category, runner_up, also, settings).with_relevance(relevance, off_topic)
}

/// The best-scoring named scenario other than `category`, when `category` is named.
fn second_named(scores: &[f32], category: usize, other: usize) -> Option<usize> {
    if category == other {
        return None;
    }
    (0..scores.len())
        .filter(|&i| i != category && i != other)
        .max_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(b.cmp(&a)))
}

/// The confidence reported for a winner with softmax probability `p`, after the Platt
/// recalibration fitted by `failup calibrate`.
pub fn recalibrate(p: f32, settings: &crate::taxonomy::ClassifierSettings) -> f32 {
    if settings.confidence_slope == 1.0 && settings.confidence_bias == 0.0 {
        return p;
    }
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    let z = settings.confidence_slope * (p / (1.0 - p)).ln() + settings.confidence_bias;
    1.0 / (1.0 + (-z).exp())
}

/// The decision when the scores already are probabilities (a few-shot head): the most
/// probable scenario wins, unless the story is off-topic (as for [`decide`]).
pub fn decide_probabilities(
    probs: Vec<f32>,
    other: usize,
    settings: &crate::taxonomy::ClassifierSettings,
    relevance: f32,
) -> Verdict {
    let off_topic = relevance < settings.min_relevance;
    let category = if off_topic {
        other
    } else {
        argmax(&probs, None)
    };
    let runner_up = argmax(&probs, Some(category));
    let also = second_named(&probs, category, other).filter(|&s| probs[s] >= ALSO_MIN_PROBABILITY);
    finish(probs.clone(), probs, category, runner_up, also, settings)
        .with_relevance(relevance, off_topic)
}

fn finish(
    scores: Vec<f32>,
    probs: Vec<f32>,
    category: usize,
    runner_up: usize,
    also: Option<usize>,
    settings: &crate::taxonomy::ClassifierSettings,
) -> Verdict {
    Verdict {
        category,
        confidence: recalibrate(probs[category], settings),
        runner_up,
        margin: scores[category] - scores[runner_up],
        scores,
        also,
        nearest: None,
        relevance: 1.0,
        off_topic: false,
        evidence: None,
    }
}

impl Verdict {
    fn with_relevance(self, relevance: f32, off_topic: bool) -> Verdict {
        Verdict {
            relevance,
            off_topic,
            ..self
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taxonomy::ClassifierSettings;

    fn settings(min_score: f32, min_margin: f32) -> ClassifierSettings {
        ClassifierSettings {
            top_k: 1,
            sentence_weight: 0.0,
            sentence_top_k: 1,
            sentence_temperature: 0.05,
            temperature: 0.05,
            min_score,
            min_margin,
            min_relevance: -1.0,
            center: false,
            confidence_slope: 1.0,
            confidence_bias: 0.0,
        }
    }

    #[test]
    fn soft_max_runs_from_the_mean_to_the_maximum() {
        let values = [0.1f32, 0.5, 0.2];
        assert!((soft_max(values.iter().copied(), 1e-3) - 0.5).abs() < 2e-3);
        let mean = values.iter().sum::<f32>() / 3.0;
        assert!((soft_max(values.iter().copied(), 1e3) - mean).abs() < 1e-3);
        // A temperature far past the scores' scale is the mean too, not the maximum.
        for t in [1e7, 1e30] {
            assert!(
                (soft_max(values.iter().copied(), t) - mean).abs() < 1e-6,
                "{t}"
            );
        }
        let mid = soft_max(values.iter().copied(), 0.05);
        assert!(mid > mean && mid < 0.5, "{mid}");
        assert!((soft_max(std::iter::once(0.3), 0.05) - 0.3).abs() < 1e-6);
    }

    /// Two scenarios with one prototype each, on the first two axes; no centring.
    fn two_axis_classifier(sentence_weight: f32) -> Classifier {
        let mut t = crate::taxonomy::Taxonomy::builtin();
        t.scenarios.truncate(2);
        t.scenarios[1].id = crate::taxonomy::OTHER.into();
        t.classifier = ClassifierSettings {
            sentence_weight,
            ..settings(-1.0, 0.0)
        };
        Classifier::new(
            t,
            vec![vec![vec![1.0, 0.0, 0.0]], vec![vec![0.0, 1.0, 0.0]]],
        )
    }

    #[test]
    fn one_sentence_can_carry_a_story_its_whole_leans_away_from() {
        // Two sentences of preamble, near neither scenario but leaning to scenario 1, and one
        // sentence squarely in scenario 0: as a whole the story leans to scenario 1.
        let preamble = vec![0.0, 0.3, 0.954];
        let sentences = vec![preamble.clone(), preamble, vec![1.0, 0.0, 0.0]];
        let mut whole = vec![0.3, 0.35, 0.89];
        crate::vector::normalise(&mut whole);
        let c = two_axis_classifier(0.0);
        assert_eq!(c.classify(&whole, None, Some(&sentences)).category, 1);
        let c = two_axis_classifier(0.75);
        let v = c.classify(&whole, None, Some(&sentences));
        assert_eq!(v.category, 0, "{v:?}");
        // Without its sentences, the story is its own one sentence.
        assert_eq!(c.classify(&whole, None, None).category, 1);
    }

    #[test]
    fn scores_blend_the_whole_story_and_the_pooled_sentences() {
        let c = two_axis_classifier(0.75);
        let prepared = c.comparable(&[1.0, 0.0, 0.0]);
        let s = c.zero_shot_scores(&prepared, Some(&[vec![0.0, 1.0, 0.0]]), None);
        // Whole: (1, 0); the one sentence: (0, 1).
        assert!(
            (s[0] - 0.25).abs() < 1e-6 && (s[1] - 0.75).abs() < 1e-6,
            "{s:?}"
        );
    }

    #[test]
    fn best_scenario_wins_when_strong() {
        let v = decide(vec![0.6, 0.4, 0.3], 2, &settings(0.3, 0.0), 1.0);
        assert_eq!((v.category, v.runner_up), (0, 1));
        assert!((v.margin - 0.2).abs() < 1e-6);
        assert!(v.confidence > 0.9);
    }

    #[test]
    fn weak_best_becomes_other() {
        let v = decide(vec![0.25, 0.2, 0.1], 2, &settings(0.3, 0.0), 1.0);
        assert_eq!(v.category, 2);
        assert_eq!(v.runner_up, 0);
        assert!(v.margin < 0.0);
    }

    #[test]
    fn close_to_other_becomes_other() {
        let v = decide(vec![0.50, 0.2, 0.48], 2, &settings(0.3, 0.05), 1.0);
        assert_eq!(v.category, 2);
        let v = decide(vec![0.50, 0.2, 0.40], 2, &settings(0.3, 0.05), 1.0);
        assert_eq!(v.category, 0);
    }

    #[test]
    fn a_story_like_no_prototype_is_other_whatever_its_scores() {
        let s = ClassifierSettings {
            min_relevance: 0.25,
            ..settings(0.3, 0.0)
        };
        let v = decide(vec![0.6, 0.4, 0.3], 2, &s, 0.2);
        assert_eq!((v.category, v.runner_up, v.off_topic), (2, 0, true));
        assert!(v.margin < 0.0);
        let v = decide(vec![0.6, 0.4, 0.3], 2, &s, 0.25);
        assert_eq!((v.category, v.off_topic), (0, false));
        // The same with a few-shot head's probabilities.
        let v = decide_probabilities(vec![0.7, 0.2, 0.1], 2, &s, 0.2);
        assert_eq!((v.category, v.runner_up, v.off_topic), (2, 0, true));
        let v = decide_probabilities(vec![0.7, 0.2, 0.1], 2, &s, 0.3);
        assert_eq!((v.category, v.off_topic), (0, false));
    }

    #[test]
    fn relevance_is_measured_before_centring() {
        // Both prototypes share the first axis and differ on the second. A story off to the
        // third axis, leaning a little to scenario 0, wins scenario 0 once centring removes the
        // shared axis, yet it is like neither prototype.
        let mut t = crate::taxonomy::Taxonomy::builtin();
        t.scenarios.truncate(2);
        t.scenarios[1].id = crate::taxonomy::OTHER.into();
        t.classifier = ClassifierSettings {
            center: true,
            min_relevance: 0.25,
            ..settings(-1.0, -1.0)
        };
        let c = Classifier::new(
            t,
            vec![vec![vec![1.0, 0.2, 0.0]], vec![vec![1.0, -0.2, 0.0]]],
        );
        let off = [0.0, 1.0, 3.0];
        assert!(c.relevance(&off) < 0.1, "{}", c.relevance(&off));
        let v = c.classify(&off, None, None);
        assert!(v.scores[0] > v.scores[1], "{v:?}");
        assert_eq!((v.category, v.off_topic), (1, true));
        let on = [1.0, 0.3, 0.0];
        assert!(c.relevance(&on) > 0.9);
        let v = c.classify(&on, None, None);
        assert_eq!((v.category, v.off_topic), (0, false));
    }

    #[test]
    fn top_k_mean_takes_the_largest_whatever_the_order() {
        assert!((top_k_mean(vec![0.1, 0.9, 0.3, 0.7, 0.5], 2) - 0.8).abs() < 1e-6);
        assert!((top_k_mean(vec![0.5, 0.3], 6) - 0.4).abs() < 1e-6);
        assert_eq!(top_k_mean(vec![0.5], 0), 0.0);
        assert_eq!(top_k_mean(Vec::new(), 3), 0.0);
    }

    #[test]
    fn top_k_mean_scores() {
        let t = crate::taxonomy::Taxonomy::builtin();
        let n = t.scenarios.len();
        let mut protos = vec![vec![vec![0.0, 1.0]]; n];
        protos[0] = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![1.0, 1.0]];
        let mut t2 = t.clone();
        t2.classifier.top_k = 2;
        t2.classifier.center = false;
        t2.classifier.sentence_weight = 0.0;
        let c = Classifier::new(t2, protos);
        let s = c.raw_scores(&[1.0, 0.0], None, None);
        // Closest two prototypes of scenario 0: cos 1.0 and cos 0.7071.
        assert!((s[0] - (1.0 + std::f32::consts::FRAC_1_SQRT_2) / 2.0).abs() < 1e-5);
        assert!(s[1].abs() < 1e-6);
    }
}
