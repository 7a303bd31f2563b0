"""Learning-rate sensitivity: a row's score against its learning rate, where runs of one row differ
in ``trainer.lr`` alone (a learning-rate search, or override variants ``trainer.lr=...``).

Runs are grouped by experiment, task, method, variant, model and their override variant *without*
its ``trainer.lr``; a group with two or more learning rates is a curve (mean and every seed per lr).
The learning rate is read from each record's resolved config, never from its path.
"""
from __future__ import annotations

import statistics
from typing import Sequence

from hut.results.labels import method_label, task_label, task_metric
from hut.results.runs import Run

LR_KEY = "trainer.lr"


def _other_overrides(run: Run) -> str:
    parts = [p for p in (run.overrides or "").split(", ") if p and not p.startswith(f"{LR_KEY}=")]
    return ", ".join(parts)


def lr_curves(runs: Sequence[Run], experiments: Sequence[str]) -> list[dict]:
    groups: dict[tuple, dict[float, dict[int, float]]] = {}
    labels: dict[tuple, str] = {}
    for r in runs:
        if r.experiment not in experiments or r.status != "success":
            continue
        lr = ((r.config or {}).get("trainer") or {}).get("lr")
        metric = task_metric(r.task)[0]
        value = r.best.get(metric)
        if not isinstance(lr, (int, float)) or not isinstance(value, (int, float)):
            continue
        key = (r.experiment, r.task, r.method, r.variant, r.model, _other_overrides(r))
        groups.setdefault(key, {}).setdefault(float(lr), {})[r.seed] = 100.0 * float(value)
        labels.setdefault(key, method_label(r.method, r.label) + (f" [{key[5]}]" if key[5] else ""))
    out = []
    for key in sorted(groups, key=lambda k: tuple(str(x) for x in k)):
        by_lr = groups[key]
        if len(by_lr) < 2:
            continue
        out.append({"experiment": key[0], "task": key[1], "task_label": task_label(key[1]), "method": key[2],
                    "model": key[4], "label": labels[key], "metric": task_metric(key[1])[1],
                    "points": [{"lr": lr, "mean": statistics.fmean(v.values()),
                                "seeds": {str(s): x for s, x in sorted(v.items())}} for lr, v in sorted(by_lr.items())]})
    return out
