"""What each table expects, read from ``configs/experiment`` only (through :mod:`hut.config.experiments`).

A table is fed by the experiment files whose ``table`` is that table and whose ``experiment_name``
is the one asked for (``table1`` by default; ``demo`` gives the files demo.yaml and demo_e2e.yaml).
Their sweeps say which rows (method at a size, label, the paper row it reproduces), which tasks,
which cells (Tables 4 and 5: targets and rank) and which seeds the table must hold. A row, task or
cell is composed once (one task of a row), so the layout costs one composition per row.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Mapping

from hut.config import experiments as ex
from hut.results.runs import order_targets

RowKey = tuple  # (method, variant, model, overrides)


@dataclass(frozen=True)
class ExpectedRow:
    key: RowKey
    label: str | None
    paper_row: Mapping[str, Any] | None
    method_cfg: Mapping[str, Any] = field(default_factory=dict, compare=False)
    model_cfg: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass
class Layout:
    table: str
    experiment: str  # the records' experiment name
    files: tuple[str, ...] = ()  # the experiment files
    tasks: tuple[str, ...] = ()
    rows: tuple[ExpectedRow, ...] = ()
    seeds: tuple[int, ...] | None = None
    cells: tuple[tuple[tuple[str, ...], int | None], ...] = ()  # tables 4/5: (targets, r)
    paper_rows: dict[RowKey, Mapping[str, Any]] = field(default_factory=dict)


def _row_of(cfg: Mapping[str, Any]) -> ExpectedRow:
    m = cfg["method"]
    key = (m["name"], cfg.get("variant") or None, cfg["model"]["name"], None)
    return ExpectedRow(key, m.get("label"), cfg.get("paper_row"), dict(m), dict(cfg["model"]))


@functools.lru_cache(maxsize=None)
def layout(table: str, experiment: str) -> Layout:
    files = tuple(f for f in ex.experiments_for(experiment) if ex.meta(f)["table"] == table)
    if not files:
        return Layout(table, experiment)
    tasks: list[str] = []
    rows: list[ExpectedRow] = []
    cells: list[tuple[tuple[str, ...], int | None]] = []
    seeds: list[int] = []
    for f in files:
        seeds += [s for s in ex.seeds(f) if s not in seeds]
        seen_rows: set[str] = set()
        for cell in ex.cells(f):
            row_choice = cell.choices.get("row")
            rank = cell.choices.get("method.r")
            if (row_choice, rank) in seen_rows:  # one composition per row (and Table 5 rank)
                task = cell.choices.get("task")
                if task and task not in tasks:
                    tasks.append(task)
                continue
            seen_rows.add((row_choice, rank))
            cfg = cell.config
            task = cfg["task"]["name"]
            if task not in tasks:
                tasks.append(task)
            r = _row_of(cfg)
            if r.key not in [x.key for x in rows]:
                rows.append(r)
            c = (order_targets(cfg["method"].get("targets") or ()), cfg["method"].get("r"))
            if c not in cells:
                cells.append(c)
    lay = Layout(table, experiment, files, tuple(tasks), tuple(rows), tuple(seeds), tuple(cells))
    lay.paper_rows = {r.key: r.paper_row for r in rows if r.paper_row}
    return lay
