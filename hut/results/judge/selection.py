"""Selection bias made visible: the paper's best-dev-epoch figure beside two fair ones, from saved predictions.

Every GLUE figure of the paper is the best dev epoch, chosen on the set it is reported on; Chen et
al. (EMNLP 2022, arXiv 2202.07962) show that this inflates PEFT results. From each run's per-epoch
dev predictions (``dev_predictions.jsonl``, written by the trainer from ``Task.dev_predictions``; no
extra training) this module computes, per run:

* **best**: the best epoch's score on all of dev (the paper's protocol; equals the record's ``best``);
* **last**: the last epoch's score;
* **split**: the epoch chosen on one half of dev, scored on the other half, both ways, averaged. The
  halves are a seeded random split of the scored items (``SPLIT_SEED``), the same for every run of a
  task (so every method is selected on the same examples);
* **gap** = best − split: the optimism of choosing the epoch on the reporting set.

Scores come from the task's own :meth:`hut.tasks.Task.score_predictions` (GLUE: its metric on a
subset; E2E: BLEU on a subset of MRs), so a new task with that hook is covered. Per cell (the seeds
of one task, method row and model) :func:`by_cell` averages them; a seed at chance level is flagged
(:func:`chance_flags`), counted, and never dropped.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from hut.runs import DEV_PREDICTIONS, read_epoch_predictions
from hut.tasks import TASKS

SPLIT_SEED = 0
#: a seed within this many points (× 100) of the chance score counts as not converged
CHANCE_MARGIN = 1.0


@dataclass(frozen=True)
class Selection:
    epochs: int
    best: float
    last: float
    split: float
    best_epoch: int

    @property
    def gap(self) -> float:
        return self.best - self.split


def _n_items(saved: Mapping) -> int:
    for k, v in saved.items():
        if k != "epoch" and isinstance(v, list):
            return len(v)
    raise ValueError("a dev_predictions line has no list of per-item predictions")


def halves(n: int, seed: int = SPLIT_SEED) -> tuple[list[int], list[int]]:
    perm = np.random.default_rng(seed).permutation(n)
    return sorted(perm[: n // 2].tolist()), sorted(perm[n // 2:].tolist())


def select(task_cls, run_dir: Path, scale: float = 100.0) -> Selection | None:
    """The three selections of one run (scores × ``scale``); None when the run kept no predictions."""
    rows = read_epoch_predictions(Path(run_dir) / DEV_PREDICTIONS)
    if not rows:
        return None
    n = _n_items(rows[0])
    a, b = halves(n)
    every = list(range(n))

    def score(row, idx):
        return scale * task_cls.score_predictions(row, idx, run_dir)

    full = [score(r, every) for r in rows]
    on_a = [score(r, a) for r in rows]
    on_b = [score(r, b) for r in rows]
    pick_a, pick_b = int(np.argmax(on_a)), int(np.argmax(on_b))  # first best epoch, as the trainer keeps
    split = (on_b[pick_a] + on_a[pick_b]) / 2
    best = int(np.argmax(full))
    return Selection(len(rows), full[best], full[-1], split, int(rows[best]["epoch"]))


def chance_score(task_cls, run_dir: Path, scale: float = 100.0) -> float | None:
    """The score of the trivial predictor on the run's scored items (GLUE: the majority class; MCC and
    Pearson: 0); None when the task cannot say (``Task.chance_score``)."""
    rows = read_epoch_predictions(Path(run_dir) / DEV_PREDICTIONS)
    value = task_cls.chance_score(rows[-1] if rows else None)
    return None if value is None else scale * value


@dataclass
class CellSelection:
    """One cell's seeds: each seed's selections and whether it converged."""
    seeds: dict[int, Selection]
    not_converged: list[int]  # seeds within CHANCE_MARGIN of the chance score
    chance: float | None

    def mean(self, field: str) -> float | None:
        vals = [getattr(s, field) for s in self.seeds.values()]
        return statistics.fmean(vals) if vals else None

    @property
    def epochs(self) -> str:
        return ",".join(sorted({str(s.epochs) for s in self.seeds.values()}))


def by_cell(runs: Iterable, results_dir: Path, cell_of) -> dict[tuple, CellSelection]:
    """Selections of every finished run, grouped by ``cell_of(run)`` (None: not a cell)."""
    out: dict[tuple, CellSelection] = {}
    for r in runs:
        key = cell_of(r)
        if key is None or r.status != "success" or r.task not in TASKS:
            continue
        cls = TASKS.get(r.task)
        run_dir = Path(results_dir) / Path(r.path).parent
        cell = out.setdefault(key, CellSelection({}, [], None))
        try:
            sel = select(cls, run_dir)
        except (NotImplementedError, OSError, ValueError, KeyError):
            sel = None
        if sel is not None:
            cell.seeds[r.seed] = sel
        chance = chance_score(cls, run_dir)
        best = sel.best if sel is not None else _best(r, cls)
        if chance is not None and best is not None:
            cell.chance = chance
            if best - chance < CHANCE_MARGIN:
                cell.not_converged.append(r.seed)
    for c in out.values():
        c.not_converged.sort()
    return out


def _best(run, cls) -> float | None:
    v = run.best.get(cls.best_metric)
    return 100.0 * float(v) if isinstance(v, (int, float)) else None
