"""How much do frozen MiniLM features know about each demo task? A linear probe, fitted to convergence.

    HUT_DATA=../shared/data python scripts/probe_minilm.py [tasks=mrpc,cola,stsb] [n_train=800] [n_eval=400]

Encodes the demo's subsets (same seeds and sizes as `make demo`) with the frozen, mean-pooled MiniLM
and fits scikit-learn's logistic regression (classification) or ridge regression (STS-B) on them,
for a few regularisation strengths. This is the ceiling of a trained head on an *unadapted* encoder:
where it sits at the majority class, a one-epoch PEFT run cannot be expected to do much better, as
it barely moves the encoder. Prints one line per (task, C) with the dev score and the majority baseline.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import torch
from omegaconf import OmegaConf
from scipy.stats import pearsonr
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import matthews_corrcoef

from hut.data.glue import GLUE_TASKS, load_glue
from hut.models import load_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def encode(lm, examples: list[dict], max_length: int = 128) -> np.ndarray:
    """The mean-pooled last hidden states (the classifier's input under ``pooling: mean``)."""
    out = []
    for i in range(0, len(examples), 64):
        b = examples[i : i + 64]
        first = [e["sentence1"] for e in b]
        second = [e["sentence2"] for e in b] if b[0].get("sentence2") is not None else None
        enc = lm.tokenizer(first, second, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        with torch.no_grad():
            out.append(lm.model.bert(**enc).pooler_output)
    return torch.cat(out).numpy()


def main(argv: list[str]) -> None:
    opts = {"tasks": "mrpc,cola,stsb", "n_train": "800", "n_eval": "400"}
    for a in argv:
        k, _, v = a.partition("=")
        if k not in opts:
            sys.exit(f"unknown argument {a!r}; known: {', '.join(opts)}")
        opts[k] = v
    data_dir = os.environ.get("HUT_DATA") or sys.exit("set HUT_DATA to the data directory (docs/data.md)")
    cfg = OmegaConf.to_container(OmegaConf.load(os.path.join(ROOT, "configs", "model", "minilm.yaml")))
    lm = load_model(cfg, "classification")
    lm.model.eval()
    for task in opts["tasks"].split(","):
        tr = load_glue(task, "train", source="local", data_dir=data_dir, max_samples=int(opts["n_train"]), seed=0)
        dv = load_glue(task, "dev", source="local", data_dir=data_dir, max_samples=int(opts["n_eval"]), seed=0)
        xtr, xdv = encode(lm, tr), encode(lm, dv)
        ytr, ydv = np.array([e["label"] for e in tr]), np.array([e["label"] for e in dv])
        for c in (0.1, 1.0, 10.0):
            if GLUE_TASKS[task].kind == "regression":
                pred = Ridge(alpha=1.0 / c).fit(xtr, ytr).predict(xdv)
                print(f"{task} C={c:g}: pearson {pearsonr(pred, ydv)[0]:.4f}")
                continue
            pred = LogisticRegression(C=c, max_iter=5000).fit(xtr, ytr).predict(xdv)
            majority = np.bincount(ydv).max() / len(ydv)
            print(f"{task} C={c:g}: accuracy {np.mean(pred == ydv):.4f}, matthews {matthews_corrcoef(ydv, pred):.4f}, "
                  f"majority class {majority:.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
