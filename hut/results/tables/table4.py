"""Table 4: which attention matrices to adapt with HUT. Columns = (targets, r) cells, rows = tasks;
the paper's figures and ours − paper below (shared machinery: :mod:`.ablation_grid`)."""
from __future__ import annotations

from typing import Any

from hut.results.labels import targets_label, task_label
from hut.results.layout import layout
from hut.results.render.table import signed
from hut.results.runs import Cell, Problem, add, metric_value, order_targets
from hut.results.tables import ablation_grid as grid
from hut.results.tables.base import Built, Inputs
from hut.results.tables.method_table import status_notes


def build_table4(inp: Inputs) -> Built:
    lay = layout("table4", inp.experiments["table4"])
    problems: list[Problem] = []
    mine = grid.grid_runs(inp, lay, problems)

    def rank(c):
        return (0, list(lay.cells).index(c)) if c in lay.cells else (1, len(c[0]), c[0],
                                                                     c[1] if c[1] is not None else -1)

    cols = sorted(set(lay.cells) | {(r.targets, r.r) for r in mine}, key=rank)
    rowkeys = sorted({(r.method, r.task, r.overrides) for r in mine} | {("hut", t, None) for t in lay.tasks},
                     key=lambda k: (k[0] != "hut", k[0], grid.task_rank(k[1], lay), k[2] or ""))
    cells = {(rk, c): Cell(expected=grid.expects(lay, *rk, c)) for rk in rowkeys for c in cols}
    for r in mine:
        add(cells[((r.method, r.task, r.overrides), (r.targets, r.r))], r, metric_value(r, "score", problems))
    header = [("Weight type", "Weight type")] + [(targets_label(c[0]), targets_label(c[0], True)) for c in cols]
    body: list[list[Any]] = [["Rank r"] + [str(c[1]) if c[1] is not None else "?" for c in cols]]
    notes, csv_rows = [], []
    for rk in rowkeys:
        body.append([(grid.rlabel(*rk), grid.rlabel(*rk, tex=True))] + [cells[(rk, c)].text(grid.SCALE,
                                                                                            grid.DIGITS) for c in cols])
        for c in cols:
            notes += status_notes(f"{grid.rlabel(*rk)} · {targets_label(c[0])} r={c[1]}", cells[(rk, c)])
            csv_rows.append({"table": "table4", "source": "ours", "experiment": lay.experiment, "method": rk[0],
                             "task": rk[1], "overrides": rk[2] or "", "targets": ",".join(c[0]),
                             "r": "" if c[1] is None else str(c[1]),
                             "metric": "score", "scale": "100", **cells[(rk, c)].csv(grid.SCALE)})
    prows = inp.paper_rows("table4")
    tasks = [t for t in (inp.published.get("table4") or {}).get("columns") or []]
    ref = []
    same = grid.same_model(mine, "table4")
    pending, cases, where = [], [], []
    for task in tasks:
        by_cell = {order_targets(r["targets"]): r for r in prows}
        values, d_row = [], []
        for c in cols:
            pr = by_cell.get(c[0])
            p = pr.get(task) if pr is not None and pr.get("r") == c[1] else None
            values.append("n/a" if p is None else f"{float(p):.1f}")
            ours = cells[(("hut", task, None), c)].mean(grid.SCALE) if ("hut", task, None) in rowkeys and same else None
            d_row.append(signed(ours - float(p) if ours is not None and p is not None else None, grid.DIGITS))
            if p is not None and ("hut", task, None) in rowkeys:
                cases.append((d_row, len(d_row) - 1, grid.case(f"{task_label(task)} · {targets_label(c[0])} r={c[1]}",
                                                            cells[(("hut", task, None), c)], p, mine, "table4")))
                where.append((("hut", task, None), c))
            if p is not None:
                csv_rows.append({"table": "table4", "source": "paper", "task": task, "targets": ",".join(c[0]),
                                 "r": str(c[1]), "metric": "score", "scale": "100", "mean": f"{float(p):.6f}"})
        ref.append([f"{task_label(task)} (paper)"] + values)
        pending.append(([(f"{task_label(task)}: ours − paper", f"{task_label(task)}: ours $-$ paper")], d_row))
    diff, verdicts = grid.judged(pending, cases)
    caption = (grid.caption_head("Which weight matrices to adapt with HUT", "table4", lay,
                                 mine) + "; the rank r of each "
               "column (from the records' `config.method`) keeps the parameter budget near the paper's ~0.8M.")
    return grid.finish(inp, "table4", "Table 4: HUT on different attention weight matrices", caption, header, body, ref,
                    diff, notes, csv_rows, cells, lay, mine, problems, verdicts, where,
                    lambda rk, c: (grid.rlabel(*rk), f"{targets_label(c[0])} r={c[1]}"))
