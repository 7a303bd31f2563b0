"""Score against cost, per table and column: each method row's mean score beside what its config
costs (:mod:`.costs`: trainable parameters, measured FLOPs, step time, estimated peak memory), and
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


def row_costs(inp: Inputs, built: Mapping[str, Built]) -> dict[str, dict[str, dict[str, Any]]]:
    """table -> row label -> measure -> {value, why}: each measure of a row's first seed (params, FLOPs,
    memory: one config per row), step time averaged over its seeds."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for key in METHOD_TABLES:
        if key not in built or key not in inp.experiments:
            continue
        runs = _row_runs(inp, inp.experiments[key])
        table = out.setdefault(key, {})
        for k, row in built[key].rows.items():
            rs = runs.get(k)
            if not rs:
                continue
            entry = {}
            for m in MEASURES:
                if m == "step_time":
                    vals = [v for v, _ in (measure_run(r, m, inp.measure_flops) for r in rs) if v is not None]
                    entry[m] = {"value": statistics.fmean(vals) if vals else None,
                                "why": "" if vals else measure_run(rs[0], m, inp.measure_flops)[1]}
                else:
                    v, why = measure_run(rs[0], m, inp.measure_flops)
                    entry[m] = {"value": v, "why": why}
            table[row.label or k[0]] = {"method": k[0], **entry}
    return out


def pareto_points(built: Built, costs: Mapping[str, Mapping[str, Any]], scale_digits: Mapping[str, tuple]) -> list[dict]:
    """One entry per column (and the average where the table has one): the rows' mean scores and costs."""
    out = []
    columns = list(built.columns) + (["avg"] if any(r.average is not None for r in built.rows.values()) else [])
    for col in columns:
        pts = []
        for k, row in built.rows.items():
            label = row.label or k[0]
            if label not in costs:
                continue
            if col == "avg":
                y = row.average
            else:
                scale = scale_digits.get(col, (100.0, 1))[0]
                y = row.cells[col].mean(scale) if col in row.cells else None
            if y is not None:
                pts.append({"label": label, "method": k[0], "y": y,
                            "x": {m: costs[label][m]["value"] for m in MEASURES},
                            "why": {m: costs[label][m]["why"] for m in MEASURES}})
        if pts:
            out.append({"column": col, "points": pts})
    return out
