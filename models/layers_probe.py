#!/usr/bin/env python3
"""Dev-time measurement: do the encoder's earlier layers read real stories better?

all-MiniLM-L6-v2 was trained for similarity on its last layer's mean-pooled states, but the
earlier layers keep more of a text's surface: its words and phrasing. If the verdict of a
real story sits in plain words ("they gave it to the new hire"), a mix of layers might find
it where the last layer alone does not. Each text's vector here is the unit-length
concatenation of weighted, unit-length mean-pooled states of chosen layers (0 is the
embedding layer, 6 the last), used for prototypes, stories and sentences alike.

Scoring is finetune_probe.py's zero-shot rule without calibration, with each story's whole
reading taken as the mean of its sentences (as failup does). Nothing is fitted, so every
figure is transfer. Nothing it makes is shipped; it reproduces the "earlier layers" row of
the Quality page.

Set-up: the virtualenv of finetune_probe.py. Run, from the repository root (about 2 minutes):
    /tmp/ft-venv/bin/python models/layers_probe.py
"""

import numpy as np
import torch
from sklearn.metrics import f1_score
from transformers import AutoModel, AutoTokenizer

from finetune_probe import base_model_dir, prototypes, read_labelled, sentences

MIXES = [{6: 1}, {5: 1}, {4: 1}, {3: 1}, {6: 1, 5: 1}, {6: 1, 4: 1}, {6: 1, 3: 1},
         {6: 1, 5: 0.5}, {6: 1, 4: 0.5}, {6: 1, 2: 0.5}, {6: 1, 5: 1, 4: 1}, {6: 1, 0: 0.5}]


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def pooled_layers(tokenizer, model, texts, batch=64):
    """Mean-pooled states of every layer: an array of texts x 7 x 384."""
    out = []
    for i in range(0, len(texts), batch):
        features = tokenizer(texts[i : i + batch], padding=True, truncation=True,
                             max_length=256, return_tensors="pt")
        with torch.no_grad():
            states = model(**features, output_hidden_states=True).hidden_states
        mask = features["attention_mask"][..., None].float()
        out.append(np.stack([((h * mask).sum(1) / mask.sum(1)).numpy() for h in states], 1))
    return np.concatenate(out)


def mixed(states, mix):
    return unit(np.concatenate([w * unit(states[:, layer]) for layer, w in mix.items()], -1))


def macro_f1(protos, labels, story, mix):
    p = mixed(protos, mix)
    centre = p.mean(0)
    p = unit(p - centre)

    def top_k_mean(x, k):
        cos = unit(np.atleast_2d(x) - centre) @ p.T
        return np.stack([np.sort(cos[:, labels == j], 1)[:, ::-1][:, :k].mean(1)
                         for j in range(4)], 1)

    sent, counts, gold = story
    sent = mixed(sent, mix)
    predicted, start = [], 0
    for n in counts:
        own = sent[start : start + n]
        start += n
        s = top_k_mean(own, 10)
        top = s.max(0)
        soft = top + 0.05 * np.log(np.exp((s - top) / 0.05).mean(0))
        whole = top_k_mean(unit(own.mean(0)), 6)[0]
        predicted.append((0.25 * whole + 0.75 * soft).argmax())
    return f1_score(gold, predicted, average="macro")


def main():
    torch.set_num_threads(2)
    tokenizer = AutoTokenizer.from_pretrained(base_model_dir())
    model = AutoModel.from_pretrained(base_model_dir()).eval()
    taxonomy = prototypes("data/taxonomy.toml")
    protos = pooled_layers(tokenizer, model, [t for t, _ in taxonomy])
    labels = np.array([l for _, l in taxonomy])
    sets = {"real_dev": "../shared/eval/real_dev.csv", "dev_stories": "../shared/eval/dev_stories.csv",
            "calibration": "data/calibration.csv"}
    stories = {}
    for name, path in sets.items():
        rows = read_labelled(path)
        split = [sentences(t) for t, _ in rows]
        stories[name] = (pooled_layers(tokenizer, model, [s for st in split for s in st]),
                         [len(s) for s in split], [l for _, l in rows])
    for mix in MIXES:
        figures = "  ".join(f"{name} {macro_f1(protos, labels, stories[name], mix):.3f}"
                            for name in sets)
        print(f"layers {mix}: {figures}")


if __name__ == "__main__":
    main()
