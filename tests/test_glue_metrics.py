"""GLUE metrics against scipy / scikit-learn, including degenerate inputs."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from hut.data.glue import get_spec
from hut.metrics.glue import glue_metrics

CLASSIFICATION = ("cola", "sst2", "mrpc", "qnli", "rte", "mnli", "qqp")


def _finite(d):
    return all(isinstance(v, float) and math.isfinite(v) for v in d.values())


@pytest.mark.parametrize("seed", range(5))
def test_random_classification(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 300))
    y = rng.integers(0, 2, n)
    p = np.where(rng.random(n) < 0.7, y, 1 - y)
    m = glue_metrics("cola", p, y)
    assert set(m) == {"matthews", "score"}
    assert m["matthews"] == pytest.approx(matthews_corrcoef(y, p))
    assert m["score"] == m["matthews"]
    m = glue_metrics("mrpc", p, y)
    assert set(m) == {"accuracy", "f1", "score"}
    assert m["accuracy"] == pytest.approx(accuracy_score(y, p))
    assert m["f1"] == pytest.approx(f1_score(y, p))
    assert m["score"] == m["accuracy"]
    for task in ("sst2", "qnli", "rte"):
        m = glue_metrics(task, p, y)
        assert m == {"accuracy": pytest.approx(accuracy_score(y, p)), "score": pytest.approx(accuracy_score(y, p))}


@pytest.mark.parametrize("seed", range(5))
def test_random_regression(seed):
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(10, 300))
    y = rng.uniform(0, 5, n)
    p = y + rng.normal(0, 1.5, n)
    m = glue_metrics("stsb", p, y)
    assert set(m) == {"pearson", "spearman", "score"}
    assert m["pearson"] == pytest.approx(pearsonr(p, y)[0])
    assert m["spearman"] == pytest.approx(spearmanr(p, y)[0])
    assert m["score"] == m["pearson"]


def test_three_classes_mnli():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 3, 200)
    p = rng.integers(0, 3, 200)
    assert glue_metrics("mnli", p, y)["accuracy"] == pytest.approx(accuracy_score(y, p))


def test_paper_metric():
    assert get_spec("cola").metric == "matthews" and get_spec("stsb").metric == "pearson"
    assert all(get_spec(t).metric == "accuracy" for t in ("sst2", "mrpc", "qnli", "rte"))


@pytest.mark.parametrize("task", CLASSIFICATION)
def test_constant_predictions_no_nan(task):
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    for const in (0, 1):
        m = glue_metrics(task, np.full_like(y, const), y)
        assert _finite(m)
        if "matthews" in m:
            assert m["matthews"] == 0.0
    if task == "mrpc":
        assert glue_metrics(task, np.zeros_like(y), y)["f1"] == 0.0


def test_constant_labels_and_predictions():
    y = np.ones(6, dtype=int)
    m = glue_metrics("cola", y, y)
    assert m["matthews"] == 0.0 and _finite(m)  # undefined -> 0, as sklearn does
    m = glue_metrics("mrpc", np.zeros(6, int), np.zeros(6, int))
    assert m["accuracy"] == 1.0 and m["f1"] == 0.0 and _finite(m)


def test_regression_degenerate():
    y = np.array([0.0, 1.0, 2.5, 4.0, 5.0])
    m = glue_metrics("stsb", np.full(5, 2.0), y)  # collapsed model
    assert m == {"pearson": 0.0, "spearman": 0.0, "score": 0.0}
    m = glue_metrics("stsb", y, np.full(5, 3.0))
    assert _finite(m) and m["pearson"] == 0.0
    m = glue_metrics("stsb", [1.0], [2.0])  # a single point
    assert _finite(m)
    m = glue_metrics("stsb", y, y)
    assert m["pearson"] == pytest.approx(1.0) and m["spearman"] == pytest.approx(1.0)


def test_empty_inputs():
    assert _finite(glue_metrics("cola", [], []))
    assert _finite(glue_metrics("mrpc", [], []))
    assert _finite(glue_metrics("stsb", [], []))


def test_input_types():
    torch = pytest.importorskip("torch")
    y = torch.tensor([0, 1, 1, 0])
    p = torch.tensor([0, 1, 0, 0])
    assert glue_metrics("sst2", p, y)["accuracy"] == 0.75
    assert glue_metrics("rte", [0, 1, 0, 0], [0, 1, 1, 0])["accuracy"] == 0.75
    col = np.array([[0.5], [1.5], [3.0], [4.0]])  # a regression head's (n, 1) output
    assert glue_metrics("stsb", col, [0.0, 2.0, 3.0, 5.0])["pearson"] == pytest.approx(
        pearsonr(col[:, 0], [0.0, 2.0, 3.0, 5.0])[0])


def test_errors():
    with pytest.raises(ValueError, match="unknown GLUE task"):
        glue_metrics("squad", [0], [0])
    with pytest.raises(ValueError, match="predictions for"):
        glue_metrics("sst2", [0, 1], [0])
    with pytest.raises(ValueError, match="one-dimensional"):
        glue_metrics("sst2", np.zeros((2, 3)), [0, 1])
