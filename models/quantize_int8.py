#!/usr/bin/env python3
"""Dev-time tool: make models/all-MiniLM-L6-v2/model.int8.onnx, failup's fast mode
(`--precision int8`), from the committed fp32 model.onnx.

Users never run this: the result is committed. It is kept so anyone can check or redo it.

Set-up (once, in a throwaway virtualenv):
    python3 -m venv /tmp/q-venv
    /tmp/q-venv/bin/pip install onnx onnxruntime 'numpy<2'
Run (from the repository root):
    /tmp/q-venv/bin/python models/quantize_int8.py

How: ONNX Runtime's dynamic quantization of the MatMul layers, weights int8 with one scale
per output channel (per-tensor scales lose too much on this model), activations uint8
quantized at run time (DynamicQuantizeLinear + MatMulInteger, the combination rten runs
fastest). `reduce_range` keeps weights to 7 bits, so CPUs without AVX-512 VNNI cannot
saturate in their int16 pair sums and every x86-64 CPU gives the same answers.
The script ends by printing the lowest and mean cosine between fp32 and int8 sentence
embeddings on a few texts, as a sanity check; failup's tests hold the int8 model to its
documented bound against the reference embeddings.
"""
from pathlib import Path

import numpy as np
import onnxruntime
from onnxruntime.quantization import QuantType, quantize_dynamic

DIR = Path(__file__).resolve().parent / "all-MiniLM-L6-v2"


def main() -> None:
    src, dst = DIR / "model.onnx", DIR / "model.int8.onnx"
    quantize_dynamic(
        str(src),
        str(dst),
        op_types_to_quantize=["MatMul"],
        per_channel=True,
        reduce_range=True,
        weight_type=QuantType.QInt8,
    )
    # Sanity check on token ids of different lengths (pooled like failup does).
    rng = np.random.default_rng(7)
    fp32 = onnxruntime.InferenceSession(str(src))
    int8 = onnxruntime.InferenceSession(str(dst))
    cosines = []
    for length in (8, 40, 128, 256):
        ids = np.concatenate([[101], rng.integers(1000, 29000, length - 2), [102]])[None, :]
        feed = {
            "input_ids": ids.astype(np.int64),
            "attention_mask": np.ones_like(ids, dtype=np.int64),
            "token_type_ids": np.zeros_like(ids, dtype=np.int64),
        }
        a = fp32.run(None, feed)[0].mean(1)[0]
        b = int8.run(None, feed)[0].mean(1)[0]
        cosines.append(float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)))
    print(f"wrote {dst} ({dst.stat().st_size / 1e6:.1f} MB)")
    print(f"cosine fp32 vs int8: lowest {min(cosines):.4f}, mean {np.mean(cosines):.4f}")


if __name__ == "__main__":
    main()
