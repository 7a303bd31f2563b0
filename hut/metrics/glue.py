"""GLUE metrics, computed offline.

``evaluate.load("glue", ...)`` fetches its metric script from the Hugging Face hub at run time, so
it fails on offline machines (CI, the demo, clusters without internet). The formulas are short and
standard, so they are computed here with numpy/scipy/scikit-learn, which match the GLUE metric
script: accuracy, binary F1 of the positive class (MRPC/QQP), Matthews correlation (CoLA), Pearson
and Spearman correlation (STS-B).

``score`` is the paper's metric for the task (Table 1): CoLA Matthews, STS-B Pearson, all the others
accuracy (MRPC included); each task's metrics live in its spec (``hut.data.glue.GLUE_TASKS``).
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import f1_score, matthews_corrcoef

from hut.data.glue import get_spec

# How tables name each metric.
METRIC_LABELS = {"accuracy": "accuracy", "f1": "F1", "matthews": "Matthews corr.", "pearson": "Pearson corr.",
                 "spearman": "Spearman corr."}


def _as_1d(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    return a


def accuracy(predictions, labels) -> float:
    p, y = _as_1d(predictions, "predictions"), _as_1d(labels, "labels")
    return float(np.mean(p == y)) if len(y) else 0.0


def f1_binary(predictions, labels, positive: int = 1) -> float:
    """F1 of the positive class; 0.0 when it is undefined (no true and no predicted positives)."""
    p, y = _as_1d(predictions, "predictions"), _as_1d(labels, "labels")
    if len(y) == 0:
        return 0.0
    with warnings.catch_warnings():  # degenerate inputs are expected (e.g. an untrained model)
        warnings.simplefilter("ignore")
        return float(f1_score(y, p, pos_label=positive, average="binary", zero_division=0.0))


def matthews(predictions, labels) -> float:
    """Matthews correlation; 0.0 when undefined (constant predictions or labels), never NaN."""
    p, y = _as_1d(predictions, "predictions"), _as_1d(labels, "labels")
    if len(y) == 0:
        return 0.0
    with warnings.catch_warnings():  # constant predictions/labels warn; the value is 0
        warnings.simplefilter("ignore")
        value = float(matthews_corrcoef(y, p))
    return value if math.isfinite(value) else 0.0


def _correlation(fn, predictions, labels) -> float:
    p = _as_1d(predictions, "predictions").astype(np.float64)
    y = _as_1d(labels, "labels").astype(np.float64)
    # Undefined for fewer than 2 points or a constant input: report 0.0 rather than NaN, so a
    # degenerate (e.g. collapsed) model scores 0 in the tables and selection never sees NaN.
    if len(y) < 2 or np.ptp(p) == 0 or np.ptp(y) == 0:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(fn(p, y)[0])
    return value if math.isfinite(value) else 0.0


def pearson(predictions, labels) -> float:
    return _correlation(pearsonr, predictions, labels)


def spearman(predictions, labels) -> float:
    return _correlation(spearmanr, predictions, labels)


_FUNCS = {"accuracy": accuracy, "f1": f1_binary, "matthews": matthews, "pearson": pearson, "spearman": spearman}


def glue_metrics(task: str, predictions, labels) -> dict[str, float]:
    """The GLUE metrics of ``task`` plus ``score`` (the paper's metric).

    predictions: class ids (classification) or predicted scores (STS-B), one per example; labels the
    gold ids/scores. Returns e.g. ``{"accuracy": 0.9, "f1": 0.93, "score": 0.9}`` for MRPC.
    """
    spec = get_spec(task)  # the task's metrics and its paper metric: hut.data.glue.GLUE_TASKS
    p, y = _as_1d(predictions, "predictions"), _as_1d(labels, "labels")
    if len(p) != len(y):
        raise ValueError(f"{len(p)} predictions for {len(y)} labels")
    out = {name: _FUNCS[name](p, y) for name in spec.metrics}
    out["score"] = out[spec.metric]
    return out
