"""An experiment's cells, read from its config alone: ``configs/experiment/<name>.yaml``.

An experiment file fixes the model, task group defaults and trainer settings, names the table it
feeds (``table``), and sweeps its cells with ``hydra.sweeper.params`` (``row``, ``task``, ``seed``,
Table 5's ``method.r``). ``python -m hut.train -m experiment=<name>`` runs that sweep; the same
product, enumerated here, is what ``hut.demo`` runs in-process, what the tables expect
(``hut.results.layout``) and what ``tests/test_paper.py`` checks against the paper.
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from hut.config import CONFIG_DIR, compose


def experiment_file(name: str) -> Path:
    p = CONFIG_DIR / "experiment" / f"{name}.yaml"
    if not p.is_file():
        known = ", ".join(sorted(q.stem for q in (CONFIG_DIR / "experiment").glob("*.yaml")))
        raise ValueError(f"unknown experiment '{name}'; known: {known}")
    return p


@functools.lru_cache(maxsize=None)
def _raw(name: str) -> dict:
    """The experiment file as written (read once per process; callers only read it)."""
    return OmegaConf.to_container(OmegaConf.load(experiment_file(name)), resolve=False) or {}


def _values(v: Any) -> list[str]:
    if isinstance(v, (list, tuple)):
        return [str(x) for x in v]
    return [x.strip() for x in str(v).split(",") if x.strip()]


def sweep(name: str) -> dict[str, list[str]]:
    """The experiment's ``hydra.sweeper.params``: key -> its values, in file order."""
    params = ((_raw(name).get("hydra") or {}).get("sweeper") or {}).get("params") or {}
    return {str(k): _values(v) for k, v in params.items()}


def meta(name: str) -> dict[str, Any]:
    """``experiment_name`` (first level of its record paths) and ``table`` (which table it feeds)."""
    raw = _raw(name)
    return {"experiment_name": raw.get("experiment_name", name), "table": raw.get("table")}


def seeds(name: str) -> tuple[int, ...]:
    return tuple(int(s) for s in sweep(name).get("seed", ["0"]))


@dataclass(frozen=True)
class Cell:
    """One cell of an experiment: its sweep overrides (seed excluded)."""

    experiment: str
    overrides: tuple[str, ...]
    choices: dict[str, str] = field(default_factory=dict, compare=False)

    def run_overrides(self, seed: int, extra: tuple[str, ...] = ()) -> list[str]:
        """The overrides of one run of this cell (what ``hut.train -m`` passes to that job)."""
        return [f"experiment={self.experiment}", *self.overrides, f"seed={seed}", *extra]

    @cached_property
    def config(self):
        """The cell's resolved config (seed of the sweep's first)."""
        return OmegaConf.to_container(compose(self.run_overrides(seeds(self.experiment)[0])), resolve=True)


def cells(name: str) -> list[Cell]:
    """The product of the experiment's sweep, seed excluded, in the sweeper's order.

    Cached per process (a cell composes its config once): configs are files, read at first use.
    """
    return list(_cells(name))


@functools.lru_cache(maxsize=None)
def _cells(name: str) -> tuple[Cell, ...]:
    sw = {k: v for k, v in sweep(name).items() if k != "seed"}
    keys = list(sw)
    return tuple(Cell(name, tuple(f"{k}={v}" for k, v in zip(keys, combo)), dict(zip(keys, combo)))
                 for combo in itertools.product(*(sw[k] for k in keys)))


def experiments_for(experiment_name: str) -> list[str]:
    """The experiment files whose ``experiment_name`` is ``experiment_name`` (demo: demo, demo_e2e)."""
    out = []
    for p in sorted((CONFIG_DIR / "experiment").glob("*.yaml")):
        if meta(p.stem)["experiment_name"] == experiment_name:
            out.append(p.stem)
    return out


def required_groups(name: str) -> list[str]:
    """The config groups an experiment leaves to the command line (``override /row: ???``)."""
    out = []
    for d in _raw(name).get("defaults") or []:
        if isinstance(d, dict):
            out.extend(str(k).split("/")[-1] for k, v in d.items() if v == "???")
    return out


def overridden_hydra_groups(name: str) -> list[str]:
    """Hydra's own groups an experiment file overrides in its defaults (``override /hydra/sweeper: x`` ->
    ``sweeper``)."""
    out = []
    for d in _raw(name).get("defaults") or []:
        if isinstance(d, dict):
            out.extend(str(k).split("/")[-1] for k in d if "hydra/" in str(k))
    return out
