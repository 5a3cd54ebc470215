#!/usr/bin/env python3
"""Dev-time measurement: do label-free corrections of the embedding space help on real stories?

Sentence embeddings share a few dominant directions, and a common remedy in the literature is
to take them out before comparing: whitening (scaling every principal direction to unit
variance, here with shrinkage lam) or removing the top d principal directions. Both need only
unlabelled text, so they could be shipped without fitting anything on real_dev. The space is
estimated on failup's prototypes alone, on the prototypes plus the sentences of
models/probe_data/unlabelled_stories.txt, or on those plus data/calibration.csv and the
development set; the centre is that set's mean. A last variant subtracts from each scenario's
score its mean over the unlabelled stories. The "hubness" variant (cross-domain similarity local
scaling, as used to match word vectors across languages) lowers every cosine to a prototype by
alpha times that prototype's mean cosine to its K closest unlabelled sentences, so a prototype
that sits close to everything stops winning for every story. A further section leaves the space
alone and weights each sentence in the soft maximum by where it sits in its story (later
sentences, earlier ones, or both ends favoured): a real post's verdict often closes it. The
next drops, by cross-validation on real_dev, the prototypes its training folds' errors
lean on. The next adds prototype coverage to each scenario's score: how well the story's
sentences match many of its prototypes, not only the few closest. The last scores clauses
beside sentences: a long sentence cut before "but", "so", "because", "and then" and the like,
at a dash or a colon, so that a verdict sharing its sentence with a side remark is read alone.

Scoring is finetune_probe.py's zero-shot rule without calibration, with each story's whole
reading taken as the mean of its sentences (as failup does), on the transformed vectors.
Nothing it makes is shipped; it reproduces the "whitening" row of the Quality page.

Set-up: the virtualenv of finetune_probe.py. Run, from the repository root (about 4 minutes):
    /tmp/ft-venv/bin/python models/whiten_probe.py
"""

import re

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from sklearn.metrics import f1_score

from finetune_probe import base_model_dir, prototypes, read_labelled, sentences


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def embed_sets(model):
    def emb(texts):
        return model.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True)

    sets = {
        "real": read_labelled("../shared/eval/real_dev.csv"),
        "dev": read_labelled("../shared/eval/dev_stories.csv"),
        "cal": read_labelled("data/calibration.csv"),
    }
    with open("models/probe_data/unlabelled_stories.txt", encoding="utf-8") as f:
        sets["unl"] = [(line.strip(), -1) for line in f if line.strip()]
    out = {}
    for name, rows in sets.items():
        split = [sentences(t) for t, _ in rows]
        out[name] = (emb([s for story in split for s in story]), [len(s) for s in split],
                     np.array([label for _, label in rows]))
    return out


def scores(data, p, p_label, transform, hub=0.0, place=None, extra=None):
    """extra: per story, more vectors that join its soft maximum but not its whole reading."""
    sent, counts, _ = data
    p = unit(transform(p))

    def top_k_mean(x, k):
        cos = unit(transform(np.atleast_2d(x))) @ p.T - hub
        return np.stack([np.sort(cos[:, p_label == j], 1)[:, ::-1][:, :k].mean(1)
                         for j in range(4)], 1)

    starts = np.cumsum([0] + counts)
    whole = top_k_mean(unit(np.array([sent[a:b].mean(0) for a, b in zip(starts, starts[1:])])), 6)
    each = top_k_mean(sent, 10)
    pooled = []
    for i, (a, b) in enumerate(zip(starts, starts[1:])):
        s = each[a:b]
        if extra is not None and len(extra[i]):
            s = np.vstack([s, top_k_mean(extra[i], 10)])
        top = s.max(0)
        # place(n): each of n sentences' weight in the soft maximum (equal by default).
        w = np.ones(len(s)) if place is None else place(len(s))
        w = (w / w.sum())[:, None]
        pooled.append(top + 0.05 * np.log((w * np.exp((s - top) / 0.05)).sum(0)))
    return 0.25 * whole + 0.75 * np.array(pooled)


def main():
    torch.set_num_threads(2)
    model = SentenceTransformer(base_model_dir(), device="cpu")
    protos = prototypes("data/taxonomy.toml")
    p = model.encode([t for t, _ in protos], batch_size=64, convert_to_numpy=True,
                     normalize_embeddings=True)
    p_label = np.array([label for _, label in protos])
    data = embed_sets(model)

    def f1(name, transform, hub):
        s = scores(data[name], p, p_label, transform, hub)
        return f1_score(data[name][2], s.argmax(1), average="macro")

    def show(label, transform, hub=0.0):
        print(f"{label:45s} real_dev {f1('real', transform, hub):.3f}  "
              f"dev_stories {f1('dev', transform, hub):.3f}")

    show("centred on the prototypes (the baseline)", lambda x, c=p.mean(0): x - c)
    pools = {
        "prototypes": p,
        "prototypes + unlabelled": np.vstack([p, data["unl"][0]]),
        "prototypes + unlabelled + calibration + dev": np.vstack(
            [p, data["unl"][0], data["cal"][0], data["dev"][0]]),
    }
    for name, x in pools.items():
        c = x.mean(0)
        _, s, vt = np.linalg.svd(x - c, full_matrices=False)
        variance = s**2 / len(x)
        show(f"{name}: centre", lambda v, c=c: v - c)
        for d in [1, 2, 3, 5, 8, 12, 20]:
            u = vt[:d]
            show(f"  remove top {d}", lambda v, c=c, u=u: (v - c) - ((v - c) @ u.T) @ u)
        for rel in [0.03, 0.1, 0.3, 1, 3]:
            m = vt.T @ np.diag(1 / np.sqrt(variance + rel * variance.mean())) @ vt
            show(f"  whiten, lam {rel} x mean variance", lambda v, c=c, m=m: (v - c) @ m)
    base = lambda x, c=p.mean(0): x - c
    offset = scores(data["unl"], p, p_label, base).mean(0)
    for name in ["real", "dev"]:
        s = scores(data[name], p, p_label, base) - offset
        print(f"scores less their unlabelled mean, {name}: "
              f"{f1_score(data[name][2], s.argmax(1), average='macro'):.3f}")
    to_unlabelled = unit(p - p.mean(0)) @ unit(data["unl"][0] - p.mean(0)).T
    for k in [10, 50, 200]:
        near = np.sort(to_unlabelled, 1)[:, ::-1][:, :k].mean(1)
        for alpha in [0.25, 0.5, 1.0]:
            hub = alpha * near
            show(f"hubness: K {k}, alpha {alpha}", lambda x, c=p.mean(0): x - c, hub)
    places = {
        "later": lambda at: at,
        "earlier": lambda at: 1 - at,
        "both ends": lambda at: np.abs(2 * at - 1),
    }
    for name, where in places.items():
        for g in [0.5, 1, 2, 4]:
            place = lambda n, g=g, where=where: np.exp(g * where(np.arange(n) / max(n - 1, 1)))
            s = {k: scores(data[k], p, p_label, base, place=place) for k in ["real", "dev"]}
            print(f"sentences weighted by place, {name} favoured, e^({g} x place): "
                  f"real_dev {f1_score(data['real'][2], s['real'].argmax(1), average='macro'):.3f}"
                  f"  dev_stories {f1_score(data['dev'][2], s['dev'].argmax(1), average='macro'):.3f}")
    prune_by_cv(data, p, p_label)
    coverage(data, p, p_label)
    clauses(model, data, p, p_label)


def coverage(data, p, p_label):
    """Blends the baseline score with each scenario's coverage: the mean of its top k
    prototypes' best matches among the story's sentences. A story that touches several sides
    of a scenario (an opening, someone else given it, being told why) covers more of its
    prototypes than one with a single sentence near a few. Nothing is fitted on real_dev."""
    centre = p.mean(0)
    pc = unit(p - centre)
    for k in [20, 30, 50, 80]:
        for a in [0.25, 0.5, 0.75]:
            line = f"coverage, top {k}, {a} x the baseline:"
            for name in ["real", "dev", "cal"]:
                sent, counts, y = data[name]
                starts = np.cumsum([0] + list(counts))
                cos = unit(sent - centre) @ pc.T
                best = np.array([cos[a0:b0].max(0) for a0, b0 in zip(starts, starts[1:])])
                cover = np.stack([np.sort(best[:, p_label == j], 1)[:, ::-1][:, :k].mean(1)
                                  for j in range(4)], 1)
                s = a * scores(data[name], p, p_label, lambda x: x - centre) + (1 - a) * cover
                line += f"  {name} {f1_score(y, s.argmax(1), average='macro'):.3f}"
            print(line)


CLAUSE_CUT = re.compile(
    r",\s+(?=(?:but|and then|so|yet|because|while|although|though|which|then|only|except)\b)"
    r"|\s+[\u2014\u2013-]{1,2}\s+|:\s+|\s+but\s+")


def clauses(model, data, p, p_label):
    """Scores each story on its sentences plus the clauses of those that cut (pieces of at
    least min_words words; a sentence that does not cut adds nothing). The whole reading stays
    the mean of the sentences. Nothing is fitted on real_dev."""
    files = {"real": "../shared/eval/real_dev.csv", "dev": "../shared/eval/dev_stories.csv",
             "cal": "data/calibration.csv"}
    centre = p.mean(0)
    for min_words in [3, 5]:
        line = f"sentences and their clauses of {min_words}+ words:"
        for name, path in files.items():
            y = data[name][2]
            extra = []
            for text, _ in read_labelled(path):
                pieces = []
                for s in sentences(text):
                    cut = [c.strip() for c in CLAUSE_CUT.split(s) if c and c.strip()]
                    cut = [c for c in cut if len(c.split()) >= min_words]
                    pieces += cut if len(cut) > 1 else []
                extra.append(model.encode(pieces, convert_to_numpy=True, normalize_embeddings=True)
                             if pieces else np.zeros((0, p.shape[1])))
            s = scores(data[name], p, p_label, lambda x: x - centre, extra=extra)
            line += f"  {name} {f1_score(y, s.argmax(1), average='macro'):.3f}"
        print(line)


def prune_by_cv(data, p, p_label):
    """Drops the prototypes that the training folds' errors lean on, and scores the held-out
    fold without them (5-fold CV on real_dev, seeds 42, 1, 2). A prototype is charged each
    time it is among the 10 closest of a wrongly predicted scenario to a training story's
    sentences, credited each time it is among the gold scenario's, and dropped when its
    charges pass its credits by `limit`. The training set is four folds, calibration.csv and
    the development set; the centre is recomputed on what is kept."""
    from sklearn.model_selection import StratifiedKFold

    def subset(name, idx):
        sent, counts, y = data[name]
        starts = np.cumsum([0] + list(counts))
        rows = [sent[starts[i]:starts[i + 1]] for i in idx]
        return np.concatenate(rows), [len(r) for r in rows], y[idx]

    def charges(sets):
        charge = np.zeros(len(p))
        centre = p.mean(0)
        for sent, counts, y in sets:
            pred = scores((sent, counts, y), p, p_label, lambda x: x - centre).argmax(1)
            cos = unit(sent - centre) @ unit(p - centre).T
            starts = np.cumsum([0] + list(counts))
            for i, (a, b) in enumerate(zip(starts, starts[1:])):
                best = cos[a:b].max(0)
                for j, sign in [(pred[i], 1), (y[i], -1)]:
                    if j == y[i] and sign == 1:
                        continue
                    mine = np.where(p_label == j)[0]
                    charge[mine[np.argsort(-best[mine])[:10]]] += sign
        return charge

    y = data["real"][2]
    everyone = np.arange(len(y))
    for limit in [1, 2, 3]:
        for seed in [42, 1, 2]:
            pred = np.zeros(len(y), int)
            folds = StratifiedKFold(5, shuffle=True, random_state=seed)
            for train, test in folds.split(everyone, y):
                cal, dev = data["cal"], data["dev"]
                keep = charges([subset("real", train), cal, dev]) < limit
                centre = p[keep].mean(0)
                s = scores(subset("real", test), p[keep], p_label[keep], lambda x: x - centre)
                pred[test] = s.argmax(1)
            print(f"prototypes pruned by the training folds' errors, limit {limit}, seed {seed}: "
                  f"real_dev CV {f1_score(y, pred, average='macro'):.3f}")


if __name__ == "__main__":
    main()
