//! Scoring predictions against gold labels: accuracy, macro-F1, per-class precision, recall
//! and F1, and the confusion matrix.

use std::fmt::Write as _;

use serde::Serialize;
use unicode_normalization_alignments::char::is_combining_mark;
use unicode_normalization_alignments::UnicodeNormalization;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClassMetrics {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Gold stories with this label.
    pub support: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EvalReport {
    /// Stories scored (rows with a label and non-empty text).
    pub n: usize,
    pub accuracy: f64,
    /// Unweighted mean of the per-class F1 scores.
    pub macro_f1: f64,
    pub per_class: Vec<ClassMetrics>,
    /// `confusion.matrix[gold][predicted]`, rows and columns in `confusion.labels` order.
    pub confusion: Confusion,
    /// How the predictions were made (zero-shot, few-shot, cross-validation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Expected calibration error of `confidence` over 10 equal-width bins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ece: Option<f64>,
    /// The reliability table behind `ece` (non-empty bins only).
    pub reliability: Vec<ReliabilityBin>,
    /// The most confident mistakes (`--errors N`).
    pub errors: Vec<Mistake>,
}

/// One scored story.
#[derive(Debug, Clone)]
pub struct Scored {
    pub id: String,
    pub text: String,
    pub gold: usize,
    pub predicted: usize,
    pub confidence: f32,
}

/// A wrong prediction, for `--errors`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Mistake {
    pub id: String,
    pub gold: String,
    pub predicted: String,
    pub confidence: f64,
    pub text: String,
}

/// Cross-validation over story indexes: for each fold, `fit` gets the indexes of every story
/// outside it and `predict` scores each story inside it with that model, so no story is ever
/// scored by a model trained on it. Returns one prediction per story.
pub fn cross_validate_indexes<M, P>(
    n: usize,
    folds: &[usize],
    k: usize,
    mut fit: impl FnMut(&[usize]) -> M,
    mut predict: impl FnMut(&M, usize) -> P,
) -> Vec<P> {
    let mut out: Vec<Option<P>> = (0..n).map(|_| None).collect();
    for f in 0..k {
        let train: Vec<usize> = (0..n).filter(|&i| folds[i] != f).collect();
        let model = fit(&train);
        for i in (0..n).filter(|&i| folds[i] == f) {
            out[i] = Some(predict(&model, i));
        }
    }
    out.into_iter()
        .map(|p| p.expect("every story is in a fold"))
        .collect()
}

/// How two copies of one story are known as the same: its words, whatever their case and
/// accents and whatever spacing and punctuation lie between them, since a copy that differs
/// only in those ("!" added, curly quotes for straight ones) reads nearly the same to the
/// model, and the same to BERT's tokenizer where only case or accents differ ("é" is "e"). A
/// text with no letter or digit keeps its punctuation, so "???" and "!!!" stay apart.
pub fn copy_key(text: &str) -> String {
    let plain: String = text
        .nfd()
        .map(|(c, _)| c)
        .filter(|&c| !is_combining_mark(c))
        .collect();
    words_key(&plain)
}

/// [`copy_key`] with accents kept: how copies were known before accents were set aside.
pub fn words_key(text: &str) -> String {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    if words.is_empty() {
        return text.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    words.join(" ")
}

/// For each story, the index of its first copy in `texts` (by [`copy_key`]); its own index when
/// it is the first or only one.
pub fn first_copies<S: AsRef<str>>(texts: &[S]) -> Vec<usize> {
    let mut first = std::collections::HashMap::new();
    (0..texts.len())
        .map(|i| *first.entry(copy_key(texts[i].as_ref())).or_insert(i))
        .collect()
}

/// Assigns each story to one of `k` folds so that every label is spread evenly over the folds
/// (stratified); the order within a label is shuffled with `seed` (a small xorshift, so the
/// folds are the same on every platform). Copies of a story (`first_copy`, from
/// [`first_copies`]) share its first copy's fold, so no copy is scored by a model that learnt
/// another; without copies the folds are as they were before copies were looked for.
pub fn stratified_folds(gold: &[usize], first_copy: &[usize], k: usize, seed: u64) -> Vec<usize> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut folds = vec![0; gold.len()];
    let labels = gold.iter().copied().max().map_or(0, |m| m + 1);
    let mut offset = 0;
    for l in 0..labels {
        let mut idx: Vec<usize> = (0..gold.len())
            .filter(|&i| gold[i] == l && first_copy[i] == i)
            .collect();
        for i in (1..idx.len()).rev() {
            let j = (next() % (i as u64 + 1)) as usize;
            idx.swap(i, j);
        }
        for (j, &i) in idx.iter().enumerate() {
            folds[i] = (j + offset) % k.max(1);
        }
        offset += idx.len();
    }
    for i in 0..folds.len() {
        folds[i] = folds[first_copy[i]];
    }
    folds
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Confusion {
    pub labels: Vec<String>,
    pub matrix: Vec<Vec<usize>>,
}

/// Scores `(gold, predicted)` pairs of indexes into `labels`.
pub fn evaluate(labels: &[String], pairs: &[(usize, usize)]) -> EvalReport {
    let k = labels.len();
    let mut matrix = vec![vec![0usize; k]; k];
    for &(g, p) in pairs {
        matrix[g][p] += 1;
    }
    let n = pairs.len();
    let correct: usize = (0..k).map(|i| matrix[i][i]).sum();
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let per_class: Vec<ClassMetrics> = (0..k)
        .map(|c| {
            let tp = matrix[c][c];
            let predicted: usize = (0..k).map(|g| matrix[g][c]).sum();
            let support: usize = matrix[c].iter().sum();
            let precision = ratio(tp, predicted);
            let recall = ratio(tp, support);
            let f1 = if precision + recall == 0.0 {
                0.0
            } else {
                2.0 * precision * recall / (precision + recall)
            };
            ClassMetrics {
                label: labels[c].clone(),
                precision,
                recall,
                f1,
                support,
            }
        })
        .collect();
    let macro_f1 = if k == 0 {
        0.0
    } else {
        per_class.iter().map(|m| m.f1).sum::<f64>() / k as f64
    };
    EvalReport {
        n,
        accuracy: ratio(correct, n),
        macro_f1,
        per_class,
        confusion: Confusion {
            labels: labels.to_vec(),
            matrix,
        },
        mode: None,
        ece: None,
        reliability: Vec::new(),
        errors: Vec::new(),
    }
}

impl EvalReport {
    /// A plain-text rendering for the terminal.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        if let Some(m) = &self.mode {
            let _ = writeln!(s, "mode      {m}");
        }
        let _ = writeln!(s, "stories   {}", self.n);
        let _ = writeln!(s, "accuracy  {:.3}", self.accuracy);
        let _ = writeln!(s, "macro-F1  {:.3}", self.macro_f1);
        s += &self.unlabelled_note();
        s.push('\n');
        let w = (self.per_class.iter())
            .map(|m| m.label.len())
            .max()
            .unwrap_or(5)
            .max(9);
        let _ = writeln!(s, "{:<w$}  precision  recall     f1  support", "class");
        for m in &self.per_class {
            let _ = writeln!(
                s,
                "{:<w$}  {:>9.3}  {:>6.3}  {:>5.3}  {:>7}",
                m.label, m.precision, m.recall, m.f1, m.support
            );
        }
        s += &self.confusion_table(w);
        s += &self.reliability_table();
        s += &self.mistakes();
        s
    }

    /// A note when some scenario has no labelled story, which caps macro-F1.
    fn unlabelled_note(&self) -> String {
        let unlabelled: Vec<&str> = (self.per_class.iter())
            .filter(|m| m.support == 0)
            .map(|m| m.label.as_str())
            .collect();
        if unlabelled.is_empty() {
            return String::new();
        }
        let k = self.per_class.len();
        format!(
            "note: no story is labelled {}; macro-F1 still averages all {k} scenarios, so here \
             it is at most {:.3}\n",
            unlabelled.join(", "),
            (k - unlabelled.len()) as f64 / k as f64
        )
    }

    /// The confusion matrix, its first column `w` wide.
    fn confusion_table(&self, w: usize) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "\nconfusion (rows: gold, columns: predicted)");
        let cw = (self.confusion.labels.iter())
            .map(|l| l.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let _ = write!(s, "{:<w$}", "");
        for l in &self.confusion.labels {
            let _ = write!(s, "  {l:>cw$}");
        }
        s.push('\n');
        for (l, row) in self.confusion.labels.iter().zip(&self.confusion.matrix) {
            let _ = write!(s, "{l:<w$}");
            for c in row {
                let _ = write!(s, "  {c:>cw$}");
            }
            s.push('\n');
        }
        s
    }

    /// The ECE and its reliability bins, where confidences were scored.
    fn reliability_table(&self) -> String {
        let mut s = String::new();
        let Some(ece) = self.ece else {
            return s;
        };
        let _ = writeln!(
            s,
            "\ncalibration: expected calibration error (ECE) {ece:.3}"
        );
        let _ = writeln!(s, "confidence   stories  mean conf  accuracy");
        for b in &self.reliability {
            let _ = writeln!(
                s,
                "{:.1}-{:.1}      {:>7}  {:>9.3}  {:>8.3}",
                b.from, b.to, b.count, b.mean_confidence, b.accuracy
            );
        }
        s
    }

    /// The most confident mistakes, where they were asked for.
    fn mistakes(&self) -> String {
        let mut s = String::new();
        if self.errors.is_empty() {
            return s;
        }
        let _ = writeln!(s, "\nmost confident mistakes");
        for m in &self.errors {
            let _ = writeln!(
                s,
                "{} gold {} predicted {} (confidence {:.4}): {}",
                crate::input::printable(&m.id),
                m.gold,
                m.predicted,
                m.confidence,
                one_line(&m.text)
            );
        }
        s
    }
}

/// A story whole, on one line of the mistakes list: its line breaks as ⏎, other characters a
/// terminal would act on as escapes.
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out += " ⏎ ";
            }
            c if crate::input::unsafe_to_show(c) => out += &c.escape_unicode().to_string(),
            c => out.push(c),
        }
    }
    out
}

/// One bin of a reliability table.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReliabilityBin {
    /// Lower and upper edge of the confidence bin.
    pub from: f64,
    pub to: f64,
    pub count: usize,
    pub mean_confidence: f64,
    pub accuracy: f64,
}

/// Expected calibration error over 10 equal-width confidence bins, and the bins.
pub fn calibration_error(confidence: &[f32], correct: &[bool]) -> (f64, Vec<ReliabilityBin>) {
    let n = confidence.len().max(1) as f64;
    let mut bins = Vec::new();
    let mut ece = 0.0;
    for b in 0..10 {
        let (from, to) = (b as f64 / 10.0, (b + 1) as f64 / 10.0);
        let idx: Vec<usize> = (0..confidence.len())
            .filter(|&i| {
                let c = confidence[i] as f64;
                c >= from && (c < to || (b == 9 && c <= 1.0))
            })
            .collect();
        if idx.is_empty() {
            continue;
        }
        let m = idx.len() as f64;
        let mean_confidence = idx.iter().map(|&i| confidence[i] as f64).sum::<f64>() / m;
        let accuracy = idx.iter().filter(|&&i| correct[i]).count() as f64 / m;
        ece += m / n * (mean_confidence - accuracy).abs();
        bins.push(ReliabilityBin {
            from,
            to,
            count: idx.len(),
            mean_confidence,
            accuracy,
        });
    }
    (ece, bins)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_of_a_story_share_a_fold() {
        let texts = [
            "They gave it to Sam.",
            "a",
            "b",
            "  they GAVE it\nto sam. ",
            "c",
            "d",
            "They gave it to \u{201c}Sam\u{201d}!",
            "e",
            "They gave it to Sam, then.",
        ];
        let gold = [0, 0, 0, 1, 1, 0, 0, 1, 0];
        let first = first_copies(&texts);
        // A word added ("then") makes another story; case, spacing and punctuation do not.
        assert_eq!(first, [0, 1, 2, 0, 4, 5, 0, 7, 8]);
        for seed in 0..20 {
            let folds = stratified_folds(&gold, &first, 3, seed);
            assert_eq!(folds[3], folds[0], "seed {seed}: {folds:?}");
            assert_eq!(folds[6], folds[0], "seed {seed}: {folds:?}");
        }
    }

    /// BERT's tokenizer reads "é" as "e", so a copy with accents added or dropped is the same
    /// story to the model; precomposed or combining, an accent is set aside.
    #[test]
    fn copies_differing_in_accents_are_one_story() {
        let texts = [
            "My résumé went to the café",
            "my resume went to the cafe",
            "MY RE\u{301}SUME\u{301} WENT TO THE CAFÉ",
            "My résumé went to the café again",
        ];
        assert_eq!(first_copies(&texts), [0, 0, 0, 3]);
        // Letters that are not an accented Latin letter stay as they are.
        assert_eq!(
            first_copies(&["straße", "strasse", "日本", "日本"]),
            [0, 1, 2, 2]
        );
    }

    #[test]
    fn texts_without_words_are_told_apart_by_their_punctuation() {
        assert_eq!(first_copies(&["???", "!!!", " ??? ", "Why?"]), [0, 1, 0, 3]);
    }

    #[test]
    fn without_copies_the_folds_are_stratified_and_unchanged() {
        let gold: Vec<usize> = (0..40).map(|i| i % 4).collect();
        let alone: Vec<usize> = (0..40).collect();
        let folds = stratified_folds(&gold, &alone, 5, 42);
        for l in 0..4 {
            let mut per_fold = [0; 5];
            for i in (0..40).filter(|&i| gold[i] == l) {
                per_fold[folds[i]] += 1;
            }
            assert_eq!(per_fold, [2; 5], "label {l}: {folds:?}");
        }
        // The folds of seed 42 behind the published cross-validated figures.
        assert_eq!(&folds[..8], &[0, 3, 3, 3, 2, 0, 0, 2]);
    }

    #[test]
    fn a_mistake_is_listed_on_one_line() {
        assert_eq!(
            one_line("Dear all,\r\nthey hired\noutside.\u{1b}[2J"),
            "Dear all, ⏎ they hired ⏎ outside.\\u{1b}[2J"
        );
    }

    #[test]
    fn perfectly_calibrated_has_zero_ece() {
        let conf = [0.95f32; 20];
        let correct: Vec<bool> = (0..20).map(|i| i != 0).collect();
        let (ece, bins) = calibration_error(&conf, &correct);
        assert!(ece.abs() < 1e-6, "{ece}");
        assert_eq!(bins.len(), 1);
    }

    #[test]
    fn overconfident_has_large_ece() {
        let conf = [0.99f32; 10];
        let correct: Vec<bool> = (0..10).map(|i| i < 5).collect();
        let (ece, _) = calibration_error(&conf, &correct);
        assert!((ece - 0.49).abs() < 1e-6);
    }

    #[test]
    fn a_scenario_without_stories_is_pointed_out() {
        let labels: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let r = evaluate(&labels, &[(0, 0), (1, 1)]);
        assert!((r.accuracy - 1.0).abs() < 1e-9);
        assert!((r.macro_f1 - 0.5).abs() < 1e-9);
        let text = r.to_text();
        assert!(
            text.contains("no story is labelled c, d; macro-F1 still averages all 4 scenarios, so here it is at most 0.500"),
            "{text}"
        );
        assert!(!evaluate(&labels, &[(0, 0), (1, 1), (2, 2), (3, 3)])
            .to_text()
            .contains("note:"));
    }

    #[test]
    fn metrics_on_a_small_example() {
        let labels: Vec<String> = ["a", "b"].map(String::from).to_vec();
        // gold a: predicted a, a, b; gold b: predicted b, a
        let r = evaluate(&labels, &[(0, 0), (0, 0), (0, 1), (1, 1), (1, 0)]);
        assert_eq!(r.n, 5);
        assert!((r.accuracy - 0.6).abs() < 1e-9);
        let a = &r.per_class[0];
        assert!((a.precision - 2.0 / 3.0).abs() < 1e-9);
        assert!((a.recall - 2.0 / 3.0).abs() < 1e-9);
        let b = &r.per_class[1];
        assert!((b.precision - 0.5).abs() < 1e-9 && (b.recall - 0.5).abs() < 1e-9);
        assert!((r.macro_f1 - (2.0 / 3.0 + 0.5) / 2.0).abs() < 1e-9);
        assert_eq!(r.confusion.matrix, vec![vec![2, 1], vec![1, 1]]);
    }

    #[test]
    fn class_never_predicted_has_zero_f1() {
        let labels: Vec<String> = ["a", "b"].map(String::from).to_vec();
        let r = evaluate(&labels, &[(0, 0), (1, 0)]);
        assert_eq!(r.per_class[1].f1, 0.0);
        assert_eq!(r.per_class[1].support, 1);
    }
}
