"""Which runs each protocol judges: *as configured* (the rows' own learning rates) or *tuned* (each
cell at the learning rate its search chose), and which runs were only the search's points.

A search (``python -m hut.tune``) leaves a selection file beside its runs (:mod:`hut.runs.tuning`);
:func:`load_searches` reads them as :class:`Search`. Runs are matched to a search by what their
records say (experiment, task, method and variant, model, the override variant apart from the
searched key, and the key's value), never by path:

* **as configured**: every run whose override variant does not set the searched key (``trainer.lr``);
* **tuned**: the runs of a search's final seeds at its chosen value (the runs as configured when that
  is the row's own value). With the ``split_dev`` protocol the figure reported is the one of the
  half of dev that did not choose (the best epoch on that half, as every figure here takes the best
  epoch); with ``tune`` it is the record's own (dev was not used to choose);
* **search points**: the other runs of a search's grid, shown by the learning-rate figure and the
  report's search section, not as rows of the tables.
"""
from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from hut.results.judge.selection import halves
from hut.results.labels import task_metric
from hut.results.runs import Problem, Run
from hut.runs import DEV_PREDICTIONS, read_epoch_predictions
from hut.runs.identity import variant_label
from hut.runs.tuning import read_selections
from hut.tasks import TASKS

LR_KEY = "trainer.lr"
CONFIGURED, TUNED = "as configured", "tuned"


def without_key(overrides: str | None, key: str = LR_KEY) -> str:
    """A run's override variant (``k=v, k=v``, :attr:`Run.overrides`) without ``key``."""
    return ", ".join(p for p in (overrides or "").split(", ") if p and not p.startswith(f"{key}="))


def value_of(run: Run, key: str = LR_KEY) -> float | None:
    """The searched key's value in a run's resolved config (None when it has none)."""
    node: Any = run.config or {}
    for part in key.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return float(node) if isinstance(node, (int, float)) and not isinstance(node, bool) else None


@dataclass(frozen=True)
class Search:
    """One selection file: a cell's search and its choice."""

    path: str  # relative to results_dir
    protocol: str
    experiment: str
    task: str
    method: str
    variant: str | None
    model: str
    other: str  # the search's override variant apart from the key ("" for none)
    key: str
    selection: str  # tune | split_dev
    rule: str
    configured: float
    grid: tuple[float, ...]
    search_seeds: tuple[int, ...]
    final_seeds: tuple[int, ...]
    chosen: float
    at_edge: str | None
    add: float | None
    points: tuple[Mapping[str, Any], ...]  # value, mean, std, scores per seed on the selection split

    def same_cell(self, r: Run) -> bool:
        return ((r.experiment, r.task, r.method, r.variant, r.model) ==
                (self.experiment, self.task, self.method, self.variant, self.model)
                and without_key(r.overrides, self.key) == self.other)

    def is_final(self, r: Run) -> bool:
        v = value_of(r, self.key)
        return self.same_cell(r) and r.seed in self.final_seeds and v is not None and _same(v, self.chosen)

    def is_point(self, r: Run) -> bool:
        v = value_of(r, self.key)
        return (self.same_cell(r) and r.seed in self.search_seeds and v is not None
                and any(_same(v, g) for g in self.grid))


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9)


def load_searches(results_dir: str | Path) -> tuple[list[Search], list[Problem]]:
    out, problems = [], []
    for rel, s in read_selections(results_dir):
        if "problem" in s:
            problems.append(Problem(rel, s["problem"]))
            continue
        try:
            out.append(Search(
                rel, str(s["protocol"]), str(s["experiment"]), str(s["task"]), str(s["method"]),
                s.get("variant") or None, str(s["model"]), variant_label(s.get("other_overrides"), ", ") or "",
                str(s["key"]), str(s["selection"]), str(s["rule"]), float(s["configured"]),
                tuple(float(v) for v in s["grid"]), tuple(int(x) for x in s["search_seeds"]),
                tuple(int(x) for x in s["final_seeds"]), float(s["chosen"]), s.get("at_edge"),
                None if s.get("add") is None else float(s["add"]), tuple(s["points"])))
        except (KeyError, TypeError, ValueError) as e:
            problems.append(Problem(rel, f"selection file lacks or garbles {e}"))
    return out, problems


def choice_margin(search: Search, runs: Iterable[Run]) -> tuple[float | None, float | None]:
    """(the chosen point's lead over the next best grid point on the selection split, the sample std of the
    same score over the search's final seeds at the chosen value): a lead within that spread is a choice
    that another search seed could reverse. None where it cannot be told: no scored runner-up, fewer than
    two final runs with the score, or the ``split_dev`` protocol (each final run's choosing half differs)."""
    means = {float(p["value"]): p.get("mean") for p in search.points}
    chosen = next((m for v, m in means.items() if _same(v, search.chosen)), None)
    others = [m for v, m in means.items() if m is not None and not _same(v, search.chosen)]
    lead = None if chosen is None or not others else float(chosen) - max(others)
    if search.selection != "tune":
        return lead, None
    scores = [float(r.last["tune_score"]) for r in runs if search.is_final(r) and r.status == "success"
              and isinstance((r.last or {}).get("tune_score"), (int, float))]
    std = statistics.stdev(scores) if len(scores) >= 2 else None
    return lead, std


def configured(runs: Iterable[Run], key: str = LR_KEY) -> list[Run]:
    """The runs at their rows' own value of ``key`` (no override of it)."""
    return [r for r in runs if f"{key}=" not in (r.overrides or "")]


def tuned(runs: Iterable[Run], searches: Sequence[Search], results_dir: str | Path) -> list[Run]:
    """The final runs of every search, each with the figure its protocol reports as ``best``."""
    out = []
    for r in runs:
        s = next((s for s in searches if s.is_final(r)), None)
        if s is None:
            continue
        out.append(_report_half(r, Path(results_dir)) if s.selection == "split_dev" and r.status == "success" else r)
    return out


def searched(runs: Iterable[Run], searches: Sequence[Search]) -> list[Run]:
    """The runs a search made that are neither as configured nor tuned (its other grid points)."""
    return [r for r in runs if any(s.is_point(r) for s in searches)
            and not any(s.is_final(r) for s in searches) and f"{LR_KEY}=" in (r.overrides or "")]


def for_tables(runs: Sequence[Run], searches: Sequence[Search], results_dir: str | Path) -> list[Run]:
    """What a table shows: the runs as they are, less the search's runs at other values than the rows'
    own (its grid points and final runs), plus the tuned runs again as rows of their own (override
    label ``tuned``; a run at its row's own value may be both as configured and tuned)."""
    if not searches:
        return list(runs)
    hidden = {id(r) for r in runs if f"{LR_KEY}=" in (r.overrides or "")
              and any(s.is_point(r) or s.is_final(r) for s in searches)}
    return ([r for r in runs if id(r) not in hidden]
            + [dataclasses.replace(r, overrides=TUNED + (f", {o}" if (o := without_key(r.overrides)) else ""))
               for r in tuned(runs, searches, results_dir)])


def _report_half(r: Run, results_dir: Path) -> Run:
    """A split_dev final run with ``best`` = its best epoch on the half of dev that did not choose."""
    run_dir = results_dir / Path(r.path).parent
    rows = read_epoch_predictions(run_dir / DEV_PREDICTIONS)
    if not rows or r.task not in TASKS:
        return dataclasses.replace(r, status="failed", error={"reason": "split_dev: no dev predictions to score"})
    cls = TASKS.get(r.task)
    n = next(len(v) for k, v in rows[0].items() if k != "epoch" and isinstance(v, list))
    report = halves(n)[1]
    scores = [cls.score_predictions(row, report, run_dir) for row in rows]
    i = max(range(len(scores)), key=lambda k: scores[k])
    metric = task_metric(r.task)[0]
    return dataclasses.replace(r, best={"epoch": int(rows[i]["epoch"]), metric: float(scores[i])})
