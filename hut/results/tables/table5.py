"""Table 5: HUT's rank r against the adapted matrices. Columns = r, rows = (task, targets); the
paper's figures and ours − paper below (shared machinery: :mod:`.ablation_grid`)."""
from __future__ import annotations

from hut.results.labels import targets_label, task_label
from hut.results.layout import layout
from hut.results.render.table import signed
from hut.results.runs import Cell, Problem, add, metric_value, order_targets
from hut.results.tables import ablation_grid as grid
from hut.results.tables.base import Built, Inputs
from hut.results.tables.method_table import status_notes


def build_table5(inp: Inputs) -> Built:
    lay = layout("table5", inp.experiments["table5"])
    problems: list[Problem] = []
    mine = grid.grid_runs(inp, lay, problems)
    ranks = sorted({c[1] for c in lay.cells if c[1] is not None} | {r.r for r in mine if r.r is not None})
    exp_targets = list(dict.fromkeys(c[0] for c in lay.cells))
    rowkeys = sorted({(r.method, r.task, r.targets, r.overrides) for r in mine}
                     | {("hut", t, tg, None) for t in lay.tasks for tg in exp_targets},
                     key=lambda k: (k[0] != "hut", k[0], grid.task_rank(k[1], lay),
                                    exp_targets.index(k[2]) if k[2] in exp_targets else len(exp_targets), k[2],
                                    k[3] or ""))
    cells = {(rk, rr): Cell(expected=grid.expects(lay, rk[0], rk[1], rk[3], (rk[2],
                                                                             rr))) for rk in rowkeys for rr in ranks}
    for r in mine:
        if r.r is None:
            problems.append(Problem(r.path, "no config.method.r (cannot be placed in Table 5)"))
            continue
        add(cells[((r.method, r.task, r.targets, r.overrides), r.r)], r, metric_value(r, "score", problems))
    header = ["Task", "Weight type"] + [f"r = {rr}" for rr in ranks]
    body, notes, csv_rows = [], [], []
    for rk in rowkeys:
        tl = (targets_label(rk[2]), targets_label(rk[2], True))
        body.append([(grid.rlabel(rk[0], rk[1], rk[3]), grid.rlabel(rk[0], rk[1], rk[3], True)), tl]
                    + [cells[(rk, rr)].text(grid.SCALE, grid.DIGITS) for rr in ranks])
        for rr in ranks:
            label = f"{grid.rlabel(rk[0], rk[1], rk[3])} · {targets_label(rk[2])} r={rr}"
            notes += status_notes(label, cells[(rk, rr)])
            csv_rows.append({"table": "table5", "source": "ours", "experiment": lay.experiment, "method": rk[0],
                             "task": rk[1], "overrides": rk[3] or "", "targets": ",".join(rk[2]), "r": str(rr),
                             "metric": "score",
                             "scale": "100", **cells[(rk, rr)].csv(grid.SCALE)})
    pub = inp.published.get("table5") or {}
    pranks = list(pub.get("ranks") or [])
    same = grid.same_model(mine, "table5")
    ref, pending, cases, where = [], [], [], []
    for pr in pub.get("rows") or []:
        tg = order_targets(pr["targets"])
        tl = (targets_label(tg), targets_label(tg, True))
        vals, d_row = [], []
        for rr in ranks:
            p = pr["scores"][pranks.index(rr)] if rr in pranks else None
            vals.append("n/a" if p is None else f"{float(p):.1f}")
            c = cells.get((("hut", pr["task"], tg, None), rr))
            ours = c.mean(grid.SCALE) if c is not None and same else None
            d_row.append(signed(ours - float(p) if ours is not None and p is not None else None, grid.DIGITS))
            if p is not None and c is not None:
                label = f"{task_label(pr['task'])} · {targets_label(tg)} r={rr}"
                cases.append((d_row, len(d_row) - 1, grid.case(label, c, p, mine, "table5")))
                where.append((("hut", pr["task"], tg, None), rr))
            if p is not None:
                csv_rows.append({"table": "table5", "source": "paper", "task": pr["task"], "targets": ",".join(tg),
                                 "r": str(rr), "metric": "score", "scale": "100", "mean": f"{float(p):.6f}"})
        ref.append([f"{task_label(pr['task'])} (paper)", tl] + vals)
        pending.append(([(f"{task_label(pr['task'])}: ours − paper", f"{task_label(pr['task'])}: ours $-$ paper"), tl],
                        d_row))
    diff, verdicts = grid.judged(pending, cases)
    caption = (grid.caption_head("HUT's rank r against the adapted matrices", "table5", lay, mine)
               + ". (The paper's text says 'just W_q' for the first row; its table shows W_v.)")
    return grid.finish(inp, "table5", "Table 5: HUT's rank r on different weight matrices", caption, header, body, ref,
                    diff, notes, csv_rows, cells, lay, mine, problems, verdicts, where,
                    lambda rk, rr: (f"{grid.rlabel(rk[0], rk[1], rk[3])} · {targets_label(rk[2])}", f"r={rr}"))
