"""A search protocol as data: ``configs/tune/<name>.yaml``, composed with ``tune.<key>=value`` overrides.

::

    key: trainer.lr                 the key searched
    grid: [1.0e-3, 2.0e-3, ...]     log-spaced values, increasing, at least 3 (every row's, unless ...)
    rows: {demo/lora: [...]}        ... a row has its own: the same number of points (the same budget)
    search_seeds: [0]               the seeds each grid point runs
    final_seeds: null               the seeds run at the chosen value (null: the experiment's)
    selection: tune                 tune: the held-out slice of the training split (data.tune_samples);
                                    split_dev: one half of dev chooses, the other is reported

The rule is fixed (:mod:`hut.tune.choose`): the mean over the search seeds of the last epoch's score
(the task's paper metric) on the selection split; ties go to the smaller value. :func:`load` refuses a
protocol, and :func:`check_cells` a protocol for an experiment, with one line naming the problem:
unequal budgets, a grid that is not increasing, a selection split that overlaps what is reported.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from omegaconf import OmegaConf

from hut.config import CONFIG_DIR, compose
from hut.config.typed import check, option, parse
from hut.tasks import TASKS, Task

TUNE_DIR = CONFIG_DIR / "tune"
SELECTIONS = ("tune", "split_dev")
KEYS = ("trainer.lr",)  # what the figure, the tables and the claims read as the searched value
MIN_POINTS = 3  # with two, the best point is always at an edge


@dataclass(frozen=True)
class ProtocolConfig:
    """The keys of a protocol file (the module's docstring says what each means)."""

    key: str = option("trainer.lr", choices=KEYS)
    grid: list = option([])
    rows: dict | None = option(None)
    search_seeds: list = option([0])
    final_seeds: list | None = option(None)
    selection: str = option("tune", choices=SELECTIONS)


@dataclass(frozen=True)
class Protocol:
    name: str
    key: str
    grid: tuple[float, ...]
    search_seeds: tuple[int, ...]
    final_seeds: tuple[int, ...] | None
    selection: str
    rows: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    def grid_of(self, row: str | None) -> tuple[float, ...]:
        return self.rows.get(row, self.grid) if row is not None else self.grid

    @property
    def budget(self) -> int:
        """Runs per cell in the search: grid points × search seeds (the same for every row)."""
        return len(self.grid) * len(self.search_seeds)

    def describe(self) -> dict[str, Any]:
        """The protocol as the selection file stores it."""
        return {"protocol": self.name, "key": self.key, "search_seeds": list(self.search_seeds),
                "selection": self.selection, "rule": RULE.format(split=SPLIT_NAMES[self.selection])}


SPLIT_NAMES = {"tune": "the tune split (data.tune_samples held out of the training split)",
               "split_dev": "the selection half of dev (the other half is reported)"}
RULE = ("the largest mean over the search seeds of the last epoch's score on {split}; ties: the smaller value; "
        "a run whose loss became non-finite scores minus infinity")


def known() -> list[str]:
    return sorted(p.stem for p in TUNE_DIR.glob("*.yaml"))


def load(name: str, overrides: Sequence[str] = ()) -> Protocol:
    """The protocol ``configs/tune/<name>.yaml`` with ``overrides`` (``grid=[...]``); checked."""
    if not (TUNE_DIR / f"{name}.yaml").is_file():
        raise ValueError(f"no search protocol configs/tune/{name}.yaml (known: {', '.join(known()) or 'none'}); "
                         f"write one (docs/tuning.md) or name one with tune=NAME")
    try:
        raw = OmegaConf.to_container(compose(list(overrides), name, TUNE_DIR), resolve=True)
    except Exception as e:  # noqa: BLE001 - Hydra's override errors: their first line
        raise ValueError(f"tune {name}: {(str(e).strip().splitlines() or [type(e).__name__])[0]}") from None
    return from_dict(name, raw or {})


def from_dict(name: str, raw: Mapping[str, Any]) -> Protocol:
    c = parse(ProtocolConfig, dict(raw), "tune", owner=f"(configs/tune/{name}.yaml)")
    grid = _grid(name, "grid", c.grid)
    rows = {str(r): _grid(name, f"rows.{r}", g) for r, g in (c.rows or {}).items()}
    for r, g in rows.items():
        if len(g) != len(grid):
            raise ValueError(f"tune {name}: row {r} has {len(g)} grid points and the grid {len(grid)}: every row "
                             f"compared gets the same budget (points × search seeds)")
    search = _seeds(name, "search_seeds", c.search_seeds)
    final = _seeds(name, "final_seeds", c.final_seeds) if c.final_seeds is not None else None
    return Protocol(name, c.key, grid, search, final, c.selection, rows)


def _grid(name: str, where: str, values: Sequence[Any]) -> tuple[float, ...]:
    if not isinstance(values, (list, tuple)):
        raise ValueError(f"tune {name}: {where} must be a list of values (got {values!r})")
    out = tuple(check(f"tune.{where}[{i}]", v, float, {"above": 0}) for i, v in enumerate(values))
    if len(out) < MIN_POINTS:
        raise ValueError(f"tune {name}: {where} has {len(out)} point(s); a search needs at least {MIN_POINTS} "
                         f"(with fewer the best is always at an edge)")
    if any(b <= a for a, b in zip(out, out[1:])):
        raise ValueError(f"tune {name}: {where} {', '.join(f'{v:g}' for v in out)} is not increasing: list the "
                         f"values from small to large, each once")
    return out


def _seeds(name: str, where: str, values: Sequence[Any]) -> tuple[int, ...]:
    out = tuple(check(f"tune.{where}[{i}]", v, int, {"minimum": 0}) for i, v in enumerate(values))
    if not out or len(set(out)) != len(out):
        raise ValueError(f"tune {name}: {where} must list at least one seed, each once (got {list(values)})")
    return out


def check_cells(p: Protocol, experiment: str, configs: Sequence[tuple[Mapping[str, str], Mapping[str, Any]]]) -> None:
    """The protocol against an experiment's cells: (the cell's sweep choices, its resolved config) each."""
    rows = {str(ch.get("row")) for ch, _ in configs if ch.get("row")}
    for r in p.rows:
        if r not in rows:
            raise ValueError(f"tune {p.name}: row {r} is not a row of experiment {experiment} "
                             f"(its rows: {', '.join(sorted(rows)) or 'none'})")
    for choices, cfg in configs:
        d, task = cfg["data"], str(cfg["task"]["name"])
        cell = ", ".join(f"{k}={v}" for k, v in choices.items()) or experiment
        if p.selection == "tune" and not d.get("tune_samples"):
            raise ValueError(f"tune {p.name} selects on the tune split, but experiment {experiment} ({cell}) holds "
                             f"none out: set data.tune_samples in configs/experiment/{experiment}.yaml, or "
                             f"selection=split_dev")
        if p.selection == "split_dev":
            if d.get("train_split") == d.get("eval_split"):
                raise ValueError(f"tune {p.name}: split_dev halves data.eval_split={d.get('eval_split')}, which "
                                 f"{cell} also trains on: the selection half would overlap what the runs fit")
            if task in TASKS and TASKS.get(task).score_predictions.__func__ is Task.score_predictions.__func__:
                raise ValueError(f"tune {p.name}: split_dev rescores each run's dev predictions, which task {task} "
                                 f"does not keep; use selection=tune")

