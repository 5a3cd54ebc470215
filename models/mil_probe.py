#!/usr/bin/env python3
"""Dev-time measurement: fine-tuning all-MiniLM-L6-v2 through failup's own reading of a story.

The contrastive recipes of finetune_probe.py tune whole-story embeddings, cut at 128 tokens,
to cluster by label. failup reads a story otherwise: each sentence against the scenarios'
prototypes, then a soft maximum over sentences, so the sentence that says what went wrong
decides. This script tunes the encoder through that reading: the loss is the cross-entropy of
the zero-shot scores themselves (scores / --tau as logits), so the gradient reaches the
sentences that carry each story's verdict and the prototypes they should be near. The
prototypes' embeddings are taken with the model being tuned, without gradient, at the start of
each epoch (they are 482 texts; a gradient through them every step would cost several times
the stories'), and so is their centre.

Scoring is whiten_probe.py's: failup's zero-shot rule without calibration, the whole reading
the mean of the story's sentences. `transfer` tunes on data/calibration.csv and dev_stories
(and, with --written, models/probe_data/written_long_stories.csv) and scores real_dev whole;
`cv` adds four folds of real_dev (seeds fixed) and scores the fifth; with --save-folds it keeps
each fold's model and rows, for scoring in failup itself (export_onnx.py, quantize_int8.py,
`failup calibrate` on data/calibration.csv and the fold's train.csv, `failup eval` on its
heldout.csv). dev_stories is scored only where it was not tuned on (`transfer --no-dev`).
`final` tunes on everything, real_dev whole included, and saves the model (--save DIR); only
a cross-validated figure can score it. Nothing it makes is shipped.

Set-up: the virtualenv of finetune_probe.py. Run, from the repository root (on 2 cores, about
a minute per epoch over 300 stories):
    /tmp/ft-venv/bin/python models/mil_probe.py transfer
    /tmp/ft-venv/bin/python models/mil_probe.py cv --seed 42
The whole-recipe row of the Quality page (calibrated on stories the encoder never saw):
    /tmp/ft-venv/bin/python models/mil_probe.py cv --seed 2 --no-calibration-set --inner \
        --save-folds /tmp/folds
  then, for each K in 0-4, with the virtualenv of export_onnx.py:
    python models/export_onnx.py /tmp/folds/foldK /tmp/onnx/foldK
    python models/quantize_int8.py /tmp/onnx/foldK
    failup calibrate data/calibration.csv /tmp/folds/foldK/train.csv --model /tmp/onnx/foldK \
        -o /tmp/profileK.json
    failup classify /tmp/folds/foldK/heldout.csv --model /tmp/onnx/foldK \
        --profile /tmp/profileK.json --keep-columns label -o /tmp/predK.csv
  and macro-F1 over the five prediction files together (the base model: the same two failup
  commands without --model).
"""
import argparse
import csv
import random

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold

from finetune_probe import (LABELS, base_model_dir, prototypes, read_labelled, sentences,
                            warmed_adamw)


def embed(model, texts, grad):
    """Unit vectors of texts (mean-pooled, as the model's own pooling)."""
    if not grad:
        with torch.no_grad():
            return embed(model, texts, True)
    features = model.tokenize(texts)
    return torch.nn.functional.normalize(model(features)["sentence_embedding"], dim=1)


def story_scores(sent, p, p_label, centre):
    """failup's zero-shot rule on one story's sentence vectors (differentiable)."""
    def top_k_mean(x, k):
        cos = torch.nn.functional.normalize(x - centre, dim=1) @ p.T
        return torch.stack([cos[:, p_label == j].topk(k, dim=1).values.mean(1)
                            for j in range(len(LABELS))], 1)

    whole = top_k_mean(torch.nn.functional.normalize(sent.mean(0, keepdim=True), dim=1), 6)[0]
    each = top_k_mean(sent, 10)
    pooled = 0.05 * (torch.logsumexp(each / 0.05, 0) - np.log(len(sent)))
    return 0.25 * whole + 0.75 * pooled


def anchors(model, protos):
    p = embed(model, [t for t, _ in protos], False)
    centre = p.mean(0)
    return torch.nn.functional.normalize(p - centre, dim=1), centre


def predict(model, protos, p_label, rows):
    model.eval()
    p, centre = anchors(model, protos)
    out = []
    for text, _ in rows:
        out.append(int(story_scores(embed(model, sentences(text), False), p, p_label, centre)
                       .argmax()))
    return np.array(out)


def tune(model, protos, p_label, rows, args):
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    model.max_seq_length = 64
    counts = np.bincount([label for _, label in rows], minlength=len(LABELS))
    weight = torch.tensor(len(rows) / (len(LABELS) * counts), dtype=torch.float32)
    step = warmed_adamw(model, args.lr, args.epochs * (len(rows) // args.batch))
    rng = random.Random(args.seed)
    split = [sentences(text) for text, _ in rows]
    for _ in range(args.epochs):
        model.eval()
        p, centre = anchors(model, protos)
        model.train()
        order = list(range(len(rows)))
        rng.shuffle(order)
        for b in range(len(rows) // args.batch):
            picked = order[b * args.batch:(b + 1) * args.batch]
            flat = [s for i in picked for s in split[i]]
            vectors = embed(model, flat, True)
            logits, start = [], 0
            for i in picked:
                n = len(split[i])
                logits.append(story_scores(vectors[start:start + n], p, p_label, centre))
                start += n
            gold = torch.tensor([rows[i][1] for i in picked])
            step(torch.nn.functional.cross_entropy(torch.stack(logits) / args.tau, gold,
                                                   weight=weight))
    model.eval()
    model.max_seq_length = 256


def save_fold(model, folder, train, test):
    model.save(folder)
    with open("../shared/eval/real_dev.csv", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        rows, fields = list(reader), reader.fieldnames
    for name, picked in [("train.csv", train), ("heldout.csv", test)]:
        with open(f"{folder}/{name}", "w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows[i] for i in picked)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["base", "transfer", "cv", "final"])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--tau", type=float, default=0.02)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--written", action="store_true")
    ap.add_argument("--no-dev", action="store_true")
    ap.add_argument("--no-calibration-set", action="store_true",
                    help="leave data/calibration.csv out of tuning, to calibrate on it after")
    ap.add_argument("--inner", action="store_true",
                    help="cv: tune on three quarters of the training folds only; --save-folds "
                         "then writes the last quarter, unseen, as train.csv, to calibrate on")
    ap.add_argument("--save", metavar="DIR", help="final: where to write the tuned model")
    ap.add_argument("--save-folds", metavar="DIR",
                    help="cv: keep each fold's tuned model in DIR/foldK, with the real_dev rows "
                         "to calibrate on (train.csv: those it was tuned on, or with --inner "
                         "those it was not) and those it scores (heldout.csv)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    protos = prototypes("data/taxonomy.toml")
    p_label = torch.tensor([label for _, label in protos])
    real = read_labelled("../shared/eval/real_dev.csv")
    dev = read_labelled("../shared/eval/dev_stories.csv")
    base = ([] if args.no_calibration_set else read_labelled("data/calibration.csv")) + (
        [] if args.no_dev else dev)
    if args.written:
        with open("models/probe_data/written_long_stories.csv", encoding="utf-8") as f:
            base += [(r["text"], LABELS.index(r["label"])) for r in csv.DictReader(f)]
    y = np.array([label for _, label in real])

    def fresh():
        return SentenceTransformer(base_model_dir(), device="cpu")

    def f1(gold, pred):
        return f"{f1_score(gold, pred, average='macro'):.3f}"

    if args.mode == "base":
        model = fresh()
        print("frozen: real_dev", f1(y, predict(model, protos, p_label, real)),
              "dev_stories", f1([l for _, l in dev], predict(model, protos, p_label, dev)))
    elif args.mode == "final":
        model = fresh()
        tune(model, protos, p_label, base + real, args)
        model.save(args.save)
        print(f"tuned on {len(base) + len(real)} stories, written to {args.save}")
    elif args.mode == "transfer":
        model = fresh()
        tune(model, protos, p_label, base, args)
        print("transfer: real_dev", f1(y, predict(model, protos, p_label, real)),
              "dev_stories" + (" (tuned on)" if not args.no_dev else ""),
              f1([l for _, l in dev], predict(model, protos, p_label, dev)))
    else:
        pred = np.zeros(len(y), int)
        folds = StratifiedKFold(5, shuffle=True, random_state=args.seed)
        for k, (train, test) in enumerate(folds.split(np.zeros(len(y)), y)):
            model = fresh()
            calibrate_on = train
            if args.inner:
                inner = StratifiedKFold(4, shuffle=True, random_state=args.seed)
                keep, held = next(inner.split(np.zeros(len(train)), y[train]))
                train, calibrate_on = train[keep], train[held]
            tune(model, protos, p_label, base + [real[i] for i in train], args)
            pred[test] = predict(model, protos, p_label, [real[i] for i in test])
            if args.save_folds:
                save_fold(model, f"{args.save_folds}/fold{k}", calibrate_on, test)
            print(f"fold {k}: real_dev {f1(y[test], pred[test])}", flush=True)
        print(f"cv seed {args.seed}: real_dev", f1(y, pred))


if __name__ == "__main__":
    main()
