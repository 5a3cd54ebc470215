#!/usr/bin/env python3
"""Dev-time measurement: do word counts add to failup's zero-shot scores on real stories?

Nothing this script makes is shipped. It reproduces the "word-count model beside the scores"
row of the Quality page (docs/src/quality.md).

A TF-IDF logistic regression (words and word pairs) is fitted on data/calibration.csv and four
folds of real_dev, and its log-probabilities are added, with a weight, to failup's own scores
(the score_* columns of `failup classify`, as shipped); the best total wins. The weight and
the regression's strength are chosen inside each training part by a second, inner 5-fold CV,
so the held-out fold is scored by nothing that saw it. Folds are stratified, seeds 42, 1, 2.

Set-up: a Python with scikit-learn and SciPy (the reference virtualenv of
benches/reference_fast_modes.py has both), and a release build. Run, from the repository root
(about a minute):
    cargo build --release
    PYTHON models/lexical_probe.py ../shared/eval/real_dev.csv
"""
import collections
import csv
import os
import random
import subprocess
import sys
import tempfile

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

LABELS = ["passed_over", "pivot_regret", "lost_pitch", "other"]
STRENGTHS = [3, 10, 30, 100]
WEIGHTS = [0.0, 0.005, 0.01, 0.02, 0.03, 0.05]


def classified(path, work):
    """Texts, failup's four scores and gold labels of a labelled CSV, in file order."""
    out = os.path.join(work, os.path.basename(path) + ".out.csv")
    subprocess.run(["target/release/failup", "classify", path, "-o", out, "-q",
                    "--keep-columns", "label"], check=True)
    texts = {r["id"]: r["text"] for r in csv.DictReader(open(path, encoding="utf-8"))}
    rows = list(csv.DictReader(open(out, encoding="utf-8")))
    scores = np.array([[float(r["score_" + l]) for l in LABELS] for r in rows])
    return [texts[r["id"]] for r in rows], scores, [r["label"] for r in rows]


def folds(labels, seed, k=5):
    by = collections.defaultdict(list)
    for i, l in enumerate(labels):
        by[l].append(i)
    rng, fold = random.Random(seed), [0] * len(labels)
    for l in sorted(by):
        idx = by[l][:]
        rng.shuffle(idx)
        for j, i in enumerate(idx):
            fold[i] = j % k
    return fold


def word_log_probs(train_texts, train_labels, texts, strength):
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, stop_words="english")
    model = LogisticRegression(C=strength, max_iter=5000)
    model.fit(vec.fit_transform(train_texts), train_labels)
    order = [list(model.classes_).index(l) for l in LABELS]
    return model.predict_log_proba(vec.transform(texts))[:, order]


def fused_f1(scores, log_probs, weight, gold):
    pred = [LABELS[j] for j in (scores + weight * log_probs).argmax(1)]
    return f1_score(gold, pred, average="macro")


def cross_validate(real, extra, seed):
    """Pooled predictions on real (texts, scores, labels), the setting chosen per fold."""
    texts, scores, gold = real
    fold, pred, chosen = folds(gold, seed), [None] * len(gold), []
    for k in range(5):
        train = [i for i in range(len(gold)) if fold[i] != k]
        test = [i for i in range(len(gold)) if fold[i] == k]
        inner = folds([gold[i] for i in train], seed + 1000)
        best = None
        for strength in STRENGTHS:
            lp = np.zeros((len(train), 4))
            for j in range(5):
                fit = [t for n, t in enumerate(train) if inner[n] != j]
                held = [n for n in range(len(train)) if inner[n] == j]
                lp[held] = word_log_probs([texts[i] for i in fit] + extra[0],
                                          [gold[i] for i in fit] + extra[1],
                                          [texts[train[n]] for n in held], strength)
            for weight in WEIGHTS:
                f1 = fused_f1(scores[train], lp, weight, [gold[i] for i in train])
                if best is None or f1 > best[0]:
                    best = (f1, strength, weight)
        _, strength, weight = best
        chosen.append((strength, weight))
        lp = word_log_probs([texts[i] for i in train] + extra[0], [gold[i] for i in train] + extra[1],
                            [texts[i] for i in test], strength)
        for i, j in zip(test, (scores[test] + weight * lp).argmax(1)):
            pred[i] = LABELS[j]
    return f1_score(gold, pred, average="macro"), chosen


def main():
    real_dev = sys.argv[1]
    with tempfile.TemporaryDirectory() as work:
        real = classified(real_dev, work)
        calibration = classified("data/calibration.csv", work)
    print(f"failup's scores alone (best score wins): {fused_f1(real[1], 0 * real[1], 0, real[2]):.3f}")
    for seed in (42, 1, 2):
        f1, chosen = cross_validate(real, (calibration[0], calibration[2]), seed)
        print(f"seed {seed}: scores + word counts, CV macro-F1 {f1:.3f}; (C, weight) per fold {chosen}")


if __name__ == "__main__":
    main()
