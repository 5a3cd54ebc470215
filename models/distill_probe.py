#!/usr/bin/env python3
"""Dev-time measurement: does distilling a larger model into all-MiniLM-L6-v2 help on real stories?

all-mpnet-base-v2 scores 0.838 on real_dev where the bundled model scores 0.783 (Quality page,
docs/src/quality.md), at a ninth of the speed. This script asks whether the small model can
learn the large one's sense of similarity from unlabelled text, so that the default would gain
quality without losing speed. Nothing it makes is shipped. It reproduces the distillation rows
of the Quality page.

No labels are used in training, so real_dev and dev_stories stay unseen and both are scored
whole (transfer). The unlabelled texts are: the benchmark corpus (whole stories and their
distinct sentences), data/calibration.csv's texts and sentences, the taxonomy's prototypes, the
seed article's sentences and, with --extra, models/probe_data/unlabelled_stories.txt (160
accounts of working life written for this probe, one per line, none of them from real_dev).

The teacher embeds every text once (cached in --cache). The student is trained for --epochs
over batches of 48 texts plus 16 prototypes, AdamW (lr --lr, weight decay 0.01, warm-up over
10% of the steps then linear decay), texts cut at 128 tokens. The loss is the mean squared
error between the batch's student and teacher cosine matrices, so the student copies which
texts the teacher finds close, in its own 384 dimensions. Scoring is finetune_probe.py's: failup's zero-shot rule without calibration (frozen: real_dev
0.768, dev_stories 0.812).

Set-up: the virtualenv of finetune_probe.py, and a local sentence-transformers copy of
all-mpnet-base-v2 (see docs/src/model.md on where to get one you trust).
Run, from the repository root (on 2 cores: about 7 minutes for the teacher once, then 15-20
minutes per run):
    /tmp/ft-venv/bin/python models/distill_probe.py /path/to/all-mpnet-base-v2 --extra
"""
import argparse
import csv
import os
import pickle
import random
import sys

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

from finetune_probe import base_model_dir, prototypes, read_labelled, report, scores, sentences

EXTRA = "models/probe_data/unlabelled_stories.txt"


def unlabelled_texts(args):
    with open(args.bench, encoding="utf-8") as f:
        bench = [r["text"] for r in csv.DictReader(f)]
    calibration = [t for t, _ in read_labelled("data/calibration.csv")]
    with open(args.seed_article, encoding="utf-8") as f:
        texts = bench + calibration + [t for t, _ in prototypes("data/taxonomy.toml")]
        texts += sentences(f.read())
    for story in bench + calibration:
        texts += sentences(story)
    if args.extra:
        with open(EXTRA, encoding="utf-8") as f:
            for story in filter(None, (line.strip() for line in f)):
                texts += [story] + sentences(story)
    # Each distinct text once, in first-seen order, so a run is repeatable.
    return [t for t in dict.fromkeys(texts) if len(t.split()) >= 3]


def teacher_embeddings(texts, teacher_dir, cache):
    known = {}
    if os.path.exists(cache):
        with open(cache, "rb") as f:
            known = pickle.load(f)
    missing = [t for t in texts if t not in known]
    if missing:
        teacher = SentenceTransformer(teacher_dir, device="cpu")
        teacher.max_seq_length = 256
        found = teacher.encode(missing, batch_size=32, normalize_embeddings=True)
        known.update(zip(missing, found))
        with open(cache, "wb") as f:
            pickle.dump(known, f)
    return torch.tensor(np.stack([known[t] for t in texts]))


def distil(student, texts, targets, prototype_rows, args, batch=48, prototypes_per_batch=16):
    student.max_seq_length = 128
    student.train()
    optimiser = torch.optim.AdamW(student.parameters(), lr=args.lr, weight_decay=0.01)
    total = len(texts) // batch * args.epochs
    warm = 0.1 * total + 1
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (total - s) / total)
    )
    rng = random.Random(args.seed)
    for _ in range(total):
        picked = rng.sample(range(len(texts)), batch) + rng.sample(prototype_rows, prototypes_per_batch)
        features = student.tokenize([texts[i] for i in picked])
        e = torch.nn.functional.normalize(student(features)["sentence_embedding"], dim=1)
        t = targets[picked]
        loss = torch.nn.functional.mse_loss(e @ e.T, t @ t.T)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    student.eval()
    student.max_seq_length = 256


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("teacher", help="sentence-transformers folder of the larger model")
    ap.add_argument("--extra", action="store_true", help=f"also train on {EXTRA}")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--cache", default="/tmp/failup-teacher.pkl")
    ap.add_argument("--bench", default="../shared/bench/corpus.csv")
    ap.add_argument("--seed-article", default="../shared/seed/failing-upward.txt")
    ap.add_argument("--real-dev", default="../shared/eval/real_dev.csv")
    ap.add_argument("--dev", default="../shared/eval/dev_stories.csv")
    args = ap.parse_args()
    torch.set_num_threads(2)

    texts = unlabelled_texts(args)
    protos = prototypes("data/taxonomy.toml")
    proto_text = {t for t, _ in protos}
    prototype_rows = [i for i, t in enumerate(texts) if t in proto_text]
    print(f"{len(texts)} unlabelled texts; {args.epochs} epoch(s), "
          f"lr {args.lr}, seed {args.seed}", file=sys.stderr)
    targets = teacher_embeddings(texts, args.teacher, args.cache)
    # Seeded before the student is built: building it draws from the generator too.
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    student = SentenceTransformer(base_model_dir(), device="cpu")
    distil(student, texts, targets, prototype_rows, args)
    real, dev = read_labelled(args.real_dev), read_labelled(args.dev)
    report("real_dev", np.array([l for _, l in real]), scores(student, protos, real))
    report("dev_stories", np.array([l for _, l in dev]), scores(student, protos, dev))


if __name__ == "__main__":
    main()
