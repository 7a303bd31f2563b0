"""Tables 4 and 5: HUT's ablation grids, with the paper's figures and ours − paper.

* Table 4 (which attention matrices): columns = (targets, r) cells, rows = tasks;
* Table 5 (rank): columns = r, rows = (task, targets).

A run's cell is read from its record's ``config.method`` (targets and r), never from its path.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from hut.report import stats as S
from hut.report import verdicts as V
from hut.tables import paper as P
from hut.tables.context import Context
from hut.tables.labels import method_label, model_label, targets_label, task_label
from hut.tables.layout import Layout, layout
from hut.tables.method_rows import status_notes, std_note
from hut.tables.render import NA, Table, signed, tex_escape
from hut.tables.runs import Cell, Problem, Run, add, dedupe, metric_value, mixed_problems, order_targets

SCALE, DIGITS = 100.0, 1
GRID_FIELDS = ["table", "source", "experiment", "method", "task", "overrides", "targets", "r", "metric", "scale", "mean", "std",
               "median", "n", "n_expected", "seeds", "missing_seeds", "failed_seeds", "running_seeds", "extra_seeds", "values"]


def _runs(ctx: Context, lay: Layout) -> list[Run]:
    mine = [r for r in ctx.runs if r.experiment == lay.experiment]
    return dedupe(mine, lambda r: (r.task, r.method, r.model, r.targets, r.r, r.overrides), ctx.problems)


def _task_rank(task: str, lay: Layout) -> tuple:
    return (list(lay.tasks).index(task) if task in lay.tasks else len(lay.tasks), task)


def _rlabel(method: str, task: str, overrides: str | None = None, tex: bool = False) -> str:
    """A grid row: the task, the method when not HUT, an override variant in full (its own row)."""
    s = task_label(task)
    s = s if method == "hut" else f"{s} ({method_label(method, tex=tex)})"
    return s + (f" [{tex_escape(overrides) if tex else overrides}]" if overrides else "")


def _sweep_methods(lay: Layout) -> tuple[str, ...]:
    """The methods the sweep's rows run (the paper's Tables 4/5: HUT; the demo's rank table: HUT and
    hut_compact)."""
    return tuple(dict.fromkeys(r.key[0] for r in lay.rows)) or ("hut",)


def _expects(lay: Layout, method: str, task: str, overrides: str | None, cell: tuple) -> tuple[int, ...] | None:
    """The sweep's seeds for a cell of the sweep; None (no completeness count) for anything else."""
    sweep = method in _sweep_methods(lay) and overrides is None and task in lay.tasks and cell in lay.cells
    return lay.seeds if sweep else None


def _summarise(ctx: Context, key: str, lay: Layout, mine: Sequence[Run]) -> None:
    """Runs against the sweep: one unit per (method, task, targets, r) of the sweep's rows; variants counted apart."""
    units = {(m, t, c[0], c[1], None): (_rlabel(m, t), f"{','.join(c[0])} r={c[1]}")
             for m in _sweep_methods(lay) for t in lay.tasks for c in lay.cells}
    ctx.summarise(key, lay, mine, units, lambda r: (r.method, r.task, r.targets, r.r, r.overrides),
                  lambda r: (f"{_rlabel(r.method, r.task, r.overrides)} · {targets_label(r.targets)} r={r.r}",
                             task_label(r.task) if r.method == "hut" and r.overrides else None))


def _same_model(mine: Sequence[Run], key: str) -> bool:
    return {r.model for r in mine if r.method == "hut"} <= {P.PAPER_MODEL[key]}


def build_table4(ctx: Context) -> Table:
    lay = layout("table4", ctx.experiments["table4"])
    mine = _runs(ctx, lay)

    def rank(c):
        return (0, list(lay.cells).index(c)) if c in lay.cells else (1, len(c[0]), c[0], c[1] if c[1] is not None else -1)

    cols = sorted(set(lay.cells) | {(r.targets, r.r) for r in mine}, key=rank)
    rowkeys = sorted({(r.method, r.task, r.overrides) for r in mine} | {("hut", t, None) for t in lay.tasks},
                     key=lambda k: (k[0] != "hut", k[0], _task_rank(k[1], lay), k[2] or ""))
    cells = {(rk, c): Cell(expected=_expects(lay, *rk, c)) for rk in rowkeys for c in cols}
    for r in mine:
        add(cells[((r.method, r.task, r.overrides), (r.targets, r.r))], r, metric_value(r, "score", ctx.problems))
    header = [("Weight type", "Weight type")] + [(targets_label(c[0]), targets_label(c[0], True)) for c in cols]
    body: list[list[Any]] = [["Rank r"] + [str(c[1]) if c[1] is not None else "?" for c in cols]]
    notes, csv_rows = [], []
    for rk in rowkeys:
        body.append([(_rlabel(*rk), _rlabel(*rk, tex=True))] + [cells[(rk, c)].text(SCALE, DIGITS) for c in cols])
        for c in cols:
            notes += status_notes(f"{_rlabel(*rk)} · {targets_label(c[0])} r={c[1]}", cells[(rk, c)])
            csv_rows.append({"table": "table4", "source": "ours", "experiment": lay.experiment, "method": rk[0],
                             "task": rk[1], "overrides": rk[2] or "", "targets": ",".join(c[0]),
                             "r": "" if c[1] is None else str(c[1]),
                             "metric": "score", "scale": "100", **cells[(rk, c)].csv(SCALE)})
    prows = ctx.paper_rows("table4")
    tasks = [t for t in (ctx.published.get("table4") or {}).get("columns") or []]
    ref, diff = [], []
    same = _same_model(mine, "table4")
    pending, cases = [], []
    for task in tasks:
        by_cell = {order_targets(r["targets"]): r for r in prows}
        values, d_row = [], []
        for c in cols:
            pr = by_cell.get(c[0])
            p = pr.get(task) if pr is not None and pr.get("r") == c[1] else None
            values.append("n/a" if p is None else f"{float(p):.1f}")
            ours = cells[(("hut", task, None), c)].mean(SCALE) if ("hut", task, None) in rowkeys and same else None
            d_row.append(signed(ours - float(p) if ours is not None and p is not None else None, DIGITS))
            if p is not None and ("hut", task, None) in rowkeys:
                cases.append((d_row, len(d_row) - 1, _case(f"{task_label(task)} · {targets_label(c[0])} r={c[1]}",
                                                           cells[(("hut", task, None), c)], p, mine, "table4")))
            if p is not None:
                csv_rows.append({"table": "table4", "source": "paper", "task": task, "targets": ",".join(c[0]),
                                 "r": str(c[1]), "metric": "score", "scale": "100", "mean": f"{float(p):.6f}"})
        ref.append([f"{task_label(task)} (paper)"] + values)
        pending.append(([(f"{task_label(task)}: ours − paper", f"{task_label(task)}: ours $-$ paper")], d_row))
    diff = _judged(ctx, "table4", pending, cases)
    caption = (f"Which weight matrices to adapt with HUT, experiment `{lay.experiment}`: dev score × 100 (MRPC: "
               f"accuracy; CoLA: Matthews corr.) of the best epoch, model {_models(mine, 'table4')}; the rank r of "
               f"each column (from the records' `config.method`) keeps the parameter budget near the paper's ~0.8M.")
    return _finish(ctx, "table4", "Table 4: HUT on different attention weight matrices", caption, header, body, ref,
                   diff, notes, csv_rows, cells, lay, mine)


def build_table5(ctx: Context) -> Table:
    lay = layout("table5", ctx.experiments["table5"])
    mine = _runs(ctx, lay)
    ranks = sorted({c[1] for c in lay.cells if c[1] is not None} | {r.r for r in mine if r.r is not None})
    exp_targets = list(dict.fromkeys(c[0] for c in lay.cells))
    rowkeys = sorted({(r.method, r.task, r.targets, r.overrides) for r in mine}
                     | {("hut", t, tg, None) for t in lay.tasks for tg in exp_targets},
                     key=lambda k: (k[0] != "hut", k[0], _task_rank(k[1], lay),
                                    exp_targets.index(k[2]) if k[2] in exp_targets else len(exp_targets), k[2],
                                    k[3] or ""))
    cells = {(rk, rr): Cell(expected=_expects(lay, rk[0], rk[1], rk[3], (rk[2], rr))) for rk in rowkeys for rr in ranks}
    for r in mine:
        if r.r is None:
            ctx.problems.append(Problem(r.path, "no config.method.r (cannot be placed in Table 5)"))
            continue
        add(cells[((r.method, r.task, r.targets, r.overrides), r.r)], r, metric_value(r, "score", ctx.problems))
    header = ["Task", "Weight type"] + [f"r = {rr}" for rr in ranks]
    body, notes, csv_rows = [], [], []
    for rk in rowkeys:
        tl = (targets_label(rk[2]), targets_label(rk[2], True))
        body.append([(_rlabel(rk[0], rk[1], rk[3]), _rlabel(rk[0], rk[1], rk[3], True)), tl]
                    + [cells[(rk, rr)].text(SCALE, DIGITS) for rr in ranks])
        for rr in ranks:
            notes += status_notes(f"{_rlabel(rk[0], rk[1], rk[3])} · {targets_label(rk[2])} r={rr}", cells[(rk, rr)])
            csv_rows.append({"table": "table5", "source": "ours", "experiment": lay.experiment, "method": rk[0],
                             "task": rk[1], "overrides": rk[3] or "", "targets": ",".join(rk[2]), "r": str(rr),
                             "metric": "score",
                             "scale": "100", **cells[(rk, rr)].csv(SCALE)})
    pub = ctx.published.get("table5") or {}
    pranks = list(pub.get("ranks") or [])
    same = _same_model(mine, "table5")
    ref, pending, cases = [], [], []
    for pr in pub.get("rows") or []:
        tg = order_targets(pr["targets"])
        tl = (targets_label(tg), targets_label(tg, True))
        vals, d_row = [], []
        for rr in ranks:
            p = pr["scores"][pranks.index(rr)] if rr in pranks else None
            vals.append("n/a" if p is None else f"{float(p):.1f}")
            c = cells.get((("hut", pr["task"], tg, None), rr))
            ours = c.mean(SCALE) if c is not None and same else None
            d_row.append(signed(ours - float(p) if ours is not None and p is not None else None, DIGITS))
            if p is not None and c is not None:
                cases.append((d_row, len(d_row) - 1,
                              _case(f"{task_label(pr['task'])} · {targets_label(tg)} r={rr}", c, p, mine, "table5")))
            if p is not None:
                csv_rows.append({"table": "table5", "source": "paper", "task": pr["task"], "targets": ",".join(tg),
                                 "r": str(rr), "metric": "score", "scale": "100", "mean": f"{float(p):.6f}"})
        ref.append([f"{task_label(pr['task'])} (paper)", tl] + vals)
        pending.append(([(f"{task_label(pr['task'])}: ours − paper", f"{task_label(pr['task'])}: ours $-$ paper"), tl],
                        d_row))
    diff = _judged(ctx, "table5", pending, cases)
    caption = (f"HUT's rank r against the adapted matrices, experiment `{lay.experiment}`: dev score × 100 (MRPC: "
               f"accuracy; CoLA: Matthews corr.) of the best epoch, model {_models(mine, 'table5')}. (The paper's "
               f"text says 'just W_q' for the first row; its table shows W_v.)")
    return _finish(ctx, "table5", "Table 5: HUT's rank r on different weight matrices", caption, header, body, ref,
                   diff, notes, csv_rows, cells, lay, mine)


def _case(label: str, cell: Cell, paper: float, mine: Sequence[Run], key: str) -> V.CellCase:
    """A HUT cell against the paper's printed figure (no ±; HUT's own rows: mean of 5 seeds, Table 6's source)."""
    rep = V.reported("table1", {"method": "hut", "params": "0.9M"})
    models = sorted({r.model for r in mine if r.method == "hut"})
    reason = "" if _same_model(mine, key) else f"{', '.join(map(model_label, models))}, not {model_label(P.PAPER_MODEL[key])}"
    values = () if cell.mixed else tuple(v * SCALE for v in cell.values.values())
    return V.CellCase(label, values, S.Reference(float(paper), None, rep.seeds), V.tolerance("score"),
                      rep.statistic, not reason, reason)


def _judged(ctx: Context, key: str, pending: list, cases: list) -> list:
    """The verdicts of the table's HUT cells (Holm over the table), their markers beside ours − paper."""
    verdicts = V.judge([c for _, _, c in cases])
    ctx.verdicts[key] = verdicts
    for (d_row, i, _), v in zip(cases, verdicts):
        if v.marker and d_row[i] != NA:
            d_row[i] += f" {v.marker}"
    return [head + d_row for head, d_row in pending if any(x != NA for x in d_row)]


def _models(mine: Sequence[Run], key: str) -> str:
    models = sorted({r.model for r in mine}) or [P.PAPER_MODEL[key]]
    return ", ".join(model_label(m) for m in models)


def _finish(ctx: Context, key: str, title: str, caption: str, header: list, body: list, ref: list, diff: list,
            notes: list[str], csv_rows: list[dict], cells: Mapping[Any, Cell], lay: Layout,
            mine: Sequence[Run]) -> Table:
    """The tail Tables 4 and 5 share: notes on missing or odd records, the paper's blocks, the summary."""
    ctx.problems += mixed_problems(cells.values())
    if not mine:
        notes.insert(0, f"No records of experiment `{lay.experiment}` under `{ctx.results_dir}` yet.")
    notes += ctx.problem_notes(lay.experiment)
    notes += V.table_notes(ctx.verdicts.get(key, []))
    if not diff:
        notes.append(f"Ours − paper: no HUT cell of ours on the paper's model ({model_label(P.PAPER_MODEL[key])}).")
    _summarise(ctx, key, lay, mine)
    blocks = [(None, body), (P.block_title(key), ref)] + ([(P.differences_title(key), diff)] if diff else [])
    return Table(key, title, [caption, std_note(lay.seeds)], header, blocks, notes, GRID_FIELDS, csv_rows)
