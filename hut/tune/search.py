"""One protocol's search over an experiment's cells: the grid's runs, the choice per cell, the final runs.

Every run is an ordinary run of the experiment with the searched key as an override (``trainer.lr=X``),
the run ``python -m hut.train -m experiment=E ... trainer.lr=X`` makes: the same identity, folder and
record, so finished points are skipped, a killed search resumes, and a grown grid runs only its new
points. The point at a row's own value *is* that row's run as configured (no override: one folder).

    cells = plan(protocol, experiment, extra)        each cell's config, its own value and grid
    records = run_jobs(search_jobs(cells, protocol))      (hut.tune.jobs)
    chosen = select(cells, protocol, records)        the rule (hut.tune.choose); the selection files
    run_jobs(final_jobs(chosen, protocol))           the final seeds at the chosen value
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from omegaconf import OmegaConf

from hut.config import compose, split_own
from hut.config import experiments as ex
from hut.results.judge.selection import halves
from hut.runs import DEV_PREDICTIONS, paths_of_record, read_epoch_predictions
from hut.runs.tuning import SPLIT_LABELS, selection_path, write_selection
from hut.tasks import TASKS
from hut.tune.choose import Choice, Point, choose
from hut.tune.protocol import Protocol, check_cells

DIVERGED = "non-finite loss"  # a failed run's reason that means its value diverged (hut.trainer)


class SearchError(ValueError):
    """A point cannot be scored (a run failed for another reason than divergence, a score is missing)."""


@dataclass(frozen=True)
class Job:
    """One run: two jobs with the same overrides are the same run (a search's point at a row's own
    learning rate and that row's run as configured). Run by :func:`hut.tune.jobs.run_jobs`."""

    label: str = field(compare=False)  # what the progress line says: task, row, value, seed
    overrides: tuple[str, ...] = ()  # the run's overrides, as hut.train's job gets them


@dataclass(frozen=True)
class CellSearch:
    """One cell of the experiment under search: its sweep choices, config and grid."""

    experiment: str
    cell: ex.Cell
    config: Mapping[str, Any]  # resolved, with the extra overrides, at the first search seed
    configured: float  # the row's own value of the key
    grid: tuple[float, ...]
    extra: tuple[str, ...]  # run overrides beyond the cell's (data source, a shorter budget)
    key: str

    @property
    def name(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.cell.choices.items()) or self.experiment

    def overrides(self, value: float, seed: int) -> tuple[str, ...]:
        """The run at ``value``: no override at the row's own value (the run as configured)."""
        own = math.isclose(value, self.configured, rel_tol=1e-9)
        return tuple(self.cell.run_overrides(seed, (*self.extra, *(() if own else (f"{self.key}={value!r}",)))))

    def job(self, value: float, seed: int) -> Job:
        return Job(f"{self.name} {self.key}={value:g} seed={seed}", self.overrides(value, seed))


@dataclass(frozen=True)
class Selected:
    cell: CellSearch
    choice: Choice
    path: Path  # its selection file


def plan(p: Protocol, experiment: str, extra: Sequence[str] = ()) -> list[CellSearch]:
    """The experiment's cells under search (a sweep key in ``extra``, ``task=stsb``, keeps only those
    cells), each with its config; the protocol checked against them."""
    sweep = {k: v for k, v in ex.sweep(experiment).items() if k != "seed"}
    chosen, rest = split_own(extra, (*sweep, "seed", p.key), "hut.tune")
    if "seed" in chosen:
        raise ValueError("seed=: a search's seeds are its protocol's (search_seeds, final_seeds)")
    if p.key in chosen:
        raise ValueError(f"{p.key}=: the search sets it (the protocol's grid)")
    keep = {k: v.split(",") for k, v in chosen.items()}
    for key, values in keep.items():
        if unknown := [x for x in values if x not in sweep[key]]:
            raise ValueError(f"{key}={','.join(unknown)}: not swept by experiment {experiment} "
                             f"({key}: {', '.join(sweep[key])})")
    cells = [c for c in ex.cells(experiment) if all(c.choices.get(k) in v for k, v in keep.items())]
    out = []
    for c in cells:
        cfg = OmegaConf.to_container(compose(c.run_overrides(p.search_seeds[0], tuple(rest))), resolve=True)
        value = OmegaConf.select(OmegaConf.create(cfg), p.key)
        out.append(CellSearch(experiment, c, cfg, float(value), p.grid_of(c.choices.get("row")), tuple(rest), p.key))
    check_cells(p, experiment, [(c.cell.choices, c.config) for c in out])
    return out


def search_jobs(cells: Sequence[CellSearch], p: Protocol) -> list[Job]:
    return [c.job(v, s) for c in cells for v in c.grid for s in p.search_seeds]


def final_jobs(chosen: Sequence[Selected], p: Protocol) -> list[Job]:
    return [s.cell.job(s.choice.chosen, seed) for s in chosen for seed in final_seeds(s.cell, p)]


def final_seeds(c: CellSearch, p: Protocol) -> tuple[int, ...]:
    return p.final_seeds if p.final_seeds is not None else ex.seeds(c.experiment)


def score(record: Mapping[str, Any], p: Protocol, results_dir: str | Path) -> float:
    """A run's score on the protocol's selection split at its last epoch (the task's paper metric)."""
    where = paths_of_record(record, results_dir).key
    if record.get("status") == "failed":
        reason = str((record.get("error") or {}).get("reason", ""))
        if reason.startswith(DIVERGED):
            return -math.inf
        raise SearchError(f"{where}: the run failed ({reason}); fix it and rerun the search (finished points are kept)")
    cls = TASKS.get(str(record["task"]))
    if p.selection == "tune":
        value = (record.get("last") or {}).get(f"tune_{cls.best_metric}")
        if not isinstance(value, (int, float)):
            raise SearchError(f"{where}: its record has no tune_{cls.best_metric} (was it run with data.tune_samples?)")
    else:
        run_dir = paths_of_record(record, results_dir).dir
        rows = read_epoch_predictions(run_dir / DEV_PREDICTIONS)
        if not rows:
            raise SearchError(f"{where}: no {DEV_PREDICTIONS} to choose on half of dev")
        n = next(len(v) for k, v in rows[-1].items() if k != "epoch" and isinstance(v, list))
        value = cls.score_predictions(rows[-1], halves(n)[0], run_dir)
    return float(value) if math.isfinite(float(value)) else -math.inf  # an undefined score (constant output) loses


def select(cells: Sequence[CellSearch], p: Protocol, records: Mapping[Job, Mapping[str, Any]],
           log: Callable[[str], None] = print) -> list[Selected]:
    """Each cell's choice from its points' records, written beside its runs; an edge said plainly."""
    out = []
    for c in cells:
        results_dir = c.config["results_dir"]
        recs = {(v, s): records[c.job(v, s)] for v in c.grid for s in p.search_seeds}
        choice = choose([Point(v, {s: score(recs[(v, s)], p, results_dir) for s in p.search_seeds}) for v in c.grid])
        first = recs[(c.grid[0], p.search_seeds[0])]
        other = {k: v for k, v in (first.get("overrides") or {}).items() if k != p.key} or None
        path = selection_path(paths_of_record({**first, "overrides": other}, results_dir), p.name)
        kept = write_selection(path, selection_of(c, p, choice, recs, other, results_dir))
        log(f"[tune] {c.name}: {p.key}={choice.chosen:g} chosen on {SPLIT_LABELS[p.selection]} (grid "
            + ", ".join(f"{pt.value:g}: {_fmt(pt.mean)}" for pt in choice.points) + f"); {path}"
            + (f" (the previous selection kept as {kept.name})" if kept else ""))
        if (edge := choice.edge_message(c.name, p.key, p.name)) is not None:
            log(f"[tune] AT THE EDGE {edge}")
        out.append(Selected(c, choice, path))
    return out


def _finite(x: float | None) -> float | None:
    """A score for JSON, which has no infinity: a diverged run's minus infinity is null (and listed)."""
    return x if x is not None and math.isfinite(x) else None


def _fmt(x: float) -> str:
    return "diverged" if x == -math.inf else f"{x:.4f}"


def selection_of(c: CellSearch, p: Protocol, choice: Choice, recs: Mapping[tuple, Mapping[str, Any]],
                 other: Mapping[str, Any] | None, results_dir: str) -> dict[str, Any]:
    """The selection file's content (hut.runs.tuning): the cell, the protocol, every point, the choice."""
    first = next(iter(recs.values()))
    return {
        "experiment": first["experiment"], "experiment_file": c.experiment, "cell": dict(c.cell.choices),
        "task": first["task"], "method": first["method"], "variant": first.get("variant"), "model": first["model"],
        "other_overrides": dict(other) if other else None, **p.describe(), "configured": c.configured,
        "grid": list(c.grid), "final_seeds": list(final_seeds(c, p)),
        "points": [{"value": pt.value, "mean": _finite(pt.mean), "std": pt.std,
                    "scores": {str(s): _finite(x) for s, x in sorted(pt.scores.items())},
                    "diverged": [s for s, x in sorted(pt.scores.items()) if x == -math.inf],
                    "runs": {str(s): paths_of_record(recs[(pt.value, s)], results_dir).key for s in p.search_seeds}}
                   for pt in choice.points],
        "chosen": choice.chosen, "at_edge": choice.at_edge, "add": choice.add,
    }


def hydra_commands(cells: Sequence[CellSearch], p: Protocol, chosen: Sequence[Selected] = ()) -> list[str]:
    """The ``python -m hut.train -m`` commands that make the same runs (for Hydra's launchers): the
    search, one per grid (rows with a grid of their own apart), and the final runs of each choice made."""
    out = []
    by_grid: dict[tuple, list[CellSearch]] = {}
    for c in cells:
        by_grid.setdefault(c.grid, []).append(c)
    for grid, cs in by_grid.items():
        out.append(_command(cs, list(p.search_seeds), grid))
    for s in chosen:
        out.append(_command([s.cell], list(final_seeds(s.cell, p)), (s.choice.chosen,)))
    return out


def _command(cs: Sequence[CellSearch], seeds: list[int], values: Sequence[float]) -> str:
    keys = list(cs[0].cell.choices)
    swept = " ".join(f"{k}={','.join(dict.fromkeys(c.cell.choices[k] for c in cs))}" for k in keys)
    extra = " ".join(cs[0].extra)
    return (f"python -m hut.train -m experiment={cs[0].experiment} {swept} seed={','.join(map(str, seeds))} "
            f"{cs[0].key}={','.join(repr(v) for v in values)}" + (f" {extra}" if extra else "")).replace("  ", " ")
