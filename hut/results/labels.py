"""How tables name things, from the configs (never a hand-kept list here).

* a method row: the ``label`` of its config (``configs/method/<name>.yaml``, or the paper row's
  ``configs/row/...`` file, e.g. "Adpt^P 0.8M"), as recorded in each run's ``config.method``;
* a task: its registered class (:mod:`hut.tasks`; GLUE tasks from their spec in ``hut.data.glue``),
  with its paper metric;
* a model: the ``label`` of ``configs/model/<name>.yaml``.

``^X`` in a label is a superscript in LaTeX (``Adpt^H`` -> Adpt$^{\\mathrm{H}}$).
"""
from __future__ import annotations

import functools

from hut.config import load_group
from hut.results.render.table import tex_escape
from hut.tasks import TASKS


@functools.lru_cache(maxsize=None)
def _group_label(group: str, name: str) -> str | None:
    try:
        return load_group(group, name).get("label")
    except ValueError:
        return None


def method_label(method: str, label: str | None = None, tex: bool = False) -> str:
    s = label or _group_label("method", method) or method
    return tex_escape(s) if tex else s


def model_label(model: str) -> str:
    return _group_label("model", model) or model


def task_label(task: str) -> str:
    return getattr(TASKS.get(task), "label", task) if task in TASKS else task


def task_kind(task: str) -> str | None:
    return TASKS.get(task).kind if task in TASKS else None


def task_metric(task: str) -> tuple[str, str]:
    """(the record's key of the task's paper metric, its name): ("score", "Matthews corr.") for CoLA."""
    if task not in TASKS:
        return "score", "score"
    cls = TASKS.get(task)
    return cls.best_metric, getattr(cls, "metric_label", cls.best_metric)


def targets_label(targets: tuple[str, ...], tex: bool = False) -> str:
    if not targets:
        return "?"
    if tex:
        return "$" + ", ".join(f"W_{{{t.replace('_', '')}}}" for t in targets) + "$"
    return ", ".join(f"W{t}" for t in targets)
