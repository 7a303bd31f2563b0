"""Score against cost, per table and column: each method row's mean score beside what its runs
cost (:mod:`.costs`: trainable parameters, measured FLOPs, step time, estimated peak memory), and
the Pareto front (the rows no other row beats on both: a higher score at no more cost).

The page draws them (x axis chosen there); :func:`front` is the rule, shared by the page's data and
the tests.
"""
from __future__ import annotations

import statistics
from typing import Any, Mapping, Sequence

from hut.results.figures.costs import MEASURES, measure_run
from hut.results.runs import Run
from hut.results.tables.base import Built, Inputs

METHOD_TABLES = ("table1", "table3", "parts")  # tables whose rows are methods


def front(points: Sequence[tuple[float, float]], lower_x_better: bool = True) -> list[int]:
    """Indices of the non-dominated points (score higher is better; cost lower, or higher if not
    ``lower_x_better``), in order of x. A point is dominated when another is at least as good on both
    and better on one."""
    sign = 1.0 if lower_x_better else -1.0
    out = []
    for i, (x, y) in enumerate(points):
        if not any((sign * x2 <= sign * x and y2 >= y) and (sign * x2 < sign * x or y2 > y)
                   for j, (x2, y2) in enumerate(points) if j != i):
            out.append(i)
    return sorted(out, key=lambda i: points[i][0])


def _row_runs(inp: Inputs, experiment: str) -> dict[tuple, list[Run]]:
    out: dict[tuple, list[Run]] = {}
    for r in sorted(inp.runs, key=lambda r: (r.seed, r.path)):
        if r.experiment == experiment and r.status == "success":
            out.setdefault(r.row, []).append(r)
    return out


def _costs(runs: Sequence[Run], measure: bool) -> dict[str, dict[str, Any]]:
    """Each measure over ``runs`` (one row's runs on one column): step time and memory averaged over
    them (they differ by task and seed), params and FLOPs of the first (one config per row)."""
    out = {}
    for m in MEASURES:
        got = [measure_run(r, m, measure) for r in (runs if m in ("step_time", "memory") else runs[:1])]
        vals = [v for v, _ in got if v is not None]
        out[m] = {"value": statistics.fmean(vals) if vals else None, "why": "" if vals else got[0][1]}
    return out


def pareto_points(inp: Inputs, key: str, built: Built, scale_digits: Mapping[str, tuple]) -> list[dict]:
    """One entry per column (and the average where the table has one): each row's mean score and what
    its runs on that column cost (Table 3's columns are metrics of one task: all its runs)."""
    runs = _row_runs(inp, inp.experiments[key])
    per_task = key != "table3"
    out = []
    columns = list(built.columns) + (["avg"] if any(r.average is not None for r in built.rows.values()) else [])
    for col in columns:
        pts = []
        for k, row in built.rows.items():
            rs = [r for r in runs.get(k, []) if not per_task or col == "avg" or r.task == col]
            if col == "avg":
                y = row.average
            else:
                scale = scale_digits.get(col, (100.0, 1))[0]
                y = row.cells[col].mean(scale) if col in row.cells else None
            if y is None or not rs:
                continue
            costs = _costs(rs, inp.measure_flops)
            pts.append({"label": row.label or k[0], "method": k[0], "y": y,
                        "x": {m: costs[m]["value"] for m in MEASURES}, "why": {m: costs[m]["why"] for m in MEASURES}})
        if pts:
            out.append({"column": col, "points": pts})
    return out
